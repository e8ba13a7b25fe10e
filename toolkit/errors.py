"""One exception root for the toolkit; the CLI maps each class to an exit code and one line.

Messages name the bad value and the fix, e.g.
``num_threads must be >= 1. Received: num_threads=0``.
"""
from __future__ import annotations


class ToolkitError(Exception):
    """Root of every error the toolkit raises on purpose."""

    exit_code = 1


class InvalidArgumentError(ToolkitError, ValueError):
    """A caller passed a value outside what the function accepts."""

    exit_code = 2


class DatasetNotFoundError(ToolkitError):
    """A dataset could not be found offline nor downloaded."""

    exit_code = 3


class ModelFileError(ToolkitError):
    """A model file is missing, unreadable, or not the format it should be."""

    exit_code = 4


class ConversionError(ToolkitError):
    """Keras -> TFLite conversion failed, or the result is not what was asked for."""

    exit_code = 5


class AccuracyDropError(ConversionError):
    """The converted model lost more top-1 accuracy than the user allows."""


class TargetError(ToolkitError):
    """A measurement target could not run the model (host interpreter or device)."""

    exit_code = 6


class DeviceError(TargetError):
    """A phone could not be measured. The harness's error is kept as ``__cause__`` (with its device, command,
    stdout, stderr and return code) and its exit code is kept too, so the CLI says the same as for the harness
    error itself. ``transient``: trying again may work (connection lost, timeout, thermal gate)."""

    def __init__(self, message: str, *, exit_code: int = TargetError.exit_code, transient: bool = False):
        super().__init__(message)
        self.exit_code = exit_code
        self.transient = transient


class StoreError(ToolkitError):
    """The results store is unreadable, or a query names something it does not hold."""

    exit_code = 7


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as int or raise an InvalidArgumentError naming it.

    >>> check_positive_int("num_threads", 2)
    2
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return value
