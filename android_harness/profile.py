"""Profile one .tflite on one phone: the sequence every measurement follows.

    device info -> benchmark binary (resolve, ABI check, push cached) -> model (push cached)
    -> thermal gate -> state before -> [charging check, idle baseline] -> power sampler + ODPM around
    benchmark_model pinned to the fastest cores -> state after -> parse -> energy
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from android_harness.benchmark import BenchmarkOptions, command_line, resolve_binary
from android_harness.deploy import PushResult, push_cached, sha256_file
from android_harness.device import AndroidDevice, DeviceInfo, DeviceState
from android_harness.energy import (
    Conventions,
    EnergyReport,
    compute_energy,
    detect_conventions,
    odpm_net_power,
    parse_power_samples,
)
from android_harness.errors import BenchmarkError, EnergyMeasurementError
from android_harness.parsers import BenchmarkResult, parse_benchmark_output, parse_odpm_energy
from android_harness.services import PowerSampler, ThermalGate, reap_leftovers, stop_tracked, tracked_command

log = logging.getLogger(__name__)
ODPM_GLOB = "/sys/bus/iio/devices/iio:device*/energy_value"


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


def profile_on_device(device: AndroidDevice, model_path: str | Path, options: BenchmarkOptions, *,
                      measure_energy: bool = True, allow_charging: bool = False, baseline_s: float = 2.0,
                      thermal_timeout_s: float = 60.0, battery_temp_max_c: float = 40.0,
                      benchmark_binary: str | None = None, timeout_s: float | None = None) -> DeviceProfileRun:
    started = time.perf_counter()
    warnings: list[str] = []
    info = device.info()
    reap_leftovers(device)  # a killed earlier run may have left a sampler or benchmark running
    host_binary, device_binary = resolve_binary(device, info.abi, benchmark_binary)
    binary_sha = None
    if host_binary:
        pushed = push_cached(device, host_binary, kind="bin", suffix="", mode_exec=True)
        device_binary, binary_sha = pushed.remote_path, pushed.sha256
    model_push = push_cached(device, model_path)
    thermal_wait_s = ThermalGate(device, thermal_timeout_s, battery_temp_max_c).wait()
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

    base_text = run_text = ""
    odpm = {}
    if measure_energy:
        sampler = PowerSampler(device).start()
        odpm["base_start"] = _odpm(device)
        time.sleep(baseline_s)
        odpm["base_end"] = _odpm(device)
        base_text = sampler.stop()
    sampler = PowerSampler(device).start() if measure_energy else None
    try:
        if measure_energy:
            odpm["run_start"] = _odpm(device)
        result = device.shell(tracked_command(command, "benchmark", f"--graph={model_push.remote_path}"),
                              timeout_s=run_timeout)
        if measure_energy:
            odpm["run_end"] = _odpm(device)
    finally:
        stop_tracked(device, "benchmark")  # after a timeout it may still run on the phone
        if sampler is not None:
            run_text = sampler.stop()
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
    throttled = after.thermal_level > before.thermal_level or after.thermal_level >= 2
    energy = None
    if measure_energy:
        conv = _conventions(info, base_text + run_text)
        rail_power = ()
        if all(odpm.get(k) for k in ("base_start", "base_end", "run_start", "run_end")):
            rail_power = odpm_net_power(odpm["base_start"], odpm["base_end"], odpm["run_start"], odpm["run_end"])
        energy = compute_energy(parse_power_samples(base_text, conv), parse_power_samples(run_text, conv),
                                bench.inference_avg_us / 1000.0, conv, rail_power)
        if energy.below_resolution:
            warnings.append(f"energy below resolution (< {energy.resolution_mj:.4g} mJ): the net power is within "
                            f"the measurement's uncertainty; run longer (--min-secs) for more gauge readings")
    return DeviceProfileRun(bench, energy, before, after, throttled, info, model_push, device_binary, binary_sha,
                            command, info.source, time.perf_counter() - started, thermal_wait_s, tuple(warnings),
                            requested, delegate_used, fallback)
