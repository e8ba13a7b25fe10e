"""The Target interface and the typed values every target returns.

A target runs a ``.tflite`` file and returns a :class:`Measurement`. Every number in it
carries ``source``: ``measured:<serial>`` (a physical phone), ``virtual:<profile>`` (the
virtual phone), or ``estimated:<profile>`` (computed from a device profile's power model).
"""
from __future__ import annotations

import abc
import dataclasses
import json
from dataclasses import dataclass, field
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
    """Latency of the timed runs, in milliseconds; ``count`` is how many timed runs."""

    init_ms: float
    first_inference_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    count: int
    samples_ms: tuple[float, ...] = ()

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
    """

    energy_per_inference_mj: float
    inferences_per_joule: float
    avg_power_mw: float
    baseline_power_mw: float
    method: str
    source: str
    uncertainty_mj: float
    sample_count: int = 0
    rails: tuple[RailEnergy, ...] = ()
    trace: tuple[PowerSample, ...] = ()


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
    peak_memory_mb: float | None = None
    energy: EnergyResult | None = None
    macs: int | None = None
    op_profile: tuple[OpStat, ...] = ()
    throttled: bool = False
    provenance: tuple[tuple[str, str], ...] = ()  # (key, value) pairs: device, OS, thermal, versions...

    def provenance_dict(self) -> dict[str, str]:
        return dict(self.provenance)

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
