"""A real (tiny) synthesis run through the command line: kill -9 mid-run, resume, then generate."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TINY = ["--prototype", "resnet20", "--prototype-width", "0.25", "--train-samples", "800", "--prototype-epochs", "1",
        "--finetune-epochs", "1", "--finetune-samples", "400", "--eval-samples", "100", "--cycles", "2",
        "--population", "2", "--require", "accuracy_drop<=100pt", "--require", "macs<=1.5M"]


def ferminet(*args, cwd, wait=True):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "toolkit.cli.main", *map(str, args)]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _candidate_ids(db):
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return [r[0] for r in conn.execute("SELECT candidate_id FROM candidates")]
        except sqlite3.OperationalError:
            return []


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    ws = tmp_path_factory.mktemp("synth")
    db = ws / "f.db"
    proc = ferminet("synthesize", *TINY, "--out", "run", "--db", db, cwd=ws, wait=False)
    deadline = time.time() + 600
    while len(_candidate_ids(db)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 mid-run: the prototype and at least one candidate stored
    proc.wait()
    killed_at = len(_candidate_ids(db))
    done = ferminet("synthesize", *TINY, "--out", "run", "--db", db, "--resume", cwd=ws)
    assert done.returncode == 0, done.stderr[-2000:]
    return ws, db, killed_at, done


def test_resume_after_kill_completes_without_loss_or_duplicates(resumed_run):
    ws, db, killed_at, done = resumed_run
    ids = _candidate_ids(db)
    expected = {"prototype"} | {f"c{c:03d}-{i:02d}" for c in range(2) for i in range(2)}
    assert 2 <= killed_at < len(expected)
    assert len(ids) == len(expected) and set(ids) == expected  # same count as uninterrupted, no duplicates
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE kind='synthesis'").fetchone()[0] == "done"
        measured = conn.execute("SELECT COUNT(*) FROM measurements WHERE source='measured:host'").fetchone()[0]
        assert measured >= 2
        row = conn.execute("SELECT int8_top1, macs, latency_ms, energy_source, score FROM candidates "
                           "WHERE candidate_id='prototype'").fetchone()
    assert row[1] > 1.5e6 and row[2] > 0 and row[3] == "estimated:host" and row[4] > 0
    assert (ws / "run" / "generator.json").is_file() and "meet" in done.stdout


def test_generate_from_the_learned_generator(resumed_run):
    ws, db, _, _ = resumed_run
    out = ferminet("generate", "run", "--seeds", "11-12", "--db", db, cwd=ws)
    assert out.returncode == 0, out.stderr[-2000:]
    generated = sorted((ws / "run" / "generated").glob("*_int8.tflite"))
    assert generated and len(generated) == len(list((ws / "run" / "generated").glob("*.keras")))
    assert "distinct architectures" in out.stdout


def test_bad_synthesis_input_leaves_store_intact(resumed_run, capsys, monkeypatch):
    from toolkit.cli.main import main

    ws, db, _, _ = resumed_run
    monkeypatch.chdir(ws)
    before = len(_candidate_ids(db))
    cases = [(["--prototype", "resnet99"], "Unknown prototype 'resnet99'"),
             (["--require", "speed<=3"], "Unknown requirement metric 'speed'"),
             (["--budget", "0"], "the budget must be > 0"),
             (["--out", "run"], "already holds a synthesis run"),
             (["--device", "127.0.0.1:1"], "No device answers at 127.0.0.1:1")]
    for extra, message in cases:
        try:
            code = main(["synthesize", "--out", "fresh", *extra, "--db", str(db)])
        except SystemExit as exc:  # argparse rejects before the command runs
            code = exc.code
        err = capsys.readouterr().err
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert len(_candidate_ids(db)) == before


def test_resume_with_more_cycles_extends_the_run(resumed_run):
    ws, db, _, _ = resumed_run
    shrink = ferminet("synthesize", "--cycles", "1", "--out", "run", "--db", db, "--resume", cwd=ws)
    assert shrink.returncode != 0 and "can only extend it" in shrink.stderr
    more = ferminet("synthesize", "--cycles", "3", "--out", "run", "--db", db, "--resume", cwd=ws)
    assert more.returncode == 0, more.stderr[-2000:]
    ids = [i for i in _candidate_ids(db) if not i.startswith("seed-")]  # generate's rows are not the run's
    assert len(ids) == len(set(ids)) == 1 + 3 * 2 and {"c002-00", "c002-01"} <= set(ids)
    assert '"cycles": 3' in (ws / "run" / "run.json").read_text()
