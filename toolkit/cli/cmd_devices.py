"""`ferminet devices`: the phones we can reach and what they offer for measurement."""
from __future__ import annotations

import argparse
import dataclasses
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("devices", help="list reachable phones: model, SoC, clusters, battery, energy sources",
                              description="List phones held by the adb server, plus any HOST:PORT given with "
                                          "--connect (e.g. a virtual phone), with what matters for measuring.")
    p.add_argument("--connect", action="append", default=[], metavar="HOST:PORT", help="also query this address")
    p.add_argument("--adb-server", default="127.0.0.1:5037", help="adb server HOST:PORT (default 127.0.0.1:5037)")
    p.add_argument("--adb-key", default=None, metavar="FILE",
                   help="private ADB key to sign with when connecting directly (default ~/.android/adbkey, the "
                        "adb tool's own key; created like adb does when missing)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def list_devices(addresses: list[str], adb_server: str, adb_key: str | None = None):
    """DeviceInfo of every device the adb server lists plus ``addresses`` (reached directly)."""
    from android_harness.connection import connect, server_serials
    from android_harness.device import AndroidDevice

    serials = server_serials(adb_server)
    infos = []
    for serial in list(dict.fromkeys(serials + addresses)):
        conn = connect(serial, adb_server=adb_server, adb_key=adb_key)
        try:
            infos.append(AndroidDevice(conn).info())
        finally:
            conn.close()
    return infos


def run(args: argparse.Namespace) -> int:
    infos = list_devices(args.connect, args.adb_server, args.adb_key)
    if args.json:
        print(json.dumps([dataclasses.asdict(i) | {"source": i.source} for i in infos], indent=2, default=str))
        return 0
    if not infos:
        print("no devices: connect a phone with USB debugging on, `adb connect HOST:PORT`, or start "
              "`ferminet virtual-phone` and pass --connect 127.0.0.1:5555")
        return 0
    for i in infos:
        clusters = " + ".join(f"{len(c.cpus)}x{c.max_freq_khz / 1e6:.2f}GHz" for c in i.clusters)
        b = i.battery
        print(f"{i.serial}  {i.manufacturer} {i.model}  SoC {i.soc}  Android {i.android_release} (SDK {i.sdk})  {i.abi}")
        print(f"    CPU {clusters}; battery {b.level}% {b.temperature_c}C charger {b.plugged}; "
              f"thermal {i.thermal.status_name}; energy sources {', '.join(i.energy_sources) or 'none'}; "
              f"numbers labelled {i.source}")
    return 0
