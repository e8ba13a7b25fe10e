"""The universal performance function U.

``netscore`` (Wong 2018): Omega = 20 log10( a^alpha / (p^beta * m^gamma) ), alpha=2, beta=gamma=0.5, with a the
int8 top-1 in percent, p parameters in millions and m MACs in billions.

The on-target variants keep the accuracy term and replace the cost terms with what the target measured:
``energy``: 20 log10( a^2 / (E_mJ^0.5 * m^0.5) ) with E the energy per inference in mJ;
``latency``: 20 log10( a^2 / (t_ms^0.5 * m^0.5) ) with t the median latency in ms.
Higher is better.
"""
from __future__ import annotations

import math

from toolkit.errors import InvalidArgumentError

OBJECTIVES = ("netscore", "energy", "latency")


def netscore(top1: float, params: int, macs: int, alpha: float = 2.0, beta: float = 0.5, gamma: float = 0.5) -> float:
    """NetScore of a network; ``top1`` is a fraction in [0, 1].

    >>> round(netscore(0.9, 270_000, 41_000_000), 2)
    97.73
    """
    a = max(top1, 1e-6) * 100.0
    p = max(params, 1) / 1e6
    m = max(macs, 1) / 1e9
    return 20.0 * math.log10(a ** alpha / (p ** beta * m ** gamma))


def score(objective: str, top1: float, params: int, macs: int, latency_ms: float | None = None,
          energy_mj: float | None = None) -> float:
    """U for ``objective``; the on-target variants need their measurement."""
    if objective == "netscore":
        return netscore(top1, params, macs)
    a = max(top1, 1e-6) * 100.0
    m = max(macs, 1) / 1e9
    if objective == "energy":
        if energy_mj is None or energy_mj <= 0:
            raise InvalidArgumentError("The energy objective needs an energy measurement; profile with energy on")
        return 20.0 * math.log10(a ** 2 / (energy_mj ** 0.5 * m ** 0.5))
    if objective == "latency":
        if latency_ms is None or latency_ms <= 0:
            raise InvalidArgumentError("The latency objective needs a latency measurement")
        return 20.0 * math.log10(a ** 2 / (latency_ms ** 0.5 * m ** 0.5))
    raise InvalidArgumentError(f"Unknown objective {objective!r}. Use one of {', '.join(OBJECTIVES)}")
