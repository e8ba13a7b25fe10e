import sqlite3

import pytest

from toolkit.errors import StoreError
from toolkit.store import ModelRecord, Store, read_measurements, read_models, read_runs
from toolkit.targets.base import EnergyResult, LatencyStats, Measurement, ProfileOptions


def _measurement(sha="a" * 64, source="measured:host"):
    lat = LatencyStats.from_samples([1.0, 2.0, 3.0, 4.0], init_ms=5.0, first_inference_ms=6.0)
    energy = EnergyResult(0.5, 2000.0, 300.0, 100.0, "power_model", "estimated:host", 0.1)
    return Measurement("host", "host", source, "/m.tflite", sha, 12.5, lat, ProfileOptions(num_threads=2),
                       process_peak_memory_mb=20.0, energy=energy, provenance=(("cpu", "x"),))


def test_record_run_round_trips_to_pandas(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as store:
        run_id = store.record_run("profile", "ferminet profile /m.tflite", {"threads": 2},
                                  models=(ModelRecord("a" * 64, "/m.tflite", "tflite", quantization="int8"),),
                                  measurements=(_measurement(),))
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    df = read_measurements(db)
    row = df.iloc[0]
    assert len(df) == 1 and row.run_id == run_id and row.median_ms == pytest.approx(2.5)
    assert row.energy_source == "estimated:host" and row.num_threads == 2 and row.quantization == "int8"
    assert read_runs(db).iloc[0].status == "done" and len(read_models(db)) == 1


def test_failed_write_leaves_nothing(tmp_path):
    db = tmp_path / "r.db"
    with Store(db) as store:
        with pytest.raises(sqlite3.IntegrityError):
            with store.transaction() as conn:
                conn.execute("INSERT INTO runs(run_id, kind, created_at) VALUES ('x', 'k', 0)")
                conn.execute("INSERT INTO runs(run_id, kind, created_at) VALUES ('x', 'k', 0)")
        assert store.query("SELECT COUNT(*) FROM runs")[0][0] == 0


def test_model_refresh_keeps_known_facts(tmp_path):
    with Store(tmp_path / "r.db") as store:
        store.add_model(ModelRecord("b" * 64, "/b.tflite", "tflite", macs=100, tflite_top1=0.9))
        store.add_model(ModelRecord("b" * 64, "/b.tflite", "tflite", macs=None, params=7))
        row = store.query("SELECT macs, params, tflite_top1 FROM models")[0]
    assert tuple(row) == (100, 7, 0.9)


def test_bad_store_paths(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)
    with pytest.raises(StoreError, match="folder does not exist"):
        Store(tmp_path / "no" / "r.db")
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite at all")
    with pytest.raises(StoreError, match="not a SQLite results store"):
        Store(junk)
    with pytest.raises(StoreError, match="No results store"):
        read_measurements(tmp_path / "missing.db")


def test_unknown_run_names_recent_ones(tmp_path):
    with Store(tmp_path / "r.db") as store:
        run_id = store.record_run("profile")
        with pytest.raises(StoreError, match=run_id):
            store.get_run("nope")
