"""HostTarget: time a ``.tflite`` in LiteRT on this machine; estimate energy from a device profile.

Latency is measured here (``source="measured:host"``). Energy is *not* measured on a host: it is
estimated as (the profile's active CPU power for the threads used) x (median latency), and labelled
``estimated:<profile>`` with method ``power_model``.

``ProfileOptions(op_profiling=True)`` fills ``Measurement.op_profile`` with per-op times from LiteRT's own op
profiler (:mod:`android_harness.litert_profile`), over ``num_runs`` extra runs after the timed ones with the same
kernels and threads; op names are ``[<TFLite output tensor name(s)>]:<position in the run>``, as a phone's
benchmark_model prints them (with ``delegate="xnnpack"`` the rows are XNNPACK's operators, paired with the TFLite
nodes they implement: see that module).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path

from toolkit.convert.interpreter import check_tflite_file, interpreter_class, load_interpreter
from toolkit.errors import InvalidArgumentError, TargetError
from toolkit.provenance import estimated, file_sha256, measured, tool_versions
from toolkit.targets.base import EnergyResult, LatencyStats, Measurement, OpStat, ProfileOptions, Target

log = logging.getLogger(__name__)

# Relative uncertainty of a power-model estimate: profile numbers are per-core averages at max
# frequency; real draw varies with frequency scaling, memory traffic and temperature.
POWER_MODEL_REL_UNCERTAINTY = 0.3


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class HostTarget(Target):
    """Profiles on this machine's CPU with the LiteRT interpreter.

    >>> m = HostTarget().profile("m.tflite", ProfileOptions(num_threads=2))   # doctest: +SKIP
    >>> m.latency.median_ms, m.energy.source                                   # doctest: +SKIP
    (0.41, 'estimated:host')
    """

    name = "host"

    def __init__(self, profile: str = "host", timeout_s: float = 600.0):
        from device_profiles import load_profile

        self.device_profile = load_profile(profile)
        self.profile_name = self.device_profile.name
        self.timeout_s = timeout_s

    def profile(self, tflite_path: str | Path, options: ProfileOptions | None = None,
                macs: int | None = None) -> Measurement:
        options = options or ProfileOptions()
        if options.delegate in ("gpu", "nnapi"):
            raise InvalidArgumentError(
                f"The host target runs on the CPU only. Received: delegate={options.delegate!r}; use cpu or xnnpack")
        path = check_tflite_file(tflite_path).resolve()
        cpus = os.cpu_count() or 1
        if options.num_threads > cpus:
            log.warning("num_threads=%d exceeds this host's %d CPUs; latency will suffer", options.num_threads, cpus)
        load_interpreter(path)  # a corrupt file fails here with a clear error, before any timing
        cmd = [sys.executable, "-m", "toolkit.targets.host_worker", str(path),
               "--threads", str(options.num_threads), "--warmup", str(options.warmup_runs),
               "--runs", str(options.num_runs), "--min-secs", str(options.min_secs)]
        if options.delegate == "cpu":
            cmd.append("--no-xnnpack")
        if options.op_profiling:
            cmd.append("--op-profiling")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s, env=env,
                                  cwd=str(Path(__file__).resolve().parents[2]))
        except subprocess.TimeoutExpired as exc:
            raise TargetError(f"Host profiling of {str(path)!r} took over {self.timeout_s:.0f} s; "
                              f"lower --runs/--min-secs") from exc
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise TargetError(f"The host profiling worker failed (exit {proc.returncode}): "
                              f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}") from exc
        if "error" in result:
            raise TargetError(f"Host profiling of {str(path)!r} failed: {result['error']}")
        latency = LatencyStats.from_samples(result["samples_ms"], result["init_ms"], result["first_inference_ms"])
        energy = self._estimate_energy(latency, options) if options.measure_energy else None
        _, runtime = interpreter_class()
        provenance = {
            "device": "host",
            "cpu": _cpu_model(),
            "cpus": str(cpus),
            "os": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(),
            "runtime": runtime,
            "threads": str(options.num_threads),
            "delegate": options.delegate,
            "device_profile": self.profile_name,
            "baseline_rss_mb": f"{result['baseline_rss_mb']:.2f}",
            "memory_increment": ("peak RSS while loading and running the model minus RSS before loading it"
                                 if result["memory_increment_exact"] else
                                 "upper bound: the kernel refused to reset the peak (VmHWM) before loading"),
            "tool_versions": json.dumps(tool_versions(), sort_keys=True),
        }
        op_profile: tuple[OpStat, ...] = ()
        if result.get("op_profile"):
            ops = result["op_profile"]
            op_profile = tuple(OpStat(o["node_type"], float(o["avg_ms"]), float(o["percent"]), int(o["times_called"]),
                                      o["name"]) for o in ops["ops"])
            provenance["op_profile"] = (f"LiteRT op profiler, {ops['runs']} runs after the timed ones "
                                        f"({ops.get('disturbed_runs', 0)} preempted runs left out), "
                                        f"{ops['kernels']} kernels, names matched by {ops['name_match']}")
        return Measurement(
            target="host", device="host", source=measured("host"), model_path=str(path),
            model_sha256=file_sha256(path), size_kb=path.stat().st_size / 1024.0, latency=latency,
            options=options, process_peak_memory_mb=float(result["process_peak_memory_mb"]), energy=energy,
            macs=macs, op_profile=op_profile, provenance=tuple(sorted(provenance.items())),
            memory_increment_mb=float(result["memory_increment_mb"]),
        )

    def _estimate_energy(self, latency: LatencyStats, options: ProfileOptions) -> EnergyResult:
        power_mw = float(self.device_profile.estimate_power_mw(options.num_threads))
        median_ms = latency.median_ms
        energy_mj = power_mw * median_ms / 1000.0  # mW x ms = uJ
        # The estimate scales the *median* latency, so its latency term is the median's standard error, from a
        # spread robust to the odd preempted run (IQR / 1.349), not the raw spread of single runs.
        import numpy as np

        q1, q3 = np.percentile(latency.samples_ms, [25, 75]) if latency.samples_ms else (median_ms, median_ms)
        se_median = 1.2533 * ((q3 - q1) / 1.349) / max(latency.count, 1) ** 0.5
        rel = (POWER_MODEL_REL_UNCERTAINTY ** 2 + (se_median / median_ms if median_ms else 0.0) ** 2) ** 0.5
        # An estimate has no measurement floor (below_resolution stays False, resolution_mj None); a zero
        # estimate (zero latency or power) is no energy at all, and is reported as not measured.
        return EnergyResult(
            energy_per_inference_mj=energy_mj if energy_mj > 0 else None,
            inferences_per_joule=1000.0 / energy_mj if energy_mj > 0 else None,
            avg_power_mw=power_mw + float(self.device_profile.power_model.idle_mw),
            baseline_power_mw=float(self.device_profile.power_model.idle_mw),
            method="power_model",
            source=estimated(self.profile_name),
            uncertainty_mj=energy_mj * rel,
        )
