"""Data files describing real phones (and this host), their loader and validator.

A profile is a JSON file (``pixel_6.json`` ...): identity (``getprop`` values), CPU clusters with the
frequencies and per-core currents of the phone's AOSP ``power_profile.xml``, battery capacity, nominal
voltage and the fuel gauge's unit/sign convention, the energy sources the phone offers, thermal zones,
and ``sources`` citing where every number comes from. Currents are kept in mA as the sources state them
and converted to mW with the battery's nominal voltage.

>>> p = load_profile("pixel_6")
>>> p.big_cluster().name, p.cpus_for_threads(2)
('cluster2', (6, 7))
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE / "schema" / "device_profile.schema.json"


class DeviceProfileError(ValueError):
    """A profile is missing, malformed or inconsistent. The message names file, field, value and fix."""


@dataclass(frozen=True)
class Cluster:
    name: str
    cpus: tuple[int, ...]
    core_type: str
    available_freqs_khz: tuple[int, ...]
    core_power_ma: tuple[float, ...]
    cluster_power_ma: float

    @property
    def min_freq_khz(self) -> int:
        return min(self.available_freqs_khz)

    @property
    def max_freq_khz(self) -> int:
        return max(self.available_freqs_khz)


@dataclass(frozen=True)
class Battery:
    capacity_mah: float
    nominal_voltage_mv: float
    current_unit: str  # "uA" | "mA" as current_now reports it
    current_sign_discharge: int  # -1: current_now < 0 while discharging; +1: > 0
    voltage_unit: str  # "uV" | "mV" as voltage_now reports it
    technology: str


@dataclass(frozen=True)
class ThermalZone:
    name: str
    type: str
    idle_temp_c: float


@dataclass(frozen=True)
class PowerModel:
    """CPU power from power_profile.xml currents x the nominal voltage. All results in mW."""

    voltage_mv: float
    suspend_ma: float
    idle_ma: float
    active_ma: float
    clusters: tuple[Cluster, ...]
    sources: tuple[str, ...]

    def _mw(self, ma: float) -> float:
        return ma * self.voltage_mv / 1000.0

    @property
    def idle_mw(self) -> float:
        """Baseline: device awake, CPUs idle (cpu.suspend + cpu.idle)."""
        return self._mw(self.suspend_ma + self.idle_ma)

    @property
    def cluster_active_mw(self) -> dict[str, float]:
        """Extra power of ONE busy core of each cluster at its highest frequency."""
        return {c.name: self._mw(c.core_power_ma[-1]) for c in self.clusters}

    @property
    def cluster_overhead_mw(self) -> dict[str, float]:
        return {c.name: self._mw(c.cluster_power_ma) for c in self.clusters}

    def active_power_mw(self, cluster: str, busy_cores: int, freq_khz: int | None = None) -> float:
        """Power above idle when ``busy_cores`` cores of ``cluster`` run flat out (at ``freq_khz``, default max)."""
        c = next((c for c in self.clusters if c.name == cluster), None)
        if c is None:
            raise DeviceProfileError(f"No cluster {cluster!r}. Received: cluster={cluster!r}; "
                                     f"known: {[c.name for c in self.clusters]}")
        if busy_cores <= 0:
            return 0.0
        busy = min(busy_cores, len(c.cpus))
        core_ma = c.core_power_ma[-1]
        if freq_khz is not None:
            # Nearest declared operating point at or below freq_khz.
            points = [i for i, f in enumerate(c.available_freqs_khz) if f <= freq_khz] or [0]
            core_ma = c.core_power_ma[points[-1]]
        return self._mw(busy * core_ma + c.cluster_power_ma + self.active_ma)


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    kind: str  # "phone" | "host"
    display_name: str
    manufacturer: str
    brand: str
    model: str
    device: str
    soc: str
    soc_manufacturer: str
    platform: str
    android_release: str
    sdk: int
    abi: str
    abi_list: tuple[str, ...]
    kernel: str
    governor: str
    clusters: tuple[Cluster, ...]
    battery: Battery | None
    power_model: PowerModel
    energy_sources: tuple[str, ...]
    odpm_rails: tuple[str, ...]
    odpm_cluster_rails: tuple[tuple[str, str], ...]
    thermal_zones: tuple[ThermalZone, ...]
    sources: tuple[str, ...]
    path: str

    @property
    def num_cpus(self) -> int:
        return sum(len(c.cpus) for c in self.clusters)

    def big_cluster(self) -> Cluster:
        return max(self.clusters, key=lambda c: (c.max_freq_khz, c.core_power_ma[-1]))

    def clusters_fastest_first(self) -> tuple[Cluster, ...]:
        return tuple(sorted(self.clusters, key=lambda c: (-c.max_freq_khz, -c.core_power_ma[-1])))

    def cpus_for_threads(self, n: int) -> tuple[int, ...]:
        """The ``n`` fastest cores (for taskset): the big cluster first, spilling to the next."""
        if n < 1:
            raise DeviceProfileError(f"threads must be >= 1. Received: n={n}")
        cpus = [cpu for c in self.clusters_fastest_first() for cpu in sorted(c.cpus, reverse=True)]
        return tuple(sorted(cpus[:n]))

    def estimate_power_mw(self, num_threads: int) -> float:
        """Power above idle (mW) of ``num_threads`` busy threads on the fastest cores at max frequency.

        Per used cluster: busy cores x core current + the cluster's own current; plus ``cpu.active``
        once. Threads beyond the core count time-share and add nothing.
        """
        pm = self.power_model
        left, ma = num_threads, pm.active_ma
        for c in self.clusters_fastest_first():
            if left <= 0:
                break
            take = min(left, len(c.cpus))
            ma += take * c.core_power_ma[-1] + c.cluster_power_ma
            left -= take
        return pm._mw(ma)


# ---- validation -----------------------------------------------------------------------------------
_TOP = {
    "name": str, "kind": str, "display_name": str, "manufacturer": str, "brand": str, "model": str,
    "device": str, "soc": str, "soc_manufacturer": str, "platform": str, "android_release": str, "sdk": int,
    "abi": str, "abi_list": list, "kernel": str, "governor": str, "clusters": list, "battery": (dict, type(None)),
    "power_model": dict, "energy_sources": list, "odpm_rails": list, "odpm_cluster_rails": dict,
    "thermal_zones": list, "sources": list,
}
_CLUSTER = {"name": str, "cpus": list, "core_type": str, "freqs_khz": list, "core_power_ma": list,
            "cluster_power_ma": (int, float)}
_BATTERY = {"capacity_mah": (int, float), "nominal_voltage_mv": (int, float), "current_unit": str,
            "current_sign_discharge": int, "voltage_unit": str, "technology": str}
_POWER = {"suspend_ma": (int, float), "idle_ma": (int, float), "active_ma": (int, float)}
_ZONE = {"name": str, "type": str, "idle_temp_c": (int, float)}
ENERGY_SOURCES = ("fuel_gauge", "charge_counter", "odpm")
ABIS = ("arm64-v8a", "armeabi-v7a", "armeabi", "x86_64", "x86")


def _fail(path: Path, field: str, message: str) -> DeviceProfileError:
    return DeviceProfileError(f"{path}: field {field}: {message}")


def _check_fields(path: Path, where: str, obj: object, spec: dict, optional: tuple[str, ...] = ()) -> None:
    if not isinstance(obj, dict):
        raise _fail(path, where or "<root>", f"must be an object. Received: {type(obj).__name__}")
    unknown = sorted(set(obj) - set(spec) - set(optional))
    if unknown:
        raise _fail(path, f"{where}{unknown[0]}", f"unknown field. Received: {unknown}; fix: remove it or check "
                                                  f"the spelling against {sorted(spec)}")
    for key, typ in spec.items():
        if key not in obj:
            raise _fail(path, f"{where}{key}", "is missing; fix: add it (see device_profiles/schema)")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, typ):
            expected = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
            raise _fail(path, f"{where}{key}", f"must be {expected}. Received: {value!r}")


def _validate(path: Path, d: dict) -> None:
    _check_fields(path, "", d, _TOP)
    if d["kind"] not in ("phone", "host"):
        raise _fail(path, "kind", f"must be 'phone' or 'host'. Received: {d['kind']!r}")
    if d["abi"] not in ABIS:
        raise _fail(path, "abi", f"must be one of {ABIS}. Received: {d['abi']!r}")
    if not d["clusters"]:
        raise _fail(path, "clusters", "needs at least one cluster")
    seen: set[int] = set()
    for i, c in enumerate(d["clusters"]):
        _check_fields(path, f"clusters[{i}].", c, _CLUSTER)
        if not c["cpus"] or any(not isinstance(x, int) or x < 0 for x in c["cpus"]):
            raise _fail(path, f"clusters[{i}].cpus", f"must be CPU numbers >= 0. Received: {c['cpus']!r}")
        overlap = seen & set(c["cpus"])
        if overlap:
            raise _fail(path, f"clusters[{i}].cpus", f"CPUs {sorted(overlap)} belong to two clusters; fix: "
                                                     f"list each CPU once")
        seen |= set(c["cpus"])
        if len(c["freqs_khz"]) != len(c["core_power_ma"]) or not c["freqs_khz"]:
            raise _fail(path, f"clusters[{i}].core_power_ma", f"needs one current per frequency. Received: "
                                                              f"{len(c['core_power_ma'])} currents for "
                                                              f"{len(c['freqs_khz'])} frequencies")
        if any(v < 0 for v in c["core_power_ma"]) or c["cluster_power_ma"] < 0:
            raise _fail(path, f"clusters[{i}].core_power_ma", "currents must be >= 0 (power cannot be negative)")
        if sorted(c["freqs_khz"]) != c["freqs_khz"]:
            raise _fail(path, f"clusters[{i}].freqs_khz", "must be ascending, as power_profile.xml lists them")
    pm = d["power_model"]
    _check_fields(path, "power_model.", pm, _POWER, optional=("voltage_mv",))
    if any(pm[k] < 0 for k in _POWER):
        raise _fail(path, "power_model", f"currents must be >= 0. Received: {pm!r}")
    bad = [s for s in d["energy_sources"] if s not in ENERGY_SOURCES]
    if bad:
        raise _fail(path, "energy_sources", f"unknown {bad}; use any of {ENERGY_SOURCES}")
    if d["kind"] == "phone":
        if d["battery"] is None:
            raise _fail(path, "battery", "is required for a phone (only kind 'host' may have null)")
        b = d["battery"]
        _check_fields(path, "battery.", b, _BATTERY)
        if b["current_unit"] not in ("uA", "mA") or b["voltage_unit"] not in ("uV", "mV"):
            raise _fail(path, "battery.current_unit", f"units must be uA/mA and uV/mV. Received: "
                                                      f"{b['current_unit']!r}, {b['voltage_unit']!r}")
        if b["current_sign_discharge"] not in (-1, 1):
            raise _fail(path, "battery.current_sign_discharge",
                        f"must be -1 or 1. Received: {b['current_sign_discharge']!r}")
        if b["capacity_mah"] <= 0 or b["nominal_voltage_mv"] <= 0:
            raise _fail(path, "battery.capacity_mah", "capacity and voltage must be > 0")
    elif "voltage_mv" not in pm:
        raise _fail(path, "power_model.voltage_mv", "a host profile (no battery) needs the reference voltage")
    if "odpm" in d["energy_sources"] and not d["odpm_rails"]:
        raise _fail(path, "odpm_rails", "lists no rails but energy_sources has 'odpm'")
    for i, z in enumerate(d["thermal_zones"]):
        _check_fields(path, f"thermal_zones[{i}].", z, _ZONE)
    if not d["sources"]:
        raise _fail(path, "sources", "must cite where the numbers come from")


def _from_dict(path: Path, d: dict) -> DeviceProfile:
    clusters = tuple(Cluster(c["name"], tuple(c["cpus"]), c["core_type"], tuple(c["freqs_khz"]),
                             tuple(float(v) for v in c["core_power_ma"]), float(c["cluster_power_ma"]))
                     for c in d["clusters"])
    b = d["battery"]
    battery = Battery(float(b["capacity_mah"]), float(b["nominal_voltage_mv"]), b["current_unit"],
                      int(b["current_sign_discharge"]), b["voltage_unit"], b["technology"]) if b else None
    pm = d["power_model"]
    voltage = float(pm.get("voltage_mv") or battery.nominal_voltage_mv)  # type: ignore[union-attr]
    power = PowerModel(voltage, float(pm["suspend_ma"]), float(pm["idle_ma"]), float(pm["active_ma"]), clusters,
                       tuple(d["sources"]))
    return DeviceProfile(
        name=d["name"], kind=d["kind"], display_name=d["display_name"], manufacturer=d["manufacturer"],
        brand=d["brand"], model=d["model"], device=d["device"], soc=d["soc"],
        soc_manufacturer=d["soc_manufacturer"], platform=d["platform"], android_release=d["android_release"],
        sdk=d["sdk"], abi=d["abi"], abi_list=tuple(d["abi_list"]), kernel=d["kernel"], governor=d["governor"],
        clusters=clusters, battery=battery, power_model=power, energy_sources=tuple(d["energy_sources"]),
        odpm_rails=tuple(d["odpm_rails"]), odpm_cluster_rails=tuple(sorted(d["odpm_cluster_rails"].items())),
        thermal_zones=tuple(ThermalZone(z["name"], z["type"], float(z["idle_temp_c"])) for z in d["thermal_zones"]),
        sources=tuple(d["sources"]), path=str(path))


def list_profiles() -> list[str]:
    """Names of the bundled profiles, sorted."""
    return sorted(p.stem for p in HERE.glob("*.json"))


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A bundled profile by name (``pixel_6``) or any profile file by path; validated."""
    text = str(name_or_path)
    path = Path(text) if text.endswith(".json") or "/" in text else HERE / f"{text}.json"
    if not path.is_file():
        raise DeviceProfileError(f"No device profile {text!r}. Use one of {', '.join(list_profiles())} "
                                 f"or a path to a .json profile")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeviceProfileError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); fix the syntax") from exc
    _validate(path, data)
    return _from_dict(path, data)


__all__ = ["Battery", "Cluster", "DeviceProfile", "DeviceProfileError", "PowerModel", "ThermalZone",
           "list_profiles", "load_profile"]
