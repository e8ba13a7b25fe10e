"""AndroidTarget: profile on a phone (or the virtual phone) over ADB. The only place toolkit imports
android_harness; it maps the harness's results onto :class:`toolkit.targets.base.Measurement`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from android_harness.benchmark import BenchmarkOptions
from android_harness.connection import connect, server_serials
from android_harness.device import AndroidDevice
from android_harness.errors import (
    CommandTimeoutError,
    ConnectionLostError,
    DeviceNotFoundError,
    HarnessError,
    ThermalGateError,
)
from android_harness.parsers import BenchmarkResult
from android_harness.profile import (
    DEFAULT_BASELINE_MAX_AGE_S,
    DEFAULT_BASELINE_TEMP_TOLERANCE_C,
    BaselineCache,
    profile_on_device,
)
from toolkit.convert.interpreter import check_tflite_file
from toolkit.errors import DeviceError, InvalidArgumentError
from toolkit.provenance import tool_versions
from toolkit.targets.base import (
    EnergyResult,
    LatencyStats,
    Measurement,
    OpStat,
    PowerSample,
    ProfileOptions,
    RailEnergy,
    Target,
)


# The harness names the CPU path without XNNPACK "cpu", as ProfileOptions does.
_OUR_DELEGATE = {"cpu": "cpu", "xnnpack": "xnnpack", "gpu": "gpu", "nnapi": "nnapi"}


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000.0


def latency_from_benchmark(b: BenchmarkResult) -> LatencyStats:
    """benchmark_model's numbers as LatencyStats, each one what it printed under that name: no median printed ->
    ``median_ms`` None (not the mean); no p90 printed (it prints p5/median/p95, never p90) -> ``p90_ms`` None."""
    return LatencyStats(
        init_ms=(b.init_us or 0.0) / 1000.0, first_inference_ms=(b.first_inference_us or 0.0) / 1000.0,
        mean_ms=b.inference_avg_us / 1000.0, median_ms=_ms(b.percentile("median")), p90_ms=_ms(b.percentile("p90")),
        std_ms=(b.inference_std_us or 0.0) / 1000.0, min_ms=(b.inference_min_us or b.inference_avg_us) / 1000.0,
        max_ms=(b.inference_max_us or b.inference_avg_us) / 1000.0, count=b.inference_count or 0,
        p95_ms=_ms(b.percentile("p95")))


class AndroidTarget(Target):
    """``AndroidTarget("127.0.0.1:5555").profile("m.tflite", ProfileOptions(num_threads=2))``

    Energy: the first measurement takes an idle baseline (``baseline_s``); later ones through the same target
    reuse it while it is at most ``baseline_max_age_s`` old and the phone's thermal status and battery temperature
    (within ``baseline_temp_tolerance_c``) are unchanged (see :class:`android_harness.profile.BaselineCache`).
    ``baseline_max_age_s=0``: a new baseline every time. The measurement's provenance says which it was.
    """

    name = "android"

    def __init__(self, device: str, *, backend: str = "auto", adb_server: str | None = None,
                 benchmark_binary: str | None = None, thermal_timeout_s: float = 60.0,
                 battery_temp_max_c: float = 40.0, baseline_s: float = 2.0,
                 baseline_max_age_s: float = DEFAULT_BASELINE_MAX_AGE_S,
                 baseline_temp_tolerance_c: float = DEFAULT_BASELINE_TEMP_TOLERANCE_C):
        self.serial = device
        self.backend = backend
        self.adb_server = adb_server or "127.0.0.1:5037"
        self.benchmark_binary = benchmark_binary
        self.thermal_timeout_s = thermal_timeout_s
        self.battery_temp_max_c = battery_temp_max_c
        self.baseline_s = baseline_s
        try:
            self.baselines = BaselineCache(baseline_max_age_s, baseline_temp_tolerance_c)
        except HarnessError as exc:
            raise InvalidArgumentError(str(exc)) from exc
        self._device: AndroidDevice | None = None

    @property
    def device(self) -> AndroidDevice:
        if self._device is None:
            self._device = AndroidDevice(connect(self.serial, backend=self.backend, adb_server=self.adb_server))
        return self._device

    def info(self):
        """The phone's :class:`android_harness.device.DeviceInfo` (model, SoC, battery, thermal), read now; a phone
        that cannot be reached raises DeviceError (``transient``: it may answer later)."""
        try:
            return self.device.info()
        except HarnessError as exc:
            raise DeviceError(str(exc), exit_code=exc.exit_code, transient=isinstance(
                exc, (ConnectionLostError, CommandTimeoutError, DeviceNotFoundError))) from exc

    def close(self) -> None:
        """Drop the connection (the next call reconnects). Never raises."""
        device, self._device = self._device, None
        if device is not None:
            device.conn.close()

    def profile(self, tflite_path: str | Path, options: ProfileOptions | None = None) -> Measurement:
        options = options or ProfileOptions()
        path = check_tflite_file(tflite_path).resolve()
        bench_options = BenchmarkOptions(
            num_threads=options.num_threads, warmup_runs=options.warmup_runs, num_runs=options.num_runs,
            min_secs=options.min_secs, use_xnnpack=options.delegate == "xnnpack",
            use_gpu=options.delegate == "gpu", use_nnapi=options.delegate == "nnapi",
            enable_op_profiling=options.op_profiling)
        try:
            run = profile_on_device(self.device, path, bench_options, measure_energy=options.measure_energy,
                                    allow_charging=options.allow_charging, baseline_s=self.baseline_s,
                                    thermal_timeout_s=self.thermal_timeout_s,
                                    battery_temp_max_c=self.battery_temp_max_c, benchmark_binary=self.benchmark_binary,
                                    baselines=self.baselines)
        except HarnessError as exc:
            # The boundary: callers handle one error root (ToolkitError); the harness error stays the cause, and
            # its exit code is kept. A lost (or not yet reconnected) phone, a timeout or a hot phone may pass when
            # tried again.
            raise DeviceError(str(exc), exit_code=exc.exit_code, transient=isinstance(
                exc, (ConnectionLostError, CommandTimeoutError, ThermalGateError, DeviceNotFoundError))) from exc
        b = run.benchmark
        latency = latency_from_benchmark(b)
        energy = None
        if run.energy is not None:
            e = run.energy
            energy = EnergyResult(
                energy_per_inference_mj=e.energy_per_inference_mj, inferences_per_joule=e.inferences_per_joule,
                avg_power_mw=e.avg_power_mw, baseline_power_mw=e.baseline_power_mw, method=e.method,
                source=run.source, uncertainty_mj=e.uncertainty_mj, sample_count=e.sample_count,
                rails=tuple(RailEnergy(r.rail, r.energy_mj) for r in e.rails),
                trace=tuple(PowerSample(t, p) for t, p in e.trace), below_resolution=e.below_resolution,
                resolution_mj=e.resolution_mj, distinct_readings=e.distinct_readings)
        info = run.device_info
        provenance = {
            "device": info.serial, "model": info.model, "manufacturer": info.manufacturer, "soc": info.soc,
            "android_release": info.android_release, "sdk": str(info.sdk), "abi": info.abi,
            "thermal_before": run.before.thermal_status, "thermal_after": run.after.thermal_status,
            "battery_before": f"{run.before.battery_level}% {run.before.battery_temp_c}C {run.before.charger}",
            "battery_after": f"{run.after.battery_level}% {run.after.battery_temp_c}C {run.after.charger}",
            "governor": run.before.governor, "affinity": run.command.split()[1] if run.command.startswith("taskset") else "",
            "benchmark_binary": run.binary, "benchmark_binary_sha256": run.binary_sha256 or "device-provided",
            "command": run.command, "energy_sources": ",".join(info.energy_sources),
            "wall_s": f"{run.wall_s:.2f}", "warnings": "; ".join(run.warnings),
            "delegate_requested": run.delegate_requested, "delegate_used": run.delegate_used,
            "tool_versions": json.dumps(tool_versions(), sort_keys=True)}
        if run.energy is not None:
            c = run.energy.conventions
            provenance["gauge_conventions"] = (f"{c.current_unit}, discharge sign {c.current_sign_discharge:+d}"
                                               f"{' (detected)' if c.detected else ' (profile)'}")
            provenance["sample_rate_hz"] = f"{run.energy.sample_rate_hz:.1f}"
            provenance["gauge_readings"] = (f"{run.energy.distinct_readings} distinct in "
                                            f"{run.energy.sample_count} samples")
            # Never hidden: whether the idle baseline was this run's own or reused, and how old it was.
            provenance["energy_baseline"] = run.energy.baseline_note
            provenance["energy_baseline_age_s"] = f"{run.energy.baseline_age_s:.1f}"
        return Measurement(
            target="android", device=info.serial, source=run.source, model_path=str(path),
            model_sha256=run.model_push.sha256, size_kb=path.stat().st_size / 1024.0, latency=latency,
            options=options, process_peak_memory_mb=b.peak_memory_mb, energy=energy,
            op_profile=tuple(OpStat(o.node_type, o.avg_ms, o.percent, o.times_called, o.name) for o in b.op_profile),
            throttled=run.throttled, provenance=tuple(sorted((k, v) for k, v in provenance.items() if v)),
            memory_increment_mb=b.memory_delta_mb, delegate_used=_OUR_DELEGATE[run.delegate_used],
            delegate_fallback=run.delegate_fallback)

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> "AndroidTarget":
        device = args.device[0] if isinstance(args.device, list) else args.device  # --device may repeat
        return cls(device, backend=args.backend, adb_server=args.adb_server,
                   benchmark_binary=args.benchmark_binary, thermal_timeout_s=args.thermal_timeout)


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("Android phones")
    g.add_argument("--device", action="append", default=None, metavar="SERIAL",
                   help="phone serial or HOST:PORT (e.g. a virtual phone 127.0.0.1:5555); repeat it to measure on "
                        "several phones in parallel")
    g.add_argument("--devices", choices=("all",), default=None,
                   help="all: every phone the adb server lists, plus the --device addresses")
    g.add_argument("--backend", choices=("auto", "direct", "server"), default="auto",
                   help="direct adb-shell connection, or through an adb server (default: auto)")
    g.add_argument("--adb-server", default="127.0.0.1:5037", help="adb server HOST:PORT (default 127.0.0.1:5037)")
    g.add_argument("--benchmark-binary", default=None, help="benchmark_model binary for the phone's ABI")
    g.add_argument("--allow-charging", action="store_true", help="measure energy even while charging (unreliable)")
    g.add_argument("--no-energy", action="store_true", help="do not measure energy")
    g.add_argument("--thermal-timeout", type=float, default=60.0, help="seconds to wait for the phone to cool")


def adb_server_serials(adb_server: str = "127.0.0.1:5037") -> list[str]:
    """Serials the adb server at ``adb_server`` holds ([] when none runs; one is never started)."""
    return server_serials(adb_server)
