"""One exception root for everything that talks to a phone.

Device errors carry the device, the command, stdout, stderr and the return code, so a
failure can be read without re-running it.
"""
from __future__ import annotations


class HarnessError(Exception):
    """Root of every error android_harness raises on purpose. ``exit_code`` is for the CLI."""

    exit_code = 8


class DeviceNotFoundError(HarnessError):
    """No device with the given serial / address is reachable."""

    exit_code = 9


class ConnectionLostError(HarnessError):
    """The device went away (USB unplugged, adbd died, network dropped) mid-operation."""

    exit_code = 10


class DeviceUnauthorizedError(ConnectionLostError):
    """The device asked for ADB authentication and did not accept our key."""

    exit_code = 17


class CommandTimeoutError(HarnessError):
    """A device command did not finish within its timeout."""

    exit_code = 11


class DeviceCommandError(HarnessError):
    """A shell command on the device failed."""

    exit_code = 12

    def __init__(self, message: str, *, serial: str = "", command: str = "", stdout: str = "",
                 stderr: str = "", returncode: int | None = None):
        super().__init__(message)
        self.serial = serial
        self.command = command
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode

    def __str__(self) -> str:  # one line for the CLI, details for logs
        base = super().__str__()
        tail = (self.stderr or self.stdout).strip().splitlines()
        detail = f" (device {self.serial}, exit {self.returncode}: {tail[-1][:200]})" if tail else (
            f" (device {self.serial}, exit {self.returncode})" if self.serial else "")
        return base + detail


class BenchmarkError(HarnessError):
    """benchmark_model is missing, built for another ABI, or reported a failure."""

    exit_code = 13


class EnergyMeasurementError(HarnessError):
    """Energy was asked for but cannot be measured honestly (charging, no counters...)."""

    exit_code = 14


class ThermalGateError(HarnessError):
    """The device did not cool to a normal thermal state within the allowed wait."""

    exit_code = 15


class StorageFullError(HarnessError):
    """The device has no room for what we push."""

    exit_code = 16
