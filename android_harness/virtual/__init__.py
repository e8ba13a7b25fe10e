"""The virtual phone: a device-side ADB implementation on loopback, backed by a device profile."""
from android_harness.virtual.phone import VirtualPhone

__all__ = ["VirtualPhone"]
