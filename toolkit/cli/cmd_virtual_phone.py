"""`ferminet virtual-phone`: run a virtual phone (device-side ADB on loopback) until interrupted."""
from __future__ import annotations

import argparse
import threading


def register(subparsers) -> None:
    p = subparsers.add_parser("virtual-phone", help="start a virtual phone that speaks ADB on 127.0.0.1",
                              description="Serve a phone described by a device profile over the real ADB protocol on "
                                          "loopback. Connect with `adb connect 127.0.0.1:PORT` or --device. Its "
                                          "numbers are labelled virtual:<profile>.")
    p.add_argument("--profile", default="pixel_6", help="device profile (default pixel_6)")
    p.add_argument("--port", type=int, default=5555, help="TCP port (default 5555; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--sandbox", default=None, help="folder for the phone's files (default: a temporary folder)")
    p.add_argument("--charging", action="store_true", help="start with a charger connected")
    p.add_argument("--storage-free-mb", type=float, default=None, help="free storage the phone reports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from android_harness.virtual import VirtualPhone

    phone = VirtualPhone(args.profile, port=args.port, host=args.host, sandbox=args.sandbox, charging=args.charging,
                         storage_free_mb=args.storage_free_mb).start()
    print(f"virtual {phone.profile.display_name} listening on {phone.serial}; Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        phone.stop()
    return 0
