"""Energy from fuel-gauge samples and ODPM counters (pure functions).

Sampler line format (written on the device by :class:`android_harness.services.PowerSampler`):
``<uptime seconds> <current_now> <voltage_now>`` — one line per sample, raw sysfs values.

Vendors differ: ``current_now`` is in uA on most phones, mA on some Samsung kernels; it is negative while
discharging on most (Android's BatteryManager convention) and positive on others. Conventions come from the
device profile when the phone matches one, else from the samples: |current| above 20,000 means uA, a
majority of negative samples means discharge is negative.

Energy of one inference = (mean power during the run - mean idle power before it) x the benchmark's average
inference time. Its uncertainty combines the standard errors of the two means with the gauge's resolution.

A fuel gauge updates its reading far more slowly than the sampler reads it (about 1 Hz on many phones, against
20 Hz sampling), so consecutive samples repeat the same reading. The standard errors count *distinct readings*
(a change of value starts a new one), not samples: twenty copies of one reading are one observation.

When the net energy is not above the measurement's resolution (``RESOLUTION_SIGMAS`` standard uncertainties),
the report says so: ``below_resolution`` is True, ``energy_per_inference_mj`` and ``inferences_per_joule`` are
None, and ``resolution_mj`` is the bound ("below resolution (< resolution_mj mJ)"). Zero is never reported as
a measured energy.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from android_harness.errors import EnergyMeasurementError

MIN_SAMPLES = 5
# A net energy is resolved when it exceeds this many standard uncertainties (about 97.7 % one-sided).
RESOLUTION_SIGMAS = 2.0


@dataclass(frozen=True)
class PowerSample:
    t_s: float
    current_ua: float  # positive = leaving the battery
    voltage_uv: float

    @property
    def power_mw(self) -> float:
        return self.current_ua * self.voltage_uv / 1e9


@dataclass(frozen=True)
class Conventions:
    current_unit: str  # "uA" | "mA"
    current_sign_discharge: int  # -1 | +1
    voltage_unit: str  # "uV" | "mV"
    detected: bool  # True when guessed from the samples rather than a profile


@dataclass(frozen=True)
class RailEnergy:
    """Energy one ODPM rail spent on one inference, above its idle draw."""

    rail: str
    energy_mj: float


@dataclass(frozen=True)
class RailPower:
    """Net power (run minus idle) of one ODPM rail."""

    rail: str
    power_mw: float


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one inference. ``energy_per_inference_mj``/``inferences_per_joule`` are None when the net energy
    is below the measurement's resolution (``below_resolution``; the bound is ``resolution_mj``)."""

    energy_per_inference_mj: float | None
    inferences_per_joule: float | None
    avg_power_mw: float
    baseline_power_mw: float
    net_power_mw: float
    uncertainty_mj: float
    method: str  # "fuel_gauge" | "odpm"
    sample_count: int
    sample_rate_hz: float
    rails: tuple[RailEnergy, ...]
    trace: tuple[tuple[float, float], ...]  # (seconds since the run started, power mW)
    conventions: Conventions
    below_resolution: bool
    resolution_mj: float = 0.0  # RESOLUTION_SIGMAS x uncertainty: smaller net energies are not resolved
    distinct_readings: int = 0  # gauge readings during the run (value changes), the effective sample count
    baseline_distinct_readings: int = 0
    # Provenance of the idle baseline: reused from an earlier run on the same phone (and how old it was when this
    # run started), or taken fresh for this run (age 0). ``baseline_note`` says why, in words.
    baseline_reused: bool = False
    baseline_age_s: float = 0.0
    baseline_note: str = ""


def _raw(text: str) -> list[tuple[float, float, float]]:
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            rows.append((float(parts[0]), float(parts[1]), float(parts[2])))
        except ValueError:
            continue
    return rows


def detect_conventions(text: str) -> Conventions:
    rows = _raw(text)
    if not rows:
        raise EnergyMeasurementError("No power samples to read conventions from")
    currents = [r[1] for r in rows]
    median = statistics.median(abs(c) for c in currents)
    negative = sum(1 for c in currents if c < 0)
    voltage = statistics.median(r[2] for r in rows)
    return Conventions("uA" if median > 20_000 else "mA", -1 if negative > len(currents) / 2 else 1,
                       "uV" if voltage > 100_000 else "mV", True)


def parse_power_samples(text: str, conventions: Conventions) -> tuple[PowerSample, ...]:
    """Sampler lines -> samples in uA (discharge positive) and uV."""
    scale_i = 1.0 if conventions.current_unit == "uA" else 1000.0
    scale_v = 1.0 if conventions.voltage_unit == "uV" else 1000.0
    return tuple(PowerSample(t, c * scale_i * conventions.current_sign_discharge, v * scale_v)
                 for t, c, v in _raw(text))


def distinct_readings(samples: tuple[PowerSample, ...]) -> list[float]:
    """The gauge's readings as power (mW): consecutive samples with the same (current, voltage) are one reading."""
    readings: list[float] = []
    last = None
    for s in samples:
        key = (s.current_ua, s.voltage_uv)
        if key != last:
            readings.append(s.power_mw)
            last = key
    return readings


def idle_power_summary(samples: tuple[PowerSample, ...]) -> tuple[float, float, int]:
    """(mean power mW, its standard error mW, distinct readings) of an idle baseline, on its own.

    The standard error counts distinct gauge readings, as :func:`compute_energy` does; with a single reading
    there is no spread to judge by and the standard error is the whole mean.
    """
    if not samples:
        raise EnergyMeasurementError("An idle baseline without power samples has no mean; take it again")
    mean = statistics.fmean(s.power_mw for s in samples)
    readings = distinct_readings(samples)
    if len(readings) < 2:
        return mean, abs(mean), len(readings)
    return mean, statistics.stdev(readings) / math.sqrt(len(readings)), len(readings)


