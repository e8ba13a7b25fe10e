"""Bad input through the real command line: one error line, no traceback, non-zero exit, store intact."""
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def ferminet(*args, cwd):
    return subprocess.run([sys.executable, "-m", "toolkit.cli.main", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                                                                "HOME": str(cwd), "FERMINET_OFFLINE": "1"})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, trained_small, int8_tflite):
    ws = tmp_path_factory.mktemp("cli")
    model, _ = trained_small
    model.save(ws / "small.keras")
    (ws / "good.tflite").write_bytes(int8_tflite[0].read_bytes())
    (ws / "notes.tflite").write_text("not a model")
    (ws / "cut.tflite").write_bytes(int8_tflite[0].read_bytes()[:1500])
    rng = np.random.default_rng(0)
    np.savez(ws / "rgb8.npz", x_train=rng.integers(0, 255, (120, 8, 8, 3), dtype=np.uint8),
             y_train=np.arange(120) % 3, x_test=rng.integers(0, 255, (30, 8, 8, 3), dtype=np.uint8),
             y_test=np.arange(30) % 3)
    # A store with one real run in it, to prove failures leave it untouched.
    done = ferminet("convert", "small.keras", "--data", "fashion_mnist", "--out", "c.tflite", "--eval-samples",
                    "100", cwd=ws)
    assert done.returncode == 0, done.stderr
    assert "recorded as run convert-" in done.stdout and _store_digest(ws) is not None
    return ws


def _store_digest(ws):
    db = ws / "ferminet.db"
    if not db.exists():
        return None
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = [conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("runs", "models", "measurements")]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


CASES = {
    "non_tflite": (["profile", "notes.tflite"], "is not a TFLite model"),
    "corrupt": (["profile", "cut.tflite"], "could not be loaded"),
    "missing_file": (["profile", "absent.tflite"], "No such model file"),
    "missing_keras": (["convert", "absent.keras", "--out", "o.tflite"], "No such Keras model file"),
    "missing_dataset": (["convert", "small.keras", "--data", "mnist", "--data-path", "nowhere", "--out", "o.tflite"],
                        "not found offline"),
    "wrong_input_shape": (["convert", "small.keras", "--data", "rgb8.npz", "--out", "o.tflite"],
                          r"takes inputs of shape (28, 28, 1) but dataset"),
    "threads_zero": (["profile", "good.tflite", "--threads", "0"], "num_threads must be an integer >= 1. "
                                                                   "Received: num_threads=0"),
    "info_non_tflite": (["info", "notes.tflite"], "is not a TFLite model"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_line(case, workspace):
    args, message = CASES[case]
    before = _store_digest(workspace)
    proc = ferminet(*args, cwd=workspace)
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.startswith("ferminet: error:")]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert _store_digest(workspace) == before
    assert not (workspace / "o.tflite").exists()
