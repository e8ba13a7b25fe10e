"""Operational requirements (the indicator 1_r) and their parser.

Each requirement compares one metric of the **int8 artifact measured on the target** with a bound:

    accuracy>=0.92          top-1 of the int8 .tflite (fraction, or percent when written "92%")
    accuracy_drop<=1.0pt    prototype int8 top-1 minus candidate int8 top-1, percentage points
    latency_ms<=3           median latency on the target
    energy_mj<=0.5          energy per inference on the target (measured, virtual or estimated: see source);
                            never met by an energy below the measurement's resolution (it has no value)
    size_kb<=150            .tflite file size
    macs<=5M                multiply-accumulates (k, M, G suffixes)
    params<=100k            parameters (k, M suffixes)

A bound written with ``x`` is relative to the prototype of the same run, measured on the same target in the same
way: ``energy_mj<=0.7x`` is at most 0.7 times the prototype's energy per inference, ``latency_ms<=0.5x`` at most
half its latency. Relative bounds apply to latency_ms, energy_mj, size_kb, macs and params; they keep a requirement
meaningful when absolute numbers move with the device (a virtual phone's energy follows its host's load).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.errors import InvalidArgumentError

METRICS = {
    "accuracy": ">=", "accuracy_drop": "<=", "latency_ms": "<=", "energy_mj": "<=", "size_kb": "<=",
    "macs": "<=", "params": "<=",
}
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_PATTERN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMG]|pt|%|x)?\s*$")
RELATIVE_METRICS = ("latency_ms", "energy_mj", "size_kb", "macs", "params")


@dataclass(frozen=True)
class Requirement:
    """``metric op bound``; ``text`` is how the user wrote it. A ``relative`` bound is a multiple of the
    prototype's value (the value compared with it is the candidate's divided by the prototype's)."""

    metric: str
    op: str
    bound: float
    text: str
    relative: bool = False

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return {"<=": value <= self.bound, "<": value < self.bound, ">=": value >= self.bound,
                ">": value > self.bound}[self.op]

    def violation(self, value: float | None) -> float:
        """How far ``value`` is outside the bound, relative to the bound (0 when it holds).

        An accuracy drop is measured against the whole accuracy scale (100 points), as ``accuracy>=`` is against
        its bound: relative to a bound of 1 pt, being 15 pt short would outweigh being 15x too large.

        >>> parse_requirement("accuracy_drop<=1pt").violation(16.0), parse_requirement("macs<=2M").violation(4e6)
        (0.15, 1.0)
        """
        if value is None:
            return 1.0
        if self.holds(value):
            return 0.0
        scale = 100.0 if self.metric == "accuracy_drop" else (abs(self.bound) if self.bound else 1.0)
        return abs(value - self.bound) / scale


def parse_requirement(text: str) -> Requirement:
    """Parse one requirement; anything else raises one error listing the accepted forms.

    >>> parse_requirement("macs<=5M").bound
    5000000.0
    """
    match = _PATTERN.match(str(text))
    if not match:
        raise InvalidArgumentError(
            f"Cannot parse requirement {text!r}. Write METRIC OP VALUE with METRIC one of "
            f"{', '.join(METRICS)}, e.g. 'accuracy_drop<=1.0pt', 'latency_ms<=3', 'macs<=5M'")
    metric, op, number, suffix = match.group(1), match.group(2), float(match.group(3)), match.group(4) or ""
    if metric not in METRICS:
        raise InvalidArgumentError(f"Unknown requirement metric {metric!r} in {text!r}. Use one of {', '.join(METRICS)}")
    if suffix == "pt" and metric != "accuracy_drop":
        raise InvalidArgumentError(f"'pt' (percentage points) only applies to accuracy_drop. Received: {text!r}")
    if suffix == "x":
        if metric not in RELATIVE_METRICS:
            raise InvalidArgumentError(f"'x' (a multiple of the prototype's value) only applies to "
                                       f"{', '.join(RELATIVE_METRICS)}. Received: {text!r}")
        if not number > 0:
            raise InvalidArgumentError(f"A relative bound must be > 0. Received: {text!r}; e.g. 'energy_mj<=0.7x'")
        return Requirement(metric, op, number, str(text).strip(), relative=True)
    if suffix in ("k", "K", "M", "G") and metric not in ("macs", "params"):
        raise InvalidArgumentError(f"Suffix {suffix!r} only applies to macs and params. Received: {text!r}")
    value = number * _SUFFIX.get(suffix, 1.0)
    if suffix == "%":
        if metric != "accuracy":
            raise InvalidArgumentError(f"'%' only applies to accuracy. Received: {text!r}")
        value = number / 100.0
    elif metric == "accuracy" and value > 1.0:
        raise InvalidArgumentError(f"accuracy is a fraction in [0, 1] (or write '92%'). Received: {text!r}")
    return Requirement(metric, op, value, str(text).strip())


