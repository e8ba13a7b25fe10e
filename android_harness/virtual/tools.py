"""Android command-line tools inside the virtual phone's sandbox: getprop, dumpsys, taskset, df.

Run as ``python -m android_harness.virtual.tools <tool> [args]`` by the scripts in ``/system/bin``. They read
the phone's state from ``$FERMINET_VIRTUAL_STATE`` (``/data/system`` in the sandbox), which the phone process
keeps current, and print what the real tools print.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

STATE = Path(os.environ.get("FERMINET_VIRTUAL_STATE", "/data/system"))
POWER_SUPPLY = Path("/sys/class/power_supply/battery")


def _load(name: str) -> dict:
    try:
        return json.loads((STATE / f"{name}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _save(name: str, value: dict) -> None:
    tmp = STATE / f".{name}.json.tmp"
    tmp.write_text(json.dumps(value))
    tmp.replace(STATE / f"{name}.json")


def _read(path: Path, default: str = "0") -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def getprop(args: list[str]) -> int:
    props = json.loads(Path("/system/etc/props.json").read_text())
    if args:
        print(props.get(args[0], args[1] if len(args) > 1 else ""))
    else:
        for key in sorted(props):
            print(f"[{key}]: [{props[key]}]")
    return 0


def _battery(args: list[str]) -> int:
    state = _load("battery")
    if args and args[0] == "set" and len(args) == 3:
        key, value = args[1], args[2]
        if key in ("ac", "usb", "wireless"):
            state["plugged"] = key if value not in ("0", "false") else "none"
        elif key == "level":
            state["level"] = int(value)
        else:
            print(f"Unknown set option: {key}", file=sys.stderr)
            return 255
        state["updates_stopped"] = True
        _save("battery", state)
        return 0
    if args and args[0] == "unplug":
        state.update(plugged="none", updates_stopped=True)
        _save("battery", state)
        return 0
    if args and args[0] == "reset":
        state.update(plugged="none", updates_stopped=False)
        _save("battery", state)
        return 0
    plugged = state.get("plugged", "none")
    status = 2 if plugged != "none" else 3
    lines = []
    if state.get("updates_stopped"):
        lines.append("Current Battery Service state:\n  (UPDATES STOPPED -- use 'reset' to restart)")
    else:
        lines.append("Current Battery Service state:")
    lines += [f"  AC powered: {str(plugged == 'ac').lower()}", f"  USB powered: {str(plugged == 'usb').lower()}",
              f"  Wireless powered: {str(plugged == 'wireless').lower()}", "  Dock powered: false",
              f"  Max charging current: {3000000 if plugged != 'none' else 0}",
              f"  Max charging voltage: {5000000 if plugged != 'none' else 0}",
              f"  Charge counter: {_read(POWER_SUPPLY / 'charge_counter')}", f"  status: {status}", "  health: 2",
              "  present: true", f"  level: {_read(POWER_SUPPLY / 'capacity', '87')}", "  scale: 100",
              f"  voltage: {int(_read(POWER_SUPPLY / 'voltage_now', '3850000')) // 1000}",
              f"  temperature: {_read(POWER_SUPPLY / 'temp', '295')}", "  technology: Li-ion"]
    print("\n".join(lines))
    return 0


def _thermal() -> int:
    status = int(_load("thermal").get("status", 0))
    zones = sorted(Path("/sys/class/thermal").glob("thermal_zone*"), key=lambda p: int(p.name[12:]))
    temps = []
    for zone in zones:
        kind = _read(zone / "type", "unknown")
        value = int(_read(zone / "temp", "0")) / 1000.0
        type_id = 2 if kind == "battery" else 0
        temps.append(f"\tTemperature{{mValue={value:.1f}, mType={type_id}, mName={kind}, mStatus={status}}}")
    print("\n".join(["IsStatusOverride: false", "ThermalEventListeners:", "\tcallbacks: 1", "\tkilled: false",
                     "\tbroadcasts count: -1", "ThermalStatusListeners:", "\tcallbacks: 1", "\tkilled: false",
                     "\tbroadcasts count: -1", f"Thermal Status: {status}", "Cached temperatures:", *temps,
                     "HAL Ready: true", "HAL connection:", "\tThermalHAL 2.0 connected: yes",
                     "Current temperatures from HAL:", *temps, "Current cooling devices from HAL:",
                     "\tCoolingDevice{mValue=0, mType=2, mName=cpu0}"]))
    return 0


def dumpsys(args: list[str]) -> int:
    if not args:
        print("Currently running services:\n  battery\n  thermalservice")
        return 0
    if args[0] == "battery":
        return _battery(args[1:])
    if args[0] == "thermalservice":
        return _thermal()
    print(f"Can't find service: {args[0]}")
    return 0


def taskset(args: list[str]) -> int:
    """toybox syntax: ``taskset [-p] [mask] [PID | cmd [args...]]``; device CPUs map onto the host's."""
    host_cpus = sorted(os.sched_getaffinity(0))
    if args and args[0] == "-p":
        if len(args) == 2:
            mask = sum(1 << c for c in os.sched_getaffinity(int(args[1])))
            print(f"pid {args[1]}'s affinity mask: {mask:x}")
            return 0
        args = args[1:]
        mask, pid = int(args[0], 16), int(args[1])
        os.sched_setaffinity(pid, _map(mask, host_cpus))
        return 0
    if len(args) < 2:
        print("usage: taskset [-p] [mask] [PID | cmd [args...]]", file=sys.stderr)
        return 1
    try:
        mask = int(args[0], 16)
    except ValueError:
        print(f"taskset: bad mask '{args[0]}'", file=sys.stderr)
        return 1
    os.sched_setaffinity(0, _map(mask, host_cpus))
    os.execvp(args[1], args[1:])
    return 127


def _map(mask: int, host_cpus: list[int]) -> set[int]:
    device_cpus = [i for i in range(64) if mask >> i & 1]
    if not device_cpus:
        raise SystemExit("taskset: empty mask")
    return {host_cpus[i % len(host_cpus)] for i in range(len(device_cpus))}


def df(args: list[str]) -> int:
    quota = _load("storage")
    total_kb, free_kb = int(quota.get("total_kb", 0)), int(quota.get("free_kb", 0))
    print("Filesystem       1K-blocks    Used Available Use% Mounted on")
    used = max(0, total_kb - free_kb)
    pct = int(100 * used / total_kb) if total_kb else 0
    print(f"/dev/block/dm-8 {total_kb:>11} {used:>7} {free_kb:>9} {pct:>3}% /data")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tools = {"getprop": getprop, "dumpsys": dumpsys, "taskset": taskset, "df": df}
    if not argv or argv[0] not in tools:
        print(f"unknown tool {argv[:1]}", file=sys.stderr)
        return 127
    return tools[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
