"""Where models run: the Target interface, the host (LiteRT) target and the Android target."""
from toolkit.targets.base import (
    EnergyResult,
    LatencyStats,
    Measurement,
    OpStat,
    PowerSample,
    ProfileOptions,
    RailEnergy,
    Target,
    energy_text,
)
from toolkit.targets.host import HostTarget

TARGETS = ("host", "android")


def get_target(name: str = "host", **kwargs) -> Target:
    """A Target by name: ``host`` (kwargs: profile) or ``android`` (kwargs: device, ... see AndroidTarget)."""
    from toolkit.errors import InvalidArgumentError

    if name == "host":
        return HostTarget(**kwargs)
    if name == "android":
        from toolkit.targets.android import AndroidTarget

        return AndroidTarget(**kwargs)
    raise InvalidArgumentError(f"Unknown target {name!r}. Use one of {', '.join(TARGETS)}")


def __getattr__(name: str):
    # The phone farm needs android_harness (through the Android target): imported on first use only.
    if name in ("PhoneFarm", "PhoneStatus"):
        from toolkit.targets import farm

        return getattr(farm, name)
    raise AttributeError(f"module 'toolkit.targets' has no attribute {name!r}")


__all__ = ["EnergyResult", "HostTarget", "LatencyStats", "Measurement", "OpStat", "PhoneFarm", "PhoneStatus",
           "PowerSample", "ProfileOptions", "RailEnergy", "TARGETS", "Target", "energy_text", "get_target"]