def parse_requirements(texts) -> tuple[Requirement, ...]:
    """Parse several requirements (a list, or one comma-separated string)."""
    if isinstance(texts, str):
        texts = [t for t in texts.split(",") if t.strip()]
    return tuple(parse_requirement(t) for t in texts)


def relative_metrics(metrics: dict[str, float | None], prototype: dict[str, float | None] | None
                     ) -> dict[str, float | None]:
    """``metrics`` plus ``<metric>/prototype`` ratios (None where either value is missing): what relative
    requirements compare. Without a prototype (the prototype itself) every ratio is 1 where a value exists.

    >>> relative_metrics({"energy_mj": 2.0, "macs": None}, {"energy_mj": 4.0, "macs": 10})
    {'energy_mj': 2.0, 'macs': None, 'energy_mj/prototype': 0.5, 'macs/prototype': None}
    """
    out = dict(metrics)
    for m in RELATIVE_METRICS:
        if m not in metrics:
            continue
        value = metrics[m]
        ref = value if prototype is None else prototype.get(m)
        out[f"{m}/prototype"] = None if value is None or not ref else value / ref
    return out


def _key(r: Requirement) -> str:
    return f"{r.metric}/prototype" if r.relative else r.metric


def check(requirements: tuple[Requirement, ...], metrics: dict[str, float | None],
          why_missing: dict[str, str] | None = None) -> tuple[bool, str, float]:
    """(all met, text of the failed ones, total relative violation).

    A metric that is None is never met, whatever the bound: an energy below the measurement's resolution has no
    value (``energy_mj`` None), so ``energy_mj<=...`` is not met by it. ``why_missing`` says why a metric is None
    (``Measurement.unmeasured()`` gives e.g. ``{"energy_mj": "energy below resolution (< 0.012 mJ)"}``); the
    reason then reads "energy_mj<=0.5 (energy below resolution (< 0.012 mJ))" instead of "(not measured)".

    >>> check(parse_requirements("energy_mj<=1"), {"energy_mj": None},
    ...       {"energy_mj": "energy below resolution (< 0.01 mJ)"})[:2]
    (False, 'energy_mj<=1 (energy below resolution (< 0.01 mJ))')

    A relative requirement reads ``<metric>/prototype`` (see :func:`relative_metrics`).

    >>> check(parse_requirements("energy_mj<=0.7x"), {"energy_mj/prototype": 0.8})[:2]
    (False, 'energy_mj<=0.7x (got 0.8x)')
    """
    why_missing = why_missing or {}
    failed = [r for r in requirements if not r.holds(metrics.get(_key(r)))]
    violation = sum(r.violation(metrics.get(_key(r))) for r in requirements)
    reason = "; ".join(f"{r.text} (got {metrics[_key(r)]:.6g}{'x' if r.relative else ''})"
                       if metrics.get(_key(r)) is not None
                       else f"{r.text} ({why_missing.get(r.metric, 'not measured')})" for r in failed)
    return not failed, reason, violation
