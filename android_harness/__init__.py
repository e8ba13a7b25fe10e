"""Everything that talks to an Android phone over ADB. Imports without TensorFlow."""
from android_harness.errors import (
    BenchmarkError,
    CommandTimeoutError,
    ConnectionLostError,
    DeviceCommandError,
    DeviceNotFoundError,
    EnergyMeasurementError,
    HarnessError,
    ThermalGateError,
)

__all__ = [
    "BenchmarkError",
    "CommandTimeoutError",
    "ConnectionLostError",
    "DeviceCommandError",
    "DeviceNotFoundError",
    "EnergyMeasurementError",
    "HarnessError",
    "ThermalGateError",
]
