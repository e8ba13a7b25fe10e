"""Connecting to a Ray cluster. Ray is optional (the ``ray`` extra): it is imported only here, when asked for.

Ray runs the cluster (its own launcher or KubeRay start it; see docs/scaling.md); the toolkit only connects to it
as a driver (``synthesize --executor ray``) or adds phone hosts to it (``ferminet agent``).
"""
from __future__ import annotations

import logging
import os

from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)

NAMESPACE = "ferminet"  # the Ray namespace our named actors (phones) live in


class ScaleError(ToolkitError):
    """Ray is missing, the cluster cannot be reached, or it lacks what a job needs."""

    exit_code = 18  # 8-17 are the harness's


def require_ray():
    """The ``ray`` module, or one error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ScaleError("Ray is not installed; the Ray executor and `ferminet agent` need it: "
                         "pip install 'ferminet-toolkit[ray]' (ray>=2.50)") from None
    return ray


def connect(address: str | None = None):
    """Join the Ray cluster at ``address`` (``HOST:PORT`` of its head, or ``auto``: the one this machine is part
    of, or $RAY_ADDRESS) as a driver in the ``ferminet`` namespace; returns the ``ray`` module. A second call is a
    no-op. Raises :class:`ScaleError` naming the address when there is no cluster there."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ScaleError(f"No Ray cluster at {address!r} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}). "
                         f"Start one (`ray start --head`, Ray's cluster launcher or KubeRay) and pass its head's "
                         f"HOST:PORT, e.g. --ray-address 10.0.0.5:6379") from None
    log.info("connected to the Ray cluster at %s: %s", address, ray.cluster_resources())
    return ray


def disconnect() -> None:
    ray = require_ray()
    if ray.is_initialized():
        ray.shutdown()
