"""The Target interface and the typed values every target returns.

A target runs a ``.tflite`` file and returns a :class:`Measurement`. Every number in it
carries ``source``: ``measured:<serial>`` (a physical phone), ``virtual:<profile>`` (the
virtual phone), or ``estimated:<profile>`` (computed from a device profile's power model).
"""
from __future__ import annotations

import abc
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import InvalidArgumentError, check_positive_int

DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi")


@dataclass(frozen=True)
class ProfileOptions:
    """How to time a model. ``min_secs`` > 0 keeps running until that many seconds passed."""

    num_threads: int = 1
    warmup_runs: int = 5
    num_runs: int = 50
    min_secs: float = 0.0
    delegate: str = "cpu"
    op_profiling: bool = False
    measure_energy: bool = True
    allow_charging: bool = False

    def __post_init__(self) -> None:
        check_positive_int("num_threads", self.num_threads)
        check_positive_int("warmup_runs", self.warmup_runs, minimum=0)
        check_positive_int("num_runs", self.num_runs)
        if not isinstance(self.min_secs, (int, float)) or self.min_secs < 0:
            raise InvalidArgumentError(f"min_secs must be >= 0. Received: min_secs={self.min_secs!r}")
        if self.delegate not in DELEGATES:
            raise InvalidArgumentError(
                f"delegate must be one of {', '.join(DELEGATES)}. Received: delegate={self.delegate!r}"
            )


@dataclass(frozen=True)
class LatencyStats:
    """Latency of the timed runs, in milliseconds; ``count`` is how many timed runs.

    Every statistic is what was measured or printed, never another one under its name: a phone's
    ``benchmark_model`` prints mean/std/min/max and (recent versions) p5/median/p95, so ``median_ms`` is None
    when it printed no median and ``p90_ms`` is None there (it never prints a p90).
    """

    init_ms: float
    first_inference_ms: float
    mean_ms: float
    median_ms: float | None
    p90_ms: float | None
    std_ms: float
    min_ms: float
    max_ms: float
    count: int
    samples_ms: tuple[float, ...] = ()
    p95_ms: float | None = None

    @classmethod
    def from_samples(cls, samples_ms, init_ms: float, first_inference_ms: float) -> "LatencyStats":
        import numpy as np

        arr = np.asarray(list(samples_ms), dtype=float)
        if arr.size == 0:
            raise InvalidArgumentError("No timed runs to summarise. Received: samples_ms=[]")
        return cls(
            init_ms=float(init_ms),
            first_inference_ms=float(first_inference_ms),
            mean_ms=float(arr.mean()),
            median_ms=float(np.median(arr)),
            p90_ms=float(np.percentile(arr, 90)),
            p95_ms=float(np.percentile(arr, 95)),
            std_ms=float(arr.std()),
            min_ms=float(arr.min()),
            max_ms=float(arr.max()),
            count=int(arr.size),
            samples_ms=tuple(float(x) for x in arr),
        )


@dataclass(frozen=True)
class RailEnergy:
    """Energy one power rail used during the timed run (ODPM rails on Pixel 6+)."""

    rail: str
    energy_mj: float


@dataclass(frozen=True)
class PowerSample:
    """One sample of the power trace: seconds since sampling started, power in mW."""

    t_s: float
    power_mw: float


