"""Synthesis on a phone farm: two virtual phones measure a cycle's candidates in parallel; one is killed mid-run, the
run finishes on the other with nothing lost or stored twice, and the candidates are the ones a run measuring one at a
time makes (same seeds -> same ids, seeds, architectures and accuracies, whichever phone was faster). The reference
run measures on the host (quicker; with U = NetScore and an accuracy requirement no measured number steers the
generator, so the target does not change the candidates) and trains the prototype and supernet both runs use. That
reference run is the session's shared tiny run (``tiny_synthesis`` in tests/toolkit/conftest.py; the lost-phone and
report tests reuse its prototype and supernet too)."""
import dataclasses
import sqlite3
import threading
import time

from android_harness.virtual import VirtualPhone
from toolkit.synthesis import run_synthesis


def _rows(db, sql, args=()):
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []


def test_two_phones_one_killed_mid_run_same_candidates_as_one_at_a_time(tmp_path, tiny_synthesis, reuse_tiny):
    farm_db = tmp_path / "farm.db"
    one, one_config = tiny_synthesis  # the host run, measuring one candidate at a time
    assert one.stopped == "done" and one_config.target == "host"
    with VirtualPhone("pixel_6") as a:
        b = VirtualPhone("pixel_6").start()
        result = {}
        try:
            # The same prototype and supernet (their training is not what this test is about).
            cfg = dataclasses.replace(one_config, target="android", device=a.serial, devices=(a.serial, b.serial),
                                      **reuse_tiny)
            worker = threading.Thread(target=lambda: result.update(r=run_synthesis(cfg, tmp_path / "farm", farm_db,
                                                                                   progress=False)))
            worker.start()
            deadline = time.time() + 600
            # b has measured a search candidate: kill it while the search goes on.
            while not _rows(farm_db, "SELECT 1 FROM measurements WHERE device=? AND model_path LIKE ?",
                            (b.serial, "%c00%")) and time.time() < deadline and worker.is_alive():
                time.sleep(0.1)
        finally:
            b.stop()
        worker.join(600)
    assert "r" in result, "the farm run crashed instead of finishing on the other phone"
    farm = result["r"]
    assert farm.stopped == "done" and all(c.status == "ok" for c in farm.candidates)
    # Same seeds -> same candidates, in the same order, as measured one at a time.
    assert [(c.candidate_id, c.seed, c.spec_hash) for c in farm.candidates] == \
        [(c.candidate_id, c.seed, c.spec_hash) for c in one.candidates]
    assert [c.int8_top1 for c in farm.candidates] == [c.int8_top1 for c in one.candidates]
    devices = dict(_rows(farm_db, "SELECT c.candidate_id, m.device FROM candidates c JOIN measurements m "
                                  "ON m.model_id = c.model_id AND m.run_id = c.run_id WHERE c.phase='search'"))
    assert set(devices.values()) == {a.serial, b.serial}  # both phones measured candidates
    # Nothing lost, nothing twice: one measurement per evaluated search network.
    counts = _rows(farm_db, "SELECT model_path, COUNT(*) FROM measurements WHERE model_path LIKE '%/candidates/%' "
                            "GROUP BY model_path")
    assert counts and all(n == 1 for _, n in counts)
    evaluated = {c.candidate_id for c in farm.candidates if c.tflite_path and c.candidate_id in c.tflite_path}
    evaluated.add("supernet-max")  # the prototype architecture as the search sees it
    assert {p.rsplit("/", 1)[1].removesuffix("_int8.tflite") for p, _ in counts} == evaluated
    assert all(c.latency_source == "virtual:pixel_6" for c in farm.candidates)
