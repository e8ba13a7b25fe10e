"""Nothing the user owns is destroyed: report/demo output folders, and a quiet command line."""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolkit.cli.main import main
from toolkit.errors import InvalidArgumentError
from toolkit.store import Store
from toolkit.targets.base import LatencyStats, Measurement, ProfileOptions

REPO = Path(__file__).resolve().parents[3]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A user's folder: their notes, and a store with one measurement, as the current directory."""
    (tmp_path / "notes.txt").write_text("my thesis, chapter 3")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_text("1,2,3\n")
    lat = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0], init_ms=5.0, first_inference_ms=6.0)
    with Store(tmp_path / "ferminet.db") as store:
        store.record_run("profile", measurements=(
            Measurement("host", "host", "measured:host", "/m.tflite", "a" * 64, 12.5, lat, ProfileOptions()),))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("ferminet: error:")]


def test_report_out_dot_is_refused_and_with_force_only_adds_its_files(home, capsys):
    before = _digest(home)
    assert main(["report", "--out", "."]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "not a ferminet report" in lines[0] and "--force" in lines[0], lines
    assert _digest(home) == before
    # The folder that holds the store: refused the same way, the store intact.
    assert main(["report", "--db", "ferminet.db", "--out", str(home)]) == 2
    assert _digest(home) == before

    assert main(["report", "--out", ".", "--force"]) == 0
    after = _digest(home)
    for name, digest in before.items():  # every file of the user's is still there, unchanged
        assert after.get(name) == digest, name
    added = set(after) - set(before)
    assert "report.html" in added and ".ferminet-report" in added
    assert all(re.fullmatch(r"report\.html|\.ferminet-report|\w+\.(png|csv)", n) for n in added), added
    assert not [p for p in home.iterdir() if "ferminet-tmp" in p.name]


def test_report_folder_reuse_empty_folder_and_stale_temps(home, capsys):
    out = home / "rep"
    assert main(["report", "--out", "rep"]) == 0  # a new folder: created
    first = set(_digest(out))
    (out / "my_comments.md").write_text("keep me")
    (out / "old_figure.png").write_bytes(b"a figure of mine")
    # A killed report's temporary folder (its process is gone) and a previous report's own file list.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out / f".ferminet-report.ferminet-tmp-{dead.pid}"
    stale.mkdir()
    (stale / "report.html").write_text("half")
    assert main(["report", "--out", "rep"]) == 0  # a previous report's folder: its files are replaced
    assert (out / "my_comments.md").read_text() == "keep me"
    assert (out / "old_figure.png").read_bytes() == b"a figure of mine"  # not in the old report's list
    assert first <= set(_digest(out)) and not stale.exists()
    empty = home / "empty"
    empty.mkdir()
    assert main(["report", "--out", "empty"]) == 0 and (empty / "report.html").is_file()
    (home / "afile").write_text("x")
    assert main(["report", "--out", "afile"]) == 2
    assert (home / "afile").read_text() == "x"
    assert len(_error_lines(capsys)) == 1


def test_demo_never_removes_a_folder_it_did_not_make(tmp_path):
    from toolkit.demo import DemoConfig, prepare_run_dir, run_demo

    out = tmp_path / "ferminet-out"
    (out / "synthesis").mkdir(parents=True)
    (out / "synthesis" / "results.json").write_text("a run of mine")
    with pytest.raises(InvalidArgumentError, match="was not made by `ferminet demo`"):
        run_demo(DemoConfig(out_dir=str(out), db=str(tmp_path / "f.db")))
    assert (out / "synthesis" / "results.json").read_text() == "a run of mine"
    assert not (tmp_path / "f.db").exists()
    mine = tmp_path / "demo-run"
    prepare_run_dir(mine)  # made by the demo: marked
    (mine / "candidate.keras").write_text("old")
    prepare_run_dir(mine)  # so the next demo starts it afresh
    assert sorted(p.name for p in mine.iterdir()) == [".ferminet-demo"]


def _ferminet(*args, cwd, env_extra=None, drop=("TF_CPP_MIN_LOG_LEVEL",)):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PYTHONPATH=str(REPO), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "toolkit.cli.main", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


NOISE = re.compile(r"oneDNN|cuInit|absl::InitializeLog|^[IWE]\d{4} |XNNPACK delegate|cpu_feature_guard", re.M)


def test_tensorflow_start_up_noise_is_hidden_unless_verbose(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rgb8.npz", x_train=rng.integers(0, 255, (120, 8, 8, 3), dtype=np.uint8),
             y_train=np.arange(120) % 3, x_test=rng.integers(0, 255, (30, 8, 8, 3), dtype=np.uint8),
             y_test=np.arange(30) % 3)
    keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                      keras.layers.Dense(3)]).save(tmp_path / "tiny.keras")
    args = ["convert", "tiny.keras", "--data", "rgb8.npz", "--mode", "int8"]
    quiet = _ferminet(*args, "--out", "a.tflite", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert not NOISE.search(quiet.stderr), quiet.stderr
    assert "wrote a.tflite" in quiet.stdout
    # -v shows TensorFlow's own messages again; an explicit TF_CPP_MIN_LOG_LEVEL=0 does too.
    loud = _ferminet("-v", *args, "--out", "b.tflite", cwd=tmp_path)
    assert loud.returncode == 0 and NOISE.search(loud.stderr), loud.stderr
    user = _ferminet(*args, "--out", "c.tflite", cwd=tmp_path, env_extra={"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert user.returncode == 0 and NOISE.search(user.stderr), user.stderr
    # Our own errors still get through the filter.
    bad = _ferminet(*args, "--out", "a.tflite", cwd=tmp_path)
    assert bad.returncode == 2 and "already exists; pass --force" in bad.stderr