@dataclass(frozen=True)
class EnergyResult:
    """Energy of one inference and how it was obtained.

    ``method`` says how (e.g. ``fuel_gauge``, ``odpm``, ``power_model``); ``source`` says
    where the number comes from and is never ``measured:`` for an estimate.

    When the net energy is not above the measurement's resolution, ``below_resolution`` is True,
    ``energy_per_inference_mj`` and ``inferences_per_joule`` are None (never 0 or infinity) and
    ``resolution_mj`` holds the bound: shown as "below resolution (< X mJ)" (:meth:`text`). Estimates
    (``power_model``) have no measurement floor: ``resolution_mj`` is None and they are never below it.
    """

    energy_per_inference_mj: float | None
    inferences_per_joule: float | None
    avg_power_mw: float
    baseline_power_mw: float
    method: str
    source: str
    uncertainty_mj: float
    sample_count: int = 0
    rails: tuple[RailEnergy, ...] = ()
    trace: tuple[PowerSample, ...] = ()
    below_resolution: bool = False
    resolution_mj: float | None = None
    distinct_readings: int = 0  # fuel-gauge readings during the run (value changes), not samples

    def __post_init__(self) -> None:
        if self.below_resolution and (self.energy_per_inference_mj is not None or self.resolution_mj is None):
            raise InvalidArgumentError(
                "A below-resolution energy has no value, only its bound. Received: "
                f"energy_per_inference_mj={self.energy_per_inference_mj!r}, resolution_mj={self.resolution_mj!r}")

    def text(self, digits: int = 4) -> str:
        """``"0.1234 mJ"``, or ``"below resolution (< 0.0123 mJ)"``, or ``"not measured"``."""
        return energy_text(self.energy_per_inference_mj, self.below_resolution, self.resolution_mj, digits)


def energy_text(energy_mj: float | None, below_resolution: bool = False, resolution_mj: float | None = None,
                digits: int = 4) -> str:
    """How an energy per inference reads everywhere (CLI, report tables, requirement reasons)."""
    if below_resolution:
        return f"below resolution (< {resolution_mj:.{digits}g} mJ)" if resolution_mj is not None \
            else "below resolution"
    if energy_mj is None:
        return "not measured"
    return f"{energy_mj:.{digits}f} mJ"


@dataclass(frozen=True)
class OpStat:
    """One row of a per-op profile: node type, average ms, share of the run, calls."""

    node_type: str
    avg_ms: float
    percent: float
    times_called: int
    name: str = ""


@dataclass(frozen=True)
class Measurement:
    """Everything one profile of one model on one target produced."""

    target: str  # "host" | "android"
    device: str  # "host" or the phone serial / host:port
    source: str  # provenance of the latency numbers (measured:/virtual:/estimated:)
    model_path: str
    model_sha256: str
    size_kb: float
    latency: LatencyStats
    options: ProfileOptions
    # Memory, in MB. ``process_peak_memory_mb``: the whole process's peak resident memory (runtime + model +
    # tool). ``memory_increment_mb``: the model's share, the peak over the process's baseline before the
    # model was loaded (host: VmHWM minus VmRSS before loading; phone: benchmark_model's footprint delta).
    process_peak_memory_mb: float | None = None
    energy: EnergyResult | None = None
    macs: int | None = None
    op_profile: tuple[OpStat, ...] = ()
    throttled: bool = False
    provenance: tuple[tuple[str, str], ...] = ()  # (key, value) pairs: device, OS, thermal, versions...
    memory_increment_mb: float | None = None
    # The delegate that actually ran the graph (None: as requested in ``options.delegate``); ``delegate_fallback``
    # is True when the requested one did not run, so the numbers belong to ``delegate_used``.
    delegate_used: str | None = None
    delegate_fallback: bool = False

    @property
    def delegate(self) -> str:
        """The delegate these numbers belong to."""
        return self.delegate_used or self.options.delegate

    def provenance_dict(self) -> dict[str, str]:
        return dict(self.provenance)

    def unmeasured(self) -> dict[str, str]:
        """Why a requirement metric has no value: pass to :func:`toolkit.synthesis.requirements.check` as
        ``why_missing`` next to the metrics (``energy_mj`` None when below resolution, ``latency_ms`` None when
        the phone printed no median)."""
        reasons = {}
        if self.energy is None:
            reasons["energy_mj"] = "energy not measured"
        elif self.energy.energy_per_inference_mj is None:
            reasons["energy_mj"] = f"energy {self.energy.text()}"
        if self.latency.median_ms is None:
            reasons["latency_ms"] = "no median latency printed by the benchmark"
        return reasons

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``--json`` output and the store's JSON columns)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


class Target(abc.ABC):
    """Where a model runs. ``profile`` never returns a half-filled Measurement: it raises."""

    name: str

    @abc.abstractmethod
    def profile(self, tflite_path: str | Path, options: ProfileOptions | None = None) -> Measurement:
        """Time (and where possible measure the energy of) one ``.tflite`` model."""
