"""Reusing one phone's idle baseline across back-to-back runs (virtual Pixel 6, real ADB protocol).

The phone's state is changed the way the world changes a real phone's: its battery warms (the virtual hardware's
battery zone) or the thermal service reports a new status (its state file), never by reaching into our code.
"""
import math
import time

import pytest

from android_harness.benchmark import BenchmarkOptions
from android_harness.connection import connect
from android_harness.device import AndroidDevice
from android_harness.errors import HarnessError
from android_harness.profile import BaselineCache, energy_against_baseline, profile_on_device, take_idle_baseline

OPTIONS = BenchmarkOptions(num_threads=1, min_secs=1.0)


def _run(device, model, cache, **kwargs):
    return profile_on_device(device, model, OPTIONS, baseline_s=1.0, baselines=cache, **kwargs)


def _wait_until_read(device, test, timeout_s: float = 5.0) -> None:
    """Until the phone's battery reading passes ``test``: the virtual hardware writes its sysfs files every
    50 ms tick, so a change shows in ``dumpsys battery`` one tick later, as a real gauge lags its thermistor."""
    deadline = time.monotonic() + timeout_s
    while not test(device.battery().temperature_c):
        assert time.monotonic() < deadline, "the battery temperature never changed on the phone"
        time.sleep(0.02)


def _battery_zone(phone) -> str:
    return next(z.name for z in phone.profile.thermal_zones if z.type == "battery")


def test_back_to_back_runs_reuse_the_baseline_and_say_so(phone, tiny_tflite):
    device = AndroidDevice(connect(phone.serial))
    cache = BaselineCache(max_age_s=120, temp_tolerance_c=1.0)
    first = _run(device, tiny_tflite, cache)
    second = _run(device, tiny_tflite, cache)
    assert not first.energy.baseline_reused and first.energy.baseline_age_s == 0
    assert first.energy.baseline_note.startswith("fresh: no earlier baseline")
    # The second run computed its energy against the first run's baseline, and its report says how old it was.
    assert second.baseline is first.baseline and second.energy.baseline_reused
    assert first.wall_s + second.wall_s > second.energy.baseline_age_s > 0
    assert second.energy.baseline_note.startswith("reused: taken ")
    assert second.energy.baseline_power_mw == pytest.approx(first.energy.baseline_power_mw)
    assert second.energy.energy_per_inference_mj > 0
    # Without a cache every run takes its own (the default for a single measurement).
    alone = _run(device, tiny_tflite, None)
    assert not alone.energy.baseline_reused and alone.baseline is not first.baseline


def test_a_stale_or_thermally_changed_baseline_is_retaken(phone, tiny_tflite):
    device = AndroidDevice(connect(phone.serial))
    zone = _battery_zone(phone)
    stale = BaselineCache(max_age_s=0.5)  # older than that by the time the first run ends
    first = _run(device, tiny_tflite, stale)
    again = _run(device, tiny_tflite, stale)
    assert not again.energy.baseline_reused and again.baseline is not first.baseline
    assert "s old (> 0.5 s)" in again.energy.baseline_note and stale.get(device.serial) is again.baseline

    cache = BaselineCache(max_age_s=600, temp_tolerance_c=1.0)
    base = _run(device, tiny_tflite, cache).baseline
    phone.power.temp_c[zone] += 3.0  # the battery warmed by 3 C (e.g. a long run, or a warm room)
    _wait_until_read(device, lambda c: c > base.battery_temp_c + 2)
    warm = _run(device, tiny_tflite, cache)
    assert not warm.energy.baseline_reused and warm.baseline is not base
    assert "C apart" in warm.energy.baseline_note and warm.baseline.battery_temp_c > base.battery_temp_c + 2

    phone.userspace.set_state("thermal", {"status": 1})  # LIGHT: still passes the gate, but not the same state
    light = _run(device, tiny_tflite, cache)
    assert not light.energy.baseline_reused and light.before.thermal_status == "LIGHT"
    assert "thermal status LIGHT" in light.energy.baseline_note and light.baseline.thermal_status == "LIGHT"
    follow = _run(device, tiny_tflite, cache)  # same LIGHT state, same battery: reused again
    assert follow.energy.baseline_reused and follow.baseline is light.baseline


def test_energy_with_a_reused_baseline_matches_a_fresh_one(phone, tiny_tflite):
    """A run measured against a reused baseline, and the same run's samples against a baseline taken right after
    it (fresh, same thermal state): the two energies agree within the reported uncertainty, and the two idle
    powers within their standard errors."""
    device = AndroidDevice(connect(phone.serial))
    cache = BaselineCache()
    _run(device, tiny_tflite, cache)
    run = profile_on_device(device, tiny_tflite, BenchmarkOptions(num_threads=1, min_secs=2.0), baseline_s=1.0,
                            baselines=cache)
    fresh = take_idle_baseline(device, device.snapshot(), 1.0)
    reused = run.energy
    assert reused.baseline_reused and reused.method == "odpm" and reused.energy_per_inference_mj > 0
    against_fresh = energy_against_baseline(run.device_info, fresh, run.power_text, *run.odpm_run,
                                            run.benchmark.inference_avg_us / 1000.0)
    assert abs(reused.energy_per_inference_mj - against_fresh.energy_per_inference_mj) <= reused.uncertainty_mj
    idle_reused, sem_reused, _ = run.baseline.summary(reused.conventions)
    idle_fresh, sem_fresh, _ = fresh.summary(reused.conventions)
    assert abs(idle_reused - idle_fresh) <= 3 * math.hypot(sem_reused, sem_fresh)


def test_cache_arguments_are_checked():
    with pytest.raises(HarnessError, match="max_age_s must be >= 0.*Received: max_age_s=-1"):
        BaselineCache(max_age_s=-1)
    with pytest.raises(HarnessError, match="Received: temp_tolerance_c=nan"):
        BaselineCache(temp_tolerance_c=float("nan"))
