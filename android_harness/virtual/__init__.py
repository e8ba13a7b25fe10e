"""The virtual phone: a device-side ADB implementation on loopback, backed by a device profile.

``VirtualPhone`` is imported on first use: the phone's own tools (``getprop``, ``dumpsys``, ``benchmark_model``)
are modules of this package that run inside its sandbox as fresh processes, and a real phone's tools do not pay
for loading the ADB server, the sandbox and the power model before they start (about 40 ms per command here).
"""
from __future__ import annotations

__all__ = ["VirtualPhone"]


def __getattr__(name: str):
    if name == "VirtualPhone":
        from android_harness.virtual.phone import VirtualPhone

        return VirtualPhone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
