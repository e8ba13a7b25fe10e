"""The store never alters a database that is not its own; read-only and locked stores say so."""
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from toolkit.cli.main import main
from toolkit.errors import StoreError
from toolkit.store import Store, check_store_writable, read_measurements
from toolkit.store.db import APPLICATION_ID, SCHEMA_VERSION
from toolkit.targets.base import EnergyResult, LatencyStats, Measurement, ProfileOptions


def _measurement(sha="a" * 64):
    lat = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0], init_ms=5.0, first_inference_ms=6.0)
    energy = EnergyResult(0.5, 2000.0, 300.0, 100.0, "power_model", "estimated:host", 0.1)
    return Measurement("host", "host", "measured:host", "/m.tflite", sha, 12.5, lat, ProfileOptions(),
                       energy=energy, provenance=(("cpu", "x"),))

# The store as ferminet wrote it before the schema carried a version (same tables, meta row, user_version 0).
_LEGACY = """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, command TEXT,
    options_json TEXT NOT NULL DEFAULT '{}', tool_versions_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'running', created_at REAL NOT NULL, finished_at REAL);
CREATE TABLE models (model_id TEXT PRIMARY KEY);
CREATE TABLE measurements (measurement_id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE candidates (run_id TEXT NOT NULL, candidate_id TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs(run_id, kind, created_at) VALUES ('old-run', 'profile', 0);"""


def _foreign(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        conn.execute("INSERT INTO invoices(amount) VALUES (12.5)")
    conn.close()
    return path.read_bytes()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_foreign_database_is_refused_and_left_byte_for_byte(tmp_path, capsys):
    db = tmp_path / "accounts.db"
    before = _foreign(db)
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "rep")]) == 7
    assert main(["profile", str(tmp_path / "any.tflite"), "--db", str(db)]) == 7
    assert main(["convert", str(tmp_path / "any.keras"), "--out", str(tmp_path / "o.tflite"), "--db", str(db)]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("not a ferminet results store (its tables: invoices)" in line for line in err), err
    with pytest.raises(StoreError, match="left unchanged"):
        Store(db).record_run("profile", measurements=(_measurement(),))
    assert db.read_bytes() == before
    assert _files(tmp_path) == ["accounts.db"]  # no -wal/-shm, no report folder, no model


def test_new_store_carries_its_version_and_a_newer_one_is_refused(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.record_run("profile", measurements=(_measurement(),))
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert store.query("PRAGMA application_id")[0][0] == APPLICATION_ID
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}.*Upgrade ferminet"):
        Store(db)
    with pytest.raises(StoreError, match="Upgrade ferminet"):
        read_measurements(db)
    assert db.read_bytes() == before


def test_store_without_a_version_is_recognised_and_stamped_on_write(tmp_path):
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(_LEGACY)
    conn.close()
    before = db.read_bytes()
    with Store(db) as store:  # reading leaves it as it was
        assert store.get_run("old-run")["kind"] == "profile"
    assert db.read_bytes() == before
    with Store(db) as store:
        store.start_run("convert")
        assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        assert store.query("SELECT COUNT(*) FROM runs")[0][0] == 2


@contextmanager
def _locked_store(tmp_path):
    """A store with one run in it, held by another connection's exclusive transaction for the block."""
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.record_run("profile", measurements=(_measurement(),))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield db
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_locked_store_says_locked(tmp_path):
    with _locked_store(tmp_path) as db:
        with pytest.raises(StoreError, match="is locked by another process"):
            with Store(db, timeout_s=0.2) as store:
                store.check_writable()
    check_store_writable(db)  # free again


REPO = Path(__file__).resolve().parents[3]


def _read_only(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`ferminet ARGS` with ``folder`` mounted read-only (bubblewrap): even root cannot write there."""
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap is required for this test: apt-get install bubblewrap"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([bwrap, "--dev-bind", "/", "/", "--ro-bind", str(folder), str(folder), sys.executable,
                           "-m", "toolkit.cli.main", *args], capture_output=True, text=True, timeout=300, env=env)


def test_read_only_store_is_reported_and_refuses_writes_before_measuring(tmp_path):
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "r.db"
    with Store(db) as store:
        store.record_run("profile", measurements=(_measurement(),))
    before = db.read_bytes()
    done = _read_only(folder, "report", "--db", str(db), "--out", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "rep" / "report.html").is_file()
    refused = _read_only(folder, "profile", str(tmp_path / "absent.tflite"), "--db", str(db))
    assert refused.returncode == 7
    assert "is read-only" in refused.stderr and "not a ferminet results store" not in refused.stderr
    assert "absent.tflite" not in refused.stderr  # the store was checked before the model was touched
    assert db.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["r.db"]


def test_profile_refuses_an_unwritable_store_before_touching_the_model(tmp_path, capsys):
    with _locked_store(tmp_path) as db:
        # The model does not exist: were the model (or the measurement) first, the error would name it.
        assert main(["profile", str(tmp_path / "absent.tflite"), "--db", str(db)]) == 7
    assert "is locked by another process" in capsys.readouterr().err
