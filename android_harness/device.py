"""AndroidDevice: typed facts about a phone (props, CPU topology, battery, thermal, energy sources, storage)
read over a :class:`~android_harness.connection.Connection`. Parsing is done by :mod:`android_harness.parsers`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from android_harness.connection import Connection, quote
from android_harness.errors import DeviceCommandError
from android_harness.parsers import BatteryInfo, ThermalInfo, parse_dumpsys_battery, parse_getprop, parse_thermalservice

VIRTUAL_SUFFIX = "_virtual"  # ro.product.name of the virtual phone: "<profile>_virtual"
GOVERNORS = "/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor"
_SECTION = "__FERMINET_SECTION__"  # separates the outputs of the commands that readings() runs as one


@dataclass(frozen=True)
class CpuCluster:
    cpus: tuple[int, ...]
    max_freq_khz: int
    governor: str


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    model: str
    manufacturer: str
    soc: str
    android_release: str
    sdk: int
    abi: str
    abi_list: tuple[str, ...]
    clusters: tuple[CpuCluster, ...]
    battery: BatteryInfo
    thermal: ThermalInfo
    energy_sources: tuple[str, ...]
    virtual_profile: str | None  # profile name when this is the virtual phone
    governors: str = "unknown"  # the CPUs' scaling governors when the info was read (see AndroidDevice.governors)

    @property
    def source(self) -> str:
        """Provenance label of numbers measured on this device."""
        return f"virtual:{self.virtual_profile}" if self.virtual_profile else f"measured:{self.serial}"

    def fastest_cpus(self, n: int) -> tuple[int, ...]:
        ordered = [c for cl in sorted(self.clusters, key=lambda c: -c.max_freq_khz) for c in sorted(cl.cpus, reverse=True)]
        return tuple(sorted(ordered[:max(1, n)]))


class AndroidDevice:
    def __init__(self, connection: Connection):
        self.conn = connection
        self.serial = connection.serial
        self._props: dict[str, str] | None = None
        self._clusters: tuple[CpuCluster, ...] | None = None
        self._sources: tuple[str, ...] | None = None

    def shell(self, command: str, timeout_s: float = 30.0):
        return self.conn.shell(command, timeout_s)

    def check(self, command: str, timeout_s: float = 30.0):
        return self.conn.check(command, timeout_s)

    def props(self) -> dict[str, str]:
        if self._props is None:
            self._props = parse_getprop(self.check("getprop").stdout)
        return self._props

    def battery(self) -> BatteryInfo:
        return parse_dumpsys_battery(self.check("dumpsys battery").stdout)

    def thermal(self) -> ThermalInfo:
        return parse_thermalservice(self.shell("dumpsys thermalservice").stdout)

    def clusters(self) -> tuple[CpuCluster, ...]:
        """CPUs grouped by maximum frequency (one group per cluster), from cpufreq in sysfs (read once)."""
        if self._clusters is None:
            self._clusters = self._read_clusters()
        return self._clusters

    def _read_clusters(self) -> tuple[CpuCluster, ...]:
        out = self.shell("for c in /sys/devices/system/cpu/cpu[0-9]*; do n=${c##*cpu}; "
                         "echo \"$n $(cat $c/cpufreq/cpuinfo_max_freq 2>/dev/null || echo 0) "
                         "$(cat $c/cpufreq/scaling_governor 2>/dev/null || echo unknown)\"; done").stdout
        groups: dict[int, list[tuple[int, str]]] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
                groups.setdefault(int(parts[1]), []).append((int(parts[0]), parts[2]))
        return tuple(CpuCluster(tuple(sorted(c for c, _ in members)), freq, members[0][1])
                     for freq, members in sorted(groups.items()))

    def energy_sources(self) -> tuple[str, ...]:
        if self._sources is None:
            self._sources = self._probe_sources()
        return self._sources

    def _probe_sources(self) -> tuple[str, ...]:
        out = self.shell("cat /sys/class/power_supply/battery/current_now /sys/class/power_supply/battery/voltage_now "
                         ">/dev/null 2>&1 && echo fuel_gauge; "
                         "[ -r /sys/class/power_supply/battery/charge_counter ] && echo charge_counter; "
                         "ls /sys/bus/iio/devices/iio:device*/energy_value >/dev/null 2>&1 && echo odpm; true").stdout
        return tuple(s for s in ("fuel_gauge", "charge_counter", "odpm") if s in out.split())

    def free_storage_bytes(self, path: str = "/data/local/tmp") -> int | None:
        out = self.shell(f"df -k {quote(path)}").stdout.strip().splitlines()
        if len(out) < 2:
            return None
        fields = out[-1].split()
        try:
            return int(fields[3]) * 1024
        except (IndexError, ValueError):
            return None

    def readings(self) -> tuple[BatteryInfo, ThermalInfo, str]:
        """(battery, thermal, governors) in one shell round trip instead of three: they are read before and after
        every run. A failing ``dumpsys battery`` raises DeviceCommandError as :meth:`battery` does."""
        command = (f"dumpsys battery; echo {_SECTION}$?; dumpsys thermalservice; echo {_SECTION}; "
                   f"cat {GOVERNORS} 2>/dev/null; true")
        out = self.shell(command).stdout
        parts = out.split(_SECTION)
        code, _, thermal_text = parts[1].partition("\n") if len(parts) == 3 else ("", "", "")
        if len(parts) != 3 or code.strip() != "0":
            raise DeviceCommandError(f"Command failed on {self.serial}: dumpsys battery", serial=self.serial,
                                     command=command, stdout=out,
                                     returncode=int(code) if code.strip().isdigit() else None)
        governors = ",".join(sorted(set(parts[2].split()))) or "unknown"
        return parse_dumpsys_battery(parts[0]), parse_thermalservice(thermal_text), governors

    def info(self) -> DeviceInfo:
        p = self.props()
        battery, thermal, governors = self.readings()
        name = p.get("ro.product.name", "")
        return DeviceInfo(
            serial=self.serial, model=p.get("ro.product.model", "?"), manufacturer=p.get("ro.product.manufacturer", "?"),
            soc=p.get("ro.soc.model") or p.get("ro.board.platform", "?"),
            android_release=p.get("ro.build.version.release", "?"), sdk=int(p.get("ro.build.version.sdk", "0") or 0),
            abi=p.get("ro.product.cpu.abi", "?"),
            abi_list=tuple(x for x in p.get("ro.product.cpu.abilist", "").split(",") if x),
            clusters=self.clusters(), battery=battery, thermal=thermal, energy_sources=self.energy_sources(),
            virtual_profile=name[: -len(VIRTUAL_SUFFIX)] if name.endswith(VIRTUAL_SUFFIX) else None,
            governors=governors)

    def governors(self) -> str:
        """Current scaling governors (read fresh: they can change between runs)."""
        out = self.shell(f"cat {GOVERNORS} 2>/dev/null").stdout.split()
        return ",".join(sorted(set(out))) or "unknown"

    def snapshot(self) -> "DeviceState":
        return DeviceState.of(*self.readings())


@dataclass(frozen=True)
class DeviceState:
    """What can change a measurement, read before and after a run."""

    thermal_status: str
    thermal_level: int
    battery_level: int | None
    battery_temp_c: float | None
    charger: str
    governor: str
    max_temp_c: float | None

    @classmethod
    def of(cls, battery: BatteryInfo, thermal: ThermalInfo, governor: str) -> "DeviceState":
        """The state from readings already taken (e.g. the ones :meth:`AndroidDevice.info` made)."""
        return cls(thermal.status_name, thermal.status, battery.level, battery.temperature_c, battery.plugged,
                   governor, max((t.value_c for t in thermal.temperatures), default=None))

    def describe(self) -> str:
        return (f"thermal {self.thermal_status}, battery {self.battery_level}% {self.battery_temp_c}C "
                f"charger {self.charger}, max zone {self.max_temp_c}C")


def parse_taskset_mask(text: str) -> int | None:
    m = re.search(r"affinity mask:\s*([0-9a-fA-F]+)", text)
    return int(m[1], 16) if m else None