def _mean_sem(baseline: tuple[PowerSample, ...], active: tuple[PowerSample, ...]) -> tuple[float, float, float,
                                                                                            float, int, int]:
    """(baseline mean, its standard error, run mean, its standard error, baseline readings, run readings), mW.

    Means weight each reading by how long it was shown (samples are evenly spaced). Standard errors use one
    observation per distinct reading, since repeated samples of one reading carry no new information: each
    phase's own reading-to-reading spread / sqrt(its readings) (idle and load fluctuate differently). A phase
    with a single reading has no spread of its own and borrows the other phase's; with one reading in each
    phase there is no spread at all and the standard error is the whole mean: nothing is resolved.
    """
    base_mean = statistics.fmean(s.power_mw for s in baseline)
    act_mean = statistics.fmean(s.power_mw for s in active)
    base_r, act_r = distinct_readings(baseline), distinct_readings(active)
    if len(base_r) < 2 and len(act_r) < 2:
        return base_mean, abs(base_mean), act_mean, abs(act_mean), len(base_r), len(act_r)
    base_sd = statistics.stdev(base_r) if len(base_r) > 1 else statistics.stdev(act_r)
    act_sd = statistics.stdev(act_r) if len(act_r) > 1 else base_sd
    return (base_mean, base_sd / math.sqrt(len(base_r)), act_mean, act_sd / math.sqrt(len(act_r)),
            len(base_r), len(act_r))


def compute_energy(baseline: tuple[PowerSample, ...], active: tuple[PowerSample, ...], inference_ms: float,
                   conventions: Conventions, rail_power: tuple[RailPower, ...] = (),
                   resolution_ua: float = 1000.0) -> EnergyReport:
    """Energy of one inference from an idle baseline and the samples taken while the benchmark ran.

    With ODPM rails (``rail_power``) the net power is their sum (method ``odpm``), and each rail's share is
    reported; otherwise it is the fuel gauge's (method ``fuel_gauge``).
    """
    if len(baseline) < MIN_SAMPLES or len(active) < MIN_SAMPLES:
        raise EnergyMeasurementError(
            f"Too few power samples to measure energy (baseline {len(baseline)}, run {len(active)}; need "
            f">= {MIN_SAMPLES} each). Run longer (--min-secs) or lengthen the idle baseline")
    if inference_ms <= 0:
        raise EnergyMeasurementError(f"The benchmark reported no inference time. Received: inference_ms={inference_ms}")
    base_mw, base_sem, act_mw, act_sem, base_n, act_n = _mean_sem(baseline, active)
    voltage_v = statistics.fmean(s.voltage_uv for s in active) / 1e6
    resolution_mw = resolution_ua / 1000.0 * voltage_v
    net_mw = act_mw - base_mw
    sigma_mw = math.sqrt(base_sem ** 2 + act_sem ** 2 + (resolution_mw / math.sqrt(act_n)) ** 2)
    method = "fuel_gauge"
    rails: tuple[RailEnergy, ...] = ()
    if rail_power:
        method = "odpm"
        net_mw = sum(r.power_mw for r in rail_power)
        rails = tuple(RailEnergy(r.rail, max(r.power_mw, 0.0) * inference_ms / 1000.0) for r in rail_power)
    uncertainty_mj = sigma_mw * inference_ms / 1000.0
    resolution_mj = RESOLUTION_SIGMAS * uncertainty_mj
    net_mj = net_mw * inference_ms / 1000.0
    below = not net_mj > resolution_mj
    energy_mj = None if below else net_mj
    span = active[-1].t_s - active[0].t_s
    t0 = active[0].t_s
    return EnergyReport(
        energy_per_inference_mj=energy_mj,
        inferences_per_joule=None if energy_mj is None else 1000.0 / energy_mj,
        avg_power_mw=act_mw, baseline_power_mw=base_mw, net_power_mw=net_mw,
        uncertainty_mj=uncertainty_mj, method=method, sample_count=len(active),
        sample_rate_hz=(len(active) - 1) / span if span > 0 else 0.0, rails=tuple(rails),
        trace=tuple((round(s.t_s - t0, 4), round(s.power_mw, 2)) for s in active), conventions=conventions,
        below_resolution=below, resolution_mj=resolution_mj, distinct_readings=act_n,
        baseline_distinct_readings=base_n)


def odpm_net_power(base_start: dict, base_end: dict, run_start: dict, run_end: dict) -> tuple[RailPower, ...]:
    """Per-rail net power during the run (run rate minus idle rate) from cumulative uWs counters.

    Each argument maps rail -> (t_ms, energy_uws) as :func:`android_harness.parsers.parse_odpm_energy` returns.
    """
    rails = []
    for rail in sorted(run_end):
        if rail not in run_start or rail not in base_start or rail not in base_end:
            raise EnergyMeasurementError(f"ODPM rail {rail} vanished between snapshots; re-run the measurement")
        run_dt = (run_end[rail][0] - run_start[rail][0]) / 1000.0
        base_dt = (base_end[rail][0] - base_start[rail][0]) / 1000.0
        d_run = run_end[rail][1] - run_start[rail][1]
        d_base = base_end[rail][1] - base_start[rail][1]
        if d_run < 0 or d_base < 0:
            raise EnergyMeasurementError(f"ODPM counter of {rail} went backwards (reset?); re-run the measurement")
        if run_dt <= 0 or base_dt <= 0:
            raise EnergyMeasurementError("ODPM snapshots carry no elapsed time; re-run the measurement")
        net_mw = (d_run / run_dt - d_base / base_dt) / 1000.0  # uWs/s = uW -> mW
        rails.append(RailPower(rail, net_mw))
    return tuple(rails)
