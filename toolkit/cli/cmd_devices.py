"""`ferminet devices`: the phones we can reach and what they offer for measurement."""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass


def register(subparsers) -> None:
    p = subparsers.add_parser("devices", help="the phone farm: model, SoC, battery, thermal, busy/idle, energy sources",
                              description="List phones held by the adb server, plus any HOST:PORT given with "
                                          "--connect (e.g. a virtual phone): one line per phone (model, SoC, "
                                          "battery, thermal status, busy when a ferminet measurement runs on it, "
                                          "or down with the reason), then what matters for measuring.")
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT", help="also query this address")
    p.add_argument("--adb-server", default="127.0.0.1:5037", help="adb server HOST:PORT (default 127.0.0.1:5037)")
    p.add_argument("--adb-key", default=None, metavar="FILE",
                   help="private ADB key to sign with when connecting directly (default ~/.android/adbkey, the "
                        "adb tool's own key; created like adb does when missing)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def list_devices(addresses: list[str], adb_server: str, adb_key: str | None = None):
    """DeviceInfo of every device the adb server lists plus ``addresses`` (reached directly)."""
    return [row.info for row in farm_view(addresses, adb_server, adb_key) if row.info is not None]


@dataclass(frozen=True)
class FarmRow:
    """One phone of the farm view: its DeviceInfo (None when unreachable), whether a harness process
    (benchmark, power sampler) runs on it now, or why it could not be read."""

    serial: str
    info: object | None
    busy: bool
    error: str = ""


def farm_view(addresses: list[str], adb_server: str, adb_key: str | None = None) -> list[FarmRow]:
    """Every phone the adb server lists plus ``addresses``: reachable ones with their info and busy flag, the
    others with the reason."""
    from android_harness.connection import connect, server_serials
    from android_harness.device import AndroidDevice
    from android_harness.errors import HarnessError
    from android_harness.services import tracked_running

    rows = []
    for serial in list(dict.fromkeys(server_serials(adb_server) + addresses)):
        try:
            conn = connect(serial, adb_server=adb_server, adb_key=adb_key)
        except HarnessError as exc:
            rows.append(FarmRow(serial, None, False, str(exc)))
            continue
        try:
            device = AndroidDevice(conn)
            rows.append(FarmRow(serial, device.info(), bool(tracked_running(device))))
        except HarnessError as exc:
            rows.append(FarmRow(serial, None, False, str(exc)))
        finally:
            conn.close()
    return rows


def run(args: argparse.Namespace) -> int:
    rows = farm_view(args.connect, args.adb_server, args.adb_key)
    if args.json:
        print(json.dumps([(dataclasses.asdict(r.info) | {"source": r.info.source} if r.info else {"serial": r.serial})
                          | {"reachable": r.info is not None, "busy": r.busy, "error": r.error} for r in rows],
                         indent=2, default=str))
        return 0
    if not rows:
        print("no devices: connect a phone with USB debugging on, `adb connect HOST:PORT`, or start "
              "`ferminet virtual-phone` and pass --connect 127.0.0.1:5555")
        return 0
    # The farm at a glance: one line per phone (busy = a benchmark or power sampler of some ferminet runs on it).
    print(f"{'serial':<22}{'model':<16}{'SoC':<10}{'battery':>8}{'temp':>7}  {'thermal':<9}{'state':<7}source")
    for r in rows:
        if r.info is None:
            print(f"{r.serial:<22}{'?':<16}{'?':<10}{'':>8}{'':>7}  {'':<9}{'down':<7}{r.error.splitlines()[0][:90]}")
            continue
        i, b = r.info, r.info.battery
        temp = f"{b.temperature_c:.1f}C" if b.temperature_c is not None else "?"
        print(f"{r.serial:<22}{i.model[:15]:<16}{i.soc[:9]:<10}{(str(b.level) + '%') if b.level is not None else '?':>8}"
              f"{temp:>7}  {i.thermal.status_name:<9}{'busy' if r.busy else 'idle':<7}{i.source}")
    print()
    for r in rows:
        if r.info is None:
            continue
        i, b = r.info, r.info.battery
        clusters = " + ".join(f"{len(c.cpus)}x{c.max_freq_khz / 1e6:.2f}GHz" for c in i.clusters)
        print(f"{i.serial}  {i.manufacturer} {i.model}  SoC {i.soc}  Android {i.android_release} (SDK {i.sdk})  {i.abi}")
        print(f"    CPU {clusters}; battery {b.level}% {b.temperature_c}C charger {b.plugged}; "
              f"thermal {i.thermal.status_name}; energy sources {', '.join(i.energy_sources) or 'none'}; "
              f"numbers labelled {i.source}")
    return 0
