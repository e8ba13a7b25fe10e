"""Profile one .tflite on one phone: the sequence every measurement follows.

    device info -> benchmark binary (resolve, ABI check, push cached) -> model (push cached)
    -> thermal gate -> state before -> [charging check, idle baseline (or a fresh one reused)] -> power sampler
    + ODPM around benchmark_model pinned to the fastest cores -> state after -> parse -> energy

The idle baseline (2 s by default) is the largest part of the harness's own time. Back-to-back runs on one phone
may share it: pass a :class:`BaselineCache` and a run reuses the phone's last baseline while it is younger than
``max_age_s`` and the phone is in the same thermal state (same thermal status, battery within
``temp_tolerance_c``); otherwise it takes a new one. Without a cache every run takes its own (the safe default
for a single measurement). The energy report says which it was and how old the baseline was.
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from android_harness.benchmark import BenchmarkOptions, command_line, resolve_binary
from android_harness.deploy import PushResult, push_cached
from android_harness.device import AndroidDevice, DeviceInfo, DeviceState
from android_harness.errors import HarnessError
from android_harness.energy import (
    Conventions,
    EnergyReport,
    compute_energy,
    detect_conventions,
    idle_power_summary,
    odpm_net_power,
    parse_power_samples,
)
from android_harness.errors import BenchmarkError, EnergyMeasurementError
from android_harness.parsers import BenchmarkResult, parse_benchmark_output, parse_odpm_energy
from android_harness.services import PowerSampler, ThermalGate, reap_leftovers, stop_tracked, tracked_command

log = logging.getLogger(__name__)
ODPM_GLOB = "/sys/bus/iio/devices/iio:device*/energy_value"
# How long a baseline may be reused, and how far the battery may warm or cool meanwhile: see BaselineCache.
DEFAULT_BASELINE_MAX_AGE_S = 120.0
DEFAULT_BASELINE_TEMP_TOLERANCE_C = 1.0
# Battery/thermal readings younger than this serve as the state before a run (temperatures move over minutes).
READINGS_FRESH_S = 5.0


@dataclass(frozen=True)
class IdleBaseline:
    """The idle power of one phone, as a run measured it before its benchmark, with the state it was taken in.

    ``power_text`` holds the sampler's lines (see :mod:`android_harness.energy`); ``odpm_start``/``odpm_end`` the
    ODPM counters around it (empty without ODPM). ``taken_monotonic_s`` is this host's ``time.monotonic()``
    when it started (ages are measured with it), ``taken_utc`` the same moment for people.
    """

    serial: str
    power_text: str
    odpm_start: dict = field(compare=False)
    odpm_end: dict = field(compare=False)
    duration_s: float
    taken_monotonic_s: float
    taken_utc: str
    thermal_status: str
    thermal_level: int
    battery_temp_c: float | None
    max_temp_c: float | None
    charger: str

    def age_s(self, now_s: float | None = None) -> float:
        return (time.monotonic() if now_s is None else now_s) - self.taken_monotonic_s

    def summary(self, conventions: Conventions) -> tuple[float, float, int]:
        """(mean idle power mW, its standard error mW, distinct gauge readings)."""
        return idle_power_summary(parse_power_samples(self.power_text, conventions))


class BaselineCache:
    """Idle baselines kept per phone (by serial) for back-to-back runs; thread-safe (one cache may serve a farm).

    A run reuses its phone's baseline when all of these hold, and takes (and keeps) a new one otherwise:

    - it is at most ``max_age_s`` old when the run starts;
    - the thermal status is the one it was taken in, and the battery temperature is within
      ``temp_tolerance_c`` of it (a warmer phone leaks more: its idle power is not the cool phone's);
    - the charger state is the same.

    Why 120 s and 1 C by default: see ``benchmarks/idle_baseline_drift.py`` and the README's "Energy baseline"
    paragraph. ``max_age_s=0`` turns reuse off (every run takes its own baseline).

        cache = BaselineCache()
        profile_on_device(device, "a.tflite", options, baselines=cache)   # takes a baseline
        profile_on_device(device, "b.tflite", options, baselines=cache)   # reuses it if still fresh
    """

    def __init__(self, max_age_s: float = DEFAULT_BASELINE_MAX_AGE_S,
                 temp_tolerance_c: float = DEFAULT_BASELINE_TEMP_TOLERANCE_C):
        if not max_age_s >= 0:
            raise HarnessError(f"max_age_s must be >= 0 seconds (0 turns baseline reuse off). "
                               f"Received: max_age_s={max_age_s}")
        if not temp_tolerance_c >= 0:
            raise HarnessError(f"temp_tolerance_c must be >= 0 degrees C. "
                               f"Received: temp_tolerance_c={temp_tolerance_c}")
        self.max_age_s = float(max_age_s)
        self.temp_tolerance_c = float(temp_tolerance_c)
        self._baselines: dict[str, IdleBaseline] = {}
        self._lock = threading.Lock()

    def get(self, serial: str) -> IdleBaseline | None:
        with self._lock:
            return self._baselines.get(serial)

    def put(self, baseline: IdleBaseline) -> None:
        with self._lock:
            self._baselines[baseline.serial] = baseline

    def forget(self, serial: str) -> None:
        with self._lock:
            self._baselines.pop(serial, None)

    def lookup(self, serial: str, state: DeviceState, now_s: float | None = None) -> tuple[IdleBaseline | None, str]:
        """(the baseline to reuse or None, why): None means take a new one."""
        base = self.get(serial)
        if base is None:
            return None, "fresh: no earlier baseline on this phone"
        return self.judge(base, state, now_s)

    def judge(self, base: IdleBaseline, state: DeviceState, now_s: float | None = None
              ) -> tuple[IdleBaseline | None, str]:
        age = base.age_s(now_s)
        if self.max_age_s == 0:
            return None, "fresh: baseline reuse is off (max age 0 s)"
        if age > self.max_age_s:
            return None, f"fresh: the last baseline was {age:.0f} s old (> {self.max_age_s:g} s)"
        if state.thermal_level != base.thermal_level:
            return None, (f"fresh: thermal status {state.thermal_status}, the last baseline was taken at "
                          f"{base.thermal_status}")
        if state.battery_temp_c is None or base.battery_temp_c is None:
            return None, "fresh: battery temperature unknown, so the thermal state cannot be compared"
        if abs(state.battery_temp_c - base.battery_temp_c) > self.temp_tolerance_c:
            return None, (f"fresh: battery {state.battery_temp_c:.1f} C, the last baseline was taken at "
                          f"{base.battery_temp_c:.1f} C (> {self.temp_tolerance_c:g} C apart)")
        if state.charger != base.charger:
            return None, f"fresh: charger {state.charger}, the last baseline was taken with {base.charger}"
        return base, (f"reused: taken {age:.1f} s earlier ({base.taken_utc}) at thermal {base.thermal_status}, "
                      f"battery {base.battery_temp_c:.1f} C (now {state.battery_temp_c:.1f} C)")


@dataclass(frozen=True)
class DeviceProfileRun:
    benchmark: BenchmarkResult
    energy: EnergyReport | None
    before: DeviceState
    after: DeviceState
    throttled: bool
    device_info: DeviceInfo
    model_push: PushResult
    binary: str
    binary_sha256: str | None
    command: str
    source: str
    wall_s: float
    thermal_wait_s: float = 0.0
    warnings: tuple[str, ...] = ()
    delegate_requested: str = "cpu"  # "gpu" | "nnapi" | "xnnpack" | "cpu": what the command line asked for
    delegate_used: str = "cpu"  # what the output shows actually ran the graph (the numbers belong to it)
    delegate_fallback: bool = False  # the requested delegate did not run: the numbers are the CPU's
    baseline: IdleBaseline | None = None  # the idle baseline the energy was computed against (None: no energy)
    power_text: str = field(default="", repr=False)  # the sampler's lines during the run (energy.py format)
    odpm_run: tuple[dict, dict] = field(default=({}, {}), repr=False, compare=False)  # ODPM counters around the run
    # Seconds each step of the run took, in order (see STEPS): where the harness's own time goes.
    steps_s: tuple[tuple[str, float], ...] = field(default=(), repr=False, compare=False)


# The steps of profile_on_device, in the order they run (DeviceProfileRun.steps_s); energy-only ones are 0 without.
STEPS = ("device info", "reap leftovers", "binary + model (cached push)", "state before + thermal gate",
         "idle baseline", "sampler start + ODPM", "benchmark_model", "stop benchmark + sampler", "state after",
         "parse + energy")


class _Steps:
    """Wall time per step: ``mark(name)`` closes the step that began at the previous mark."""

    def __init__(self, started: float) -> None:
        self.last = started
        self.seconds: dict[str, float] = dict.fromkeys(STEPS, 0.0)

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] += now - self.last
        self.last = now


def energy_against_baseline(info: DeviceInfo, baseline: IdleBaseline, run_text: str, odpm_run_start: dict | None,
                            odpm_run_end: dict | None, inference_ms: float) -> EnergyReport:
    """Energy of one inference from a run's samples against an idle baseline (ODPM rails when both have them).

    ``profile_on_device`` uses it for the run it made; called again with another baseline of the same phone
    (e.g. ``energy_against_baseline(run.device_info, other, run.power_text, *run.odpm_run, ms)``) it shows how
    much the choice of baseline moves the result.
    """
    conv = _conventions(info, baseline.power_text + run_text)
    rail_power = ()
    if baseline.odpm_start and baseline.odpm_end and odpm_run_start and odpm_run_end:
        rail_power = odpm_net_power(baseline.odpm_start, baseline.odpm_end, odpm_run_start, odpm_run_end)
    return compute_energy(parse_power_samples(baseline.power_text, conv), parse_power_samples(run_text, conv),
                          inference_ms, conv, rail_power)


def requested_delegate(options: BenchmarkOptions) -> str:
    if options.use_gpu:
        return "gpu"
    if options.use_nnapi:
        return "nnapi"
    return "xnnpack" if options.use_xnnpack else "cpu"


def delegate_outcome(bench: BenchmarkResult, requested: str) -> tuple[str, bool, str | None]:
    """(delegate that ran, fell back?, warning) from what benchmark_model printed.

    A GPU/NNAPI delegate that failed to apply, or was applied but runs no node ("Though NNAPI delegate is
    explicitly applied, the model graph will not be executed by the delegate"), leaves the graph on the CPU:
    the numbers then belong to XNNPACK (when it ran) or the plain CPU kernels, never to the requested delegate.
    """
    cpu = "xnnpack" if bench.delegate_ran("xnnpack") else "cpu"
    if requested in ("cpu", "xnnpack"):
        if requested == "xnnpack" and bench.delegate_ran("xnnpack") is False:
            return "cpu", True, "XNNPACK was requested but ran no node: the numbers are the plain CPU kernels'"
        return requested, False, None
    ran = bench.delegate_ran(requested)
    if ran is False:
        return cpu, True, (f"the {requested.upper()} delegate did not run (fell back to {cpu}); the numbers are "
                           f"recorded under {cpu}")
    if ran is None:
        return requested, False, (f"benchmark_model's output does not say whether the {requested.upper()} "
                                  f"delegate ran")
    partial = any(d.name == requested and d.coverage == "partial" for d in bench.delegates)
    return requested, False, (f"the {requested.upper()} delegate runs part of the graph; the rest runs on the CPU"
                              if partial else None)


def _conventions(info: DeviceInfo, samples_text: str) -> Conventions:
    """The gauge's unit/sign: from the matching device profile, else guessed from the samples."""
    if info.virtual_profile:
        try:
            from device_profiles import load_profile

            b = load_profile(info.virtual_profile).battery
            return Conventions(b.current_unit, b.current_sign_discharge, b.voltage_unit, False)
        except Exception:  # noqa: BLE001 - fall back to detection
            pass
    return detect_conventions(samples_text)


def _odpm(device) -> dict:
    return parse_odpm_energy(device.shell(f"cat {ODPM_GLOB} 2>/dev/null").stdout)


def take_idle_baseline(device, state: DeviceState, baseline_s: float) -> IdleBaseline:
    """Sample the idle phone for ``baseline_s`` seconds (fuel gauge, and ODPM counters where present)."""
    taken_utc = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    taken = time.monotonic()
    sampler = PowerSampler(device).start()
    try:
        odpm_start = _odpm(device)
        time.sleep(baseline_s)
        odpm_end = _odpm(device)
    finally:
        text = sampler.stop()
    return IdleBaseline(device.serial, text, odpm_start, odpm_end, baseline_s, taken, taken_utc,
                        state.thermal_status, state.thermal_level, state.battery_temp_c, state.max_temp_c,
                        state.charger)


def profile_on_device(device: AndroidDevice, model_path: str | Path, options: BenchmarkOptions, *,
                      measure_energy: bool = True, allow_charging: bool = False, baseline_s: float = 2.0,
                      thermal_timeout_s: float = 60.0, battery_temp_max_c: float = 40.0,
                      benchmark_binary: str | None = None, timeout_s: float | None = None,
                      baselines: BaselineCache | None = None) -> DeviceProfileRun:
    """Profile ``model_path`` on ``device``. ``baselines``: reuse a fresh idle baseline of this phone from an
    earlier run (see :class:`BaselineCache`); None takes a new one for this run."""
    started = time.perf_counter()
    steps = _Steps(started)
    warnings: list[str] = []
    info = device.info()
    info_read = time.monotonic()
    steps.mark("device info")
    reap_leftovers(device)  # a killed earlier run may have left a sampler or benchmark running
    steps.mark("reap leftovers")
    host_binary, device_binary = resolve_binary(device, info.abi, benchmark_binary)
    binary_sha = None
    if host_binary:
        pushed = push_cached(device, host_binary, kind="bin", suffix="", mode_exec=True)
        device_binary, binary_sha = pushed.remote_path, pushed.sha256
    model_push = push_cached(device, model_path)
    steps.mark("binary + model (cached push)")
    # The state before the run doubles as the thermal gate's first reading, and comes from the battery and thermal
    # readings device.info() just made unless the pushes took a while: a cool phone is read once per run.
    gate = ThermalGate(device, thermal_timeout_s, battery_temp_max_c)
    if time.monotonic() - info_read <= READINGS_FRESH_S:
        before = DeviceState.of(info.battery, info.thermal, info.governors)
    else:
        before = device.snapshot()
    thermal_wait_s = 0.0
    if not gate.cool_enough(before.thermal_level, before.battery_temp_c):
        thermal_wait_s = gate.wait()
        before = device.snapshot()
    if measure_energy and "fuel_gauge" not in info.energy_sources:
        raise EnergyMeasurementError(f"{device.serial} exposes no fuel gauge (current_now/voltage_now); "
                                     f"profile with --no-energy")
    if measure_energy and before.charger != "none":
        message = (f"{device.serial} is charging ({before.charger}); battery counters then measure the charger, "
                   f"not the model. Unplug it (or `adb shell dumpsys battery unplug`), or pass --allow-charging")
        if not allow_charging:
            raise EnergyMeasurementError(message)
        warnings.append("charging during the run: energy is unreliable")
        log.warning(message)
    affinity = info.fastest_cpus(options.num_threads) if info.clusters else ()
    options = replace(options, cpu_affinity=options.cpu_affinity or affinity)
    command = command_line(device_binary, model_push.remote_path, options)
    run_timeout = timeout_s or (options.max_secs + 60.0)

    steps.mark("state before + thermal gate")
    run_text = ""
    odpm = {}
    baseline: IdleBaseline | None = None
    baseline_note = ""
    if measure_energy:
        if baselines is not None:
            baseline, baseline_note = baselines.lookup(device.serial, before)
        if baseline is None:
            baseline = take_idle_baseline(device, before, baseline_s)
            baseline_note = baseline_note or "fresh: taken for this run"
            if baselines is not None:
                baselines.put(baseline)
        log.info("%s idle baseline %s", device.serial, baseline_note)
        odpm["base_start"], odpm["base_end"] = baseline.odpm_start, baseline.odpm_end
        steps.mark("idle baseline")
    run_started = time.monotonic()
    sampler = PowerSampler(device).start() if measure_energy else None
    try:
        if measure_energy:
            odpm["run_start"] = _odpm(device)
            steps.mark("sampler start + ODPM")
        result = device.shell(tracked_command(command, "benchmark", f"--graph={model_push.remote_path}"),
                              timeout_s=run_timeout)
        steps.mark("benchmark_model")
        if measure_energy:
            odpm["run_end"] = _odpm(device)
    finally:
        stop_tracked(device, "benchmark")  # after a timeout it may still run on the phone
        if sampler is not None:
            run_text = sampler.stop()
    steps.mark("stop benchmark + sampler")
    bench = parse_benchmark_output(result.stdout + "\n" + result.stderr)
    if bench.failed or result.exit_code != 0:
        reason = bench.failure_reason or f"exit code {result.exit_code}"
        raise BenchmarkError(f"benchmark_model failed on {device.serial}: {reason}")
    requested = requested_delegate(options)
    delegate_used, fallback, delegate_warning = delegate_outcome(bench, requested)
    if delegate_warning:
        warnings.append(delegate_warning)
        log.warning("%s: %s", device.serial, delegate_warning)
    after = device.snapshot()
    steps.mark("state after")
    throttled = after.thermal_level > before.thermal_level or after.thermal_level >= 2
    energy = None
    if measure_energy:
        energy = energy_against_baseline(info, baseline, run_text, odpm.get("run_start"), odpm.get("run_end"),
                                         bench.inference_avg_us / 1000.0)
        reused = baseline_note.startswith("reused")
        energy = replace(energy, baseline_reused=reused, baseline_age_s=baseline.age_s(run_started) if reused else 0.0,
                         baseline_note=baseline_note)
        if energy.below_resolution:
            warnings.append(f"energy below resolution (< {energy.resolution_mj:.4g} mJ): the net power is within "
                            f"the measurement's uncertainty; run longer (--min-secs) for more gauge readings")
    steps.mark("parse + energy")
    log.debug("%s profile steps (s): %s", device.serial,
              ", ".join(f"{name} {sec:.3f}" for name, sec in steps.seconds.items()))
    return DeviceProfileRun(bench, energy, before, after, throttled, info, model_push, device_binary, binary_sha,
                            command, info.source, steps.last - started, thermal_wait_s, tuple(warnings),
                            requested, delegate_used, fallback, baseline, run_text,
                            (odpm.get("run_start") or {}, odpm.get("run_end") or {}), tuple(steps.seconds.items()))
