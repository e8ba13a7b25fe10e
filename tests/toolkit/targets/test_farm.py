"""PhoneFarm against virtual phones on loopback (the real ADB protocol): jobs spread over the phones, a phone killed
mid-run hands its job to the other one, nothing is lost or measured twice, and the phone comes back when restarted."""
import shutil
import sqlite3
import time

import pytest

from android_harness.virtual import VirtualPhone
from toolkit.errors import InvalidArgumentError, TargetError
from toolkit.targets import ProfileOptions
from toolkit.targets.farm import PhoneFarm

QUICK = ProfileOptions(num_runs=5, warmup_runs=1, min_secs=0.3, measure_energy=False)


@pytest.fixture(scope="module")
def tiny_models(tiny_tflite, tmp_path_factory):
    """Four copies of one real int8 .tflite under different names, so each job's measurement is traceable."""
    folder = tmp_path_factory.mktemp("farm_models")
    paths = [folder / f"m{i}_int8.tflite" for i in range(4)]
    for path in paths:
        shutil.copy(tiny_tflite, path)
    return paths


def _wait(condition, timeout_s=30.0, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_phones_measure_in_parallel(tiny_models):
    with VirtualPhone("pixel_6") as a, VirtualPhone("pixel_4a") as b, PhoneFarm([a.serial, b.serial]) as farm:
        assert farm.models() == ["Pixel 6", "Pixel 4a"]
        futures = [farm.submit(p, QUICK) for p in tiny_models]
        # Both phones busy at one moment: the measurements overlap.
        _wait(lambda: all(s.busy for s in farm.status()), what="both phones busy")
        ms = [f.result(timeout=120) for f in futures]
        status = {s.serial: s for s in farm.status()}
        # A job for a named model runs only on a phone of that model (matched regardless of case).
        only_4a = farm.submit(tiny_models[0], QUICK, model="pixel 4a").result(timeout=60)
        with pytest.raises(InvalidArgumentError, match="No phone of model 'Pixel 9'.*Pixel 6, Pixel 4a"):
            farm.submit(tiny_models[0], QUICK, model="Pixel 9")
    assert [m.model_path for m in ms] == [str(p.resolve()) for p in tiny_models]  # each future: its own job
    assert {m.device for m in ms} == {a.serial, b.serial}
    assert {m.source for m in ms} == {"virtual:pixel_6", "virtual:pixel_4a"}
    for m in ms:  # provenance as a single phone gives it: the label matches the serial that measured it
        assert m.source == ("virtual:pixel_6" if m.device == a.serial else "virtual:pixel_4a")
        assert m.provenance_dict()["device"] == m.device
    assert status[a.serial].jobs_done + status[b.serial].jobs_done == 4
    assert status[a.serial].jobs_done >= 1 and status[b.serial].jobs_done >= 1
    assert status[a.serial].model == "Pixel 6" and status[a.serial].soc and status[a.serial].reachable
    assert status[a.serial].battery_pct is not None and status[a.serial].thermal_status == "NONE"
    assert only_4a.device == b.serial and only_4a.source == "virtual:pixel_4a"


def test_phone_killed_mid_run_its_job_moves_and_it_comes_back(tiny_models, tmp_path):
    from toolkit.store import Store

    a = VirtualPhone("pixel_6").start()
    b = VirtualPhone("pixel_4a").start()
    jobs = tiny_models[:3]
    try:
        with PhoneFarm([a.serial, b.serial], probe_interval_s=0.3, lost_timeout_s=1.0) as farm:
            futures = [farm.submit(p, QUICK) for p in jobs]  # any model: b's job may move to a
            _wait(lambda: {s.serial: s.busy for s in farm.status()}[b.serial], what="phone b busy")
            port = b.port
            b.stop()  # mid-measurement: its connection drops
            ms = [f.result(timeout=120) for f in futures]
            status = {s.serial: s for s in farm.status()}
            assert not status[b.serial].reachable and "127.0.0.1" in status[b.serial].last_error
            assert status[b.serial].jobs_done == 0 and status[a.serial].jobs_done == 3
            # Nothing lost, nothing twice: one measurement per job, each of its own model file, all stored, all a's.
            with Store(tmp_path / "r.db") as store:
                store.record_run("profile", "test", {}, measurements=tuple(ms))
            with sqlite3.connect(tmp_path / "r.db") as conn:
                rows = conn.execute("SELECT model_path, device, source FROM measurements ORDER BY model_path").fetchall()
            assert rows == [(str(p.resolve()), a.serial, "virtual:pixel_6") for p in jobs]
            # b restarted on its address: the probe brings it back, and it measures again.
            b = VirtualPhone("pixel_4a", port=port).start()
            _wait(lambda: {s.serial: s.reachable for s in farm.status()}[b.serial], what="phone b back")
            again = farm.submit(jobs[0], QUICK, model="Pixel 4a").result(timeout=60)
            assert again.device == b.serial and again.source == "virtual:pixel_4a"
            assert {s.serial: s.jobs_done for s in farm.status()}[b.serial] == 1
    finally:
        a.stop()
        b.stop()


def test_no_phone_of_the_model_left_fails_the_job_with_one_clear_error(tiny_models):
    a = VirtualPhone("pixel_6").start()
    b = VirtualPhone("pixel_4a").start()
    try:
        with PhoneFarm([a.serial, b.serial], probe_interval_s=0.2, lost_timeout_s=0.8) as farm:
            b.stop()
            future = farm.submit(tiny_models[0], QUICK, model="Pixel 4a")
            with pytest.raises(TargetError) as err:
                future.result(timeout=60)
            text = str(err.value)
            assert "No phone of model 'Pixel 4a' is left" in text and b.serial in text and "--device" in text
            # The other model's phone is unaffected.
            assert farm.submit(tiny_models[1], QUICK).result(timeout=60).device == a.serial
    finally:
        a.stop()
        b.stop()


def test_unreachable_or_repeated_phones_are_refused_at_start():
    with VirtualPhone("pixel_6") as a:
        serial = a.serial
        with pytest.raises(InvalidArgumentError, match="given once"):
            PhoneFarm([serial, serial])
    with pytest.raises(TargetError, match=f"Cannot reach 1 of 1 phones: {serial}"):
        PhoneFarm([serial])
    with pytest.raises(InvalidArgumentError, match="at least one"):
        PhoneFarm([])
