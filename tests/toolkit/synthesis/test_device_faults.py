"""A phone that goes away during synthesis: its candidates become failed records with the reason, the run goes on
and finishes (no crash, nothing lost), and a failure is never copied to a later sample of the same architecture.
The run starts from the session's shared tiny prototype and supernet (``tiny_synthesis`` in tests/toolkit/conftest.py,
same images): their training is not what this test is about; the prototype is still converted and measured here."""
import sqlite3
import threading
import time

from android_harness.virtual import VirtualPhone
from toolkit.synthesis import SynthesisConfig, run_synthesis


def _ids(db):
    try:
        with sqlite3.connect(db) as conn:
            return [r[0] for r in conn.execute("SELECT candidate_id FROM candidates")]
    except sqlite3.OperationalError:
        return []


def test_lost_phone_mid_run_gives_failed_candidates_and_a_finished_run(tmp_path, reuse_tiny):
    db = tmp_path / "f.db"
    phone = VirtualPhone("pixel_6").start()
    result = {}
    try:
        cfg = SynthesisConfig(prototype="resnet20", prototype_width=0.25, n_train=600, prototype_epochs=1,
                              supernet_epochs=1, cycles=2, population=2, final_k=1, profile_runs=3, probe_samples=32,
                              recal_samples=128, target="android", device=phone.serial, retrain_reference=False,
                              requirements=("accuracy_drop<=100pt",), **reuse_tiny)
        worker = threading.Thread(target=lambda: result.update(r=run_synthesis(cfg, tmp_path / "run", db,
                                                                               progress=False)))
        worker.start()
        deadline = time.time() + 600
        while "c000-00" not in _ids(db) and time.time() < deadline and worker.is_alive():
            time.sleep(0.2)
    finally:
        phone.stop()  # the phone goes away mid-search
    worker.join(600)
    assert "r" in result, "the run crashed instead of recording the lost phone"
    r = result["r"]
    failed = [c for c in r.candidates if c.status == "failed"]
    assert failed and all("DeviceError" in c.failure_reason for c in failed)
    assert r.stopped == "done" and len(r.candidates) == 4
    assert all(c.status == "failed" for c in r.finals)  # measured on the phone too: recorded, not raised
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT status, failure_reason FROM candidates WHERE status='failed'").fetchall()
    assert len(rows) >= len(failed) and all(reason for _, reason in rows)
