"""`ferminet predictor fit/eval` on a store of real host measurements, and `ferminet profile --predict`."""
from __future__ import annotations

import re

import pytest

from toolkit.cli.main import main
from tests.toolkit.predict.conftest import ARCHS


@pytest.fixture(scope="module")
def store_with_host_profiles(nb201_files, tmp_path_factory):
    from toolkit.store import Store
    from toolkit.targets import HostTarget, ProfileOptions

    db = tmp_path_factory.mktemp("store") / "ferminet.db"
    target = HostTarget()
    options = ProfileOptions(num_threads=1, num_runs=3, warmup_runs=1, measure_energy=False, op_profiling=True)
    measurements = tuple(target.profile(nb201_files[a], options) for a in ARCHS)
    with Store(db) as store:
        store.record_run("profile", "test", {}, measurements=measurements)
    return db


def test_fit_eval_and_profile_predict(store_with_host_profiles, nb201_files, capsys):
    db = store_with_host_profiles
    assert main(["predictor", "fit", "--db", str(db), "--device", "host", "--members", "4"]) == 0
    out = capsys.readouterr().out
    assert "4 networks" in out and "saved to" in out
    per_op = int(re.search(r"(\d+) per-op times", out).group(1))
    assert per_op >= 4 * 20  # the host's per-op profiles were matched to the kernels by tensor name
    saved = db.parent / "predictor-host-latency_ms.joblib"
    assert saved.is_file()
    assert main(["predictor", "eval", "--db", str(db), "--device", "host"]) == 0
    assert "4 measured networks of host" in capsys.readouterr().out
    assert main(["profile", str(nb201_files[ARCHS[2]]), "--predict", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "predicted:host" in out and "not measured" in out
    # A refit replaces its own predictor; a file that is not one is left alone unless --force.
    assert main(["predictor", "fit", "--db", str(db), "--device", "host", "--members", "4"]) == 0
    theirs = db.parent / "notes.txt"
    theirs.write_text("mine")
    for out_path in (theirs, db):
        before = out_path.read_bytes()
        assert main(["predictor", "fit", "--db", str(db), "--device", "host", "--out", str(out_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--force" in err and out_path.read_bytes() == before
    # A predictor file others may write is not loaded (a pickle runs the code it carries).
    saved.chmod(0o666)
    assert main(["profile", str(nb201_files[ARCHS[2]]), "--predict", "--db", str(db)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "writable by others" in err


def test_fit_without_measurements_is_one_clear_error(tmp_path, capsys):
    from toolkit.store import Store

    db = tmp_path / "empty.db"
    with Store(db) as store:
        store.start_run("profile")
    assert main(["predictor", "fit", "--db", str(db), "--device", "pixel_6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device='pixel_6'" in err and "Measure more" in err
