"""A real (tiny) synthesis run through the command line: kill -9 mid-run, resume, extend, generate."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TINY = ["--prototype", "resnet20", "--prototype-width", "0.25", "--train-samples", "1000", "--prototype-epochs", "1",
        "--supernet-epochs", "1", "--cycles", "2", "--population", "2", "--final-k", "1",
        "--require", "accuracy_drop<=100pt", "--require", "macs<=1.5M", "--require", "params<=0.9x"]


def ferminet(*args, cwd, wait=True):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "toolkit.cli.main", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _rows(db, where="1=1"):
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(f"SELECT * FROM candidates WHERE {where}").fetchall()
        except sqlite3.OperationalError:
            return []


def _ids(db, where="1=1"):
    return [r["candidate_id"] for r in _rows(db, where)]


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    ws = tmp_path_factory.mktemp("synth")
    db = ws / "f.db"
    proc = ferminet("synthesize", *TINY, "--out", "run", "--db", db, cwd=ws, wait=False)
    deadline = time.time() + 600
    while len(_ids(db)) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-search: prototype, supernet-max and a candidate stored
    proc.wait()
    killed_at = len(_ids(db))
    done = ferminet("synthesize", "--out", "run", "--resume", cwd=ws)  # the store comes from run.json
    assert done.returncode == 0, done.stderr[-2000:]
    return ws, db, killed_at, done


def test_resume_after_kill_completes_without_loss_or_duplicates(resumed_run):
    ws, db, killed_at, done = resumed_run
    rows = _rows(db)
    ids = [r["candidate_id"] for r in rows]
    search = {f"c{c:03d}-{i:02d}" for c in range(2) for i in range(2)}
    finals = [i for i in ids if i.startswith("final-")]
    assert 3 <= killed_at < len(ids)
    assert len(ids) == len(set(ids))  # nothing evaluated twice
    assert set(ids) == {"prototype", "supernet-max", "reference"} | search | set(finals) and len(finals) == 1
    assert finals[0].removeprefix("final-") in search  # a final is one of the searched architectures
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE kind='synthesis'").fetchone()[0] == "done"
        assert conn.execute("SELECT COUNT(*) FROM measurements WHERE source='measured:host'").fetchone()[0] >= 5
    by_id = {r["candidate_id"]: r for r in rows}
    proto = by_id["prototype"]
    assert proto["macs"] > 1.5e6 and proto["latency_ms"] > 0 and proto["energy_source"] == "estimated:host"
    # Relative bound params<=0.9x: judged against this run's prototype (the resumed process included).
    for i in search:
        r = by_id[i]
        if r["status"] == "ok":
            assert bool(r["requirements_met"]) == (r["macs"] <= 1.5e6 and r["params"] <= 0.9 * proto["params"]), i
    assert not proto["requirements_met"]
    # Splits: every int8_top1 is on validation; test top-1 only on reported networks, never on search candidates.
    assert all(by_id[i]["top1_split"] == "validation" for i in ids)
    assert all(by_id[i]["test_top1"] is None for i in search | {"supernet-max"})
    assert all(0 < by_id[i]["test_top1"] <= 1 for i in ["prototype", "reference"] + finals)
    assert by_id[finals[0]]["phase"] == "final" and by_id[finals[0]]["proxy_top1"] is not None
    assert (ws / "run" / "generator.json").is_file() and (ws / "run" / "supernet" / "supernet.json").is_file()
    # The inquisitor's cost shares come from the host's real per-op profile of the prototype, not from MACs.
    insights = json.loads((ws / "run" / "insights.json").read_text())
    assert insights["cost_basis"] == "op_profile" and abs(sum(insights["cost_share"].values()) - 1) < 1e-6
    assert "final-trained" in done.stdout and "test top-1" in done.stdout


def test_generate_samples_and_finalizes(resumed_run):
    ws, db, _, _ = resumed_run
    out = ferminet("generate", "run", "--seeds", "11-12", cwd=ws)
    assert "distinct architectures" in out.stdout and out.returncode in (0, 1), out.stderr[-2000:]
    assert {"seed-11", "seed-12"} <= set(_ids(db))
    assert len({r["spec_hash"] for r in _rows(db, "candidate_id IN ('seed-11', 'seed-12')")}) == 2  # two networks
    fin = ferminet("generate", "run", "--seeds", "13", "--finalize", cwd=ws)
    assert "final-trained networks" in fin.stdout, fin.stderr[-2000:]
    row = _rows(db, "candidate_id='seed-13-final'")[0]
    assert row["phase"] == "final" and 0 < row["test_top1"] <= 1 and row["parent"] == "seed-13"


def test_bad_synthesis_input_leaves_store_intact(resumed_run, capsys, monkeypatch):
    from toolkit.cli.main import main

    ws, db, _, _ = resumed_run
    monkeypatch.chdir(ws)
    before = len(_ids(db))
    cases = [(["--out", "fresh", "--prototype", "resnet99"], "Unknown prototype 'resnet99'"),
             (["--out", "fresh", "--require", "speed<=3"], "Unknown requirement metric 'speed'"),
             (["--out", "fresh", "--budget", "0"], "the budget must be > 0"),
             (["--out", "fresh", "--final-lr", "0"], "final_learning_rate must be a number > 0"),
             (["--out", "fresh", "--resolutions", "0.5,2"], "expected fractions in (0, 1]"),
             (["--out", "run", "--resume", "--resolutions", "1"], "--resolutions would be ignored"),
             (["--out", "run"], "already holds a synthesis run"),
             (["--out", "fresh", "--device", "127.0.0.1:1"], "No device answers at 127.0.0.1:1"),
             (["--out", "run", "--resume", "--population", "4"], "--population would be ignored"),
             (["--out", "fresh", "--strategy", "width", "--cycles", "3"], "it has no cycles or population"),
             (["--out", "fresh", "--resume"], "not a synthesis run folder")]
    for extra, message in cases:
        try:
            code = main(["synthesize", *extra, "--db", str(db)])
        except SystemExit as exc:  # argparse rejects before the command runs
            code = exc.code
        err = capsys.readouterr().err
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert len(_ids(db)) == before
    assert not (ws / "fresh").exists()


def test_damaged_run_file_and_a_second_resume_are_refused(resumed_run, tmp_path, capsys):
    import fcntl

    from toolkit.cli.main import main

    ws, db, _, _ = resumed_run
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"run_id": "x", "config": {')
    assert main(["synthesize", "--out", str(broken), "--resume"]) != 0
    err = capsys.readouterr().err
    assert "is damaged" in err and len(err.strip().splitlines()) == 1
    # Another process holds the run's lock: a second resume refuses at once and writes nothing.
    before = len(_ids(db))
    with open(ws / "run" / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = ferminet("synthesize", "--out", "run", "--resume", "--cycles", "3", cwd=ws)
    assert busy.returncode != 0 and "Another ferminet process is working on the run" in busy.stderr
    assert len(_ids(db)) == before


def test_resume_with_more_cycles_extends_the_run(resumed_run):
    ws, db, _, _ = resumed_run
    shrink = ferminet("synthesize", "--cycles", "1", "--out", "run", "--resume", cwd=ws)
    assert shrink.returncode != 0 and "can only extend it" in shrink.stderr
    more = ferminet("synthesize", "--cycles", "3", "--out", "run", "--resume", cwd=ws)
    assert more.returncode == 0, more.stderr[-2000:]
    run_id = json.loads((ws / "run" / "run.json").read_text())["run_id"]
    ids = _ids(db, f"run_id='{run_id}'")
    assert len(ids) == len(set(ids)) and {"c002-00", "c002-01"} <= set(ids)
    assert '"cycles": 3' in (ws / "run" / "run.json").read_text()
