"""The harness's fixed cost per profile: what a command costs besides its own work (virtual Pixel 6, real ADB)."""
import os
import subprocess
import sys
import time
from pathlib import Path

from android_harness.connection import AdbShellConnection

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def test_a_shell_command_does_not_wait_for_a_delayed_ack(phone):
    """adb-shell writes a message's header and payload as two sends; with Nagle on, the payload of every OPEN
    waited for the phone's delayed ACK (40 ms on Linux), so ``true`` took >= 43 ms here. With TCP_NODELAY it
    takes a few ms: the minimum of ten is far below 40 ms even on a loaded machine."""
    conn = AdbShellConnection(phone.serial)
    try:
        times = []
        for _ in range(10):
            started = time.perf_counter()
            assert conn.shell("true").exit_code == 0
            times.append(time.perf_counter() - started)
        assert min(times) < 0.030, times
    finally:
        conn.close()


def test_the_phones_tools_start_without_loading_the_phone():
    """``getprop``/``dumpsys``/``taskset`` run as ``python -S -m android_harness.virtual.tools``: importing
    them loads no ADB server, sandbox or power model (which cost ~40 ms per command), and no site-packages."""
    code = ("import sys, android_harness.virtual.tools; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('android_harness', 'adb_shell', 'numpy')))))")
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_ROOT))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["android_harness", "android_harness.errors", "android_harness.virtual",
                                  "android_harness.virtual.tools"]
    from android_harness.virtual import VirtualPhone  # the package's public name still resolves

    assert VirtualPhone.__name__ == "VirtualPhone"


def test_benchmark_phase_counts_runs_and_seconds(tiny_tflite):
    """The virtual benchmark_model's timing loop (real LiteRT): at least ``min_runs`` and ``min_secs``, never
    past ``max_secs``, and every sample is one invoke's time (their sum fits in the phase's wall time)."""
    from ai_edge_litert import interpreter as litert

    from android_harness.virtual.benchmark_tool import _phase

    interpreter = litert.Interpreter(model_path=str(tiny_tflite), num_threads=1)
    interpreter.allocate_tensors()
    started = time.perf_counter()
    samples = _phase(interpreter, 50, 0.2, 150.0)
    wall = time.perf_counter() - started
    assert len(samples) >= 50 and wall >= 0.2 and (samples > 0).all()
    assert samples.sum() / 1e6 <= wall
    few = _phase(interpreter, 3, 0.0, 150.0)
    assert len(few) == 3
    started = time.perf_counter()
    capped = _phase(interpreter, 10**9, 0.0, 0.1)
    assert 0.1 <= time.perf_counter() - started < 1.0 and 0 < len(capped) < 10**9


def test_a_profile_says_where_its_time_went(phone, tiny_tflite):
    """``steps_s``: every step of profile_on_device in order, adding up to the run's wall time; the benchmark
    step holds at least the timed inferences; without energy there is no baseline and no sampler."""
    from android_harness.benchmark import BenchmarkOptions
    from android_harness.connection import connect
    from android_harness.device import AndroidDevice
    from android_harness.profile import STEPS, profile_on_device

    device = AndroidDevice(connect(phone.serial))
    for energy in (False, True):
        run = profile_on_device(device, tiny_tflite, BenchmarkOptions(num_threads=1, min_secs=0.3),
                                measure_energy=energy, baseline_s=0.5)
        steps = dict(run.steps_s)
        assert tuple(steps) == STEPS and all(s >= 0 for s in steps.values())
        assert abs(sum(steps.values()) - run.wall_s) < 1e-6
        timed_s = run.benchmark.inference_count * run.benchmark.inference_avg_us / 1e6
        assert steps["benchmark_model"] >= timed_s
        if energy:
            assert steps["idle baseline"] >= 0.5 and steps["sampler start + ODPM"] > 0
        else:
            assert steps["idle baseline"] == 0 and steps["sampler start + ODPM"] == 0


def test_battery_thermal_and_governors_are_read_together(phone):
    """``readings()``: what ``battery()``, ``thermal()`` and ``governors()`` read, in one round trip; a phone whose
    ``dumpsys battery`` fails raises DeviceCommandError naming it, as ``battery()`` does."""
    import pytest

    from android_harness.connection import connect
    from android_harness.device import AndroidDevice
    from android_harness.errors import DeviceCommandError

    device = AndroidDevice(connect(phone.serial))
    phone.userspace.set_state("thermal", {"status": 1})
    battery, thermal, governors = device.readings()
    alone = device.battery()
    assert (battery.level, battery.plugged, battery.scale) == (alone.level, alone.plugged, alone.scale)
    assert abs(battery.temperature_c - alone.temperature_c) < 0.5
    assert thermal.status == device.thermal().status == 1 and len(thermal.temperatures) >= 3
    assert governors == device.governors() == phone.profile.governor
    assert device.info().governors == governors and device.snapshot().thermal_status == "LIGHT"
    dumpsys = phone.sandbox_path("/system/bin/dumpsys")  # a phone whose battery service does not answer
    dumpsys.write_text("#!/system/bin/sh\n[ \"$1\" = battery ] && { echo \"Can't find service: battery\"; exit 1; }\n"
                       + dumpsys.read_text().split("\n", 1)[1])
    with pytest.raises(DeviceCommandError, match="dumpsys battery") as failed:
        device.readings()
    assert failed.value.returncode == 1 and "Can't find service" in failed.value.stdout
    assert device.thermal().status == 1  # the rest of the phone still answers
