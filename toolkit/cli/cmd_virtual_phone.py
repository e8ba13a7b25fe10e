"""`ferminet virtual-phone`: run a virtual phone (device-side ADB on loopback) until interrupted."""
from __future__ import annotations

import argparse
import signal
import sys
import threading


def register(subparsers) -> None:
    p = subparsers.add_parser("virtual-phone", help="start a virtual phone that speaks ADB on 127.0.0.1",
                              description="Serve a phone described by a device profile over the real ADB protocol on "
                                          "loopback. Like a phone with ro.adb.secure=1 it admits only hosts that "
                                          "sign its AUTH token with a key in its adb_keys (default: your "
                                          "~/.android/adbkey.pub, created as adb creates it), so your `adb connect "
                                          "127.0.0.1:PORT` and `ferminet ... --device 127.0.0.1:PORT` work and "
                                          "other keys are refused. The shell runs as uid 2000 in a sandbox without "
                                          "network. Its numbers are labelled virtual:<profile>. Stops on Ctrl-C or "
                                          "SIGTERM and removes its sandbox.")
    p.add_argument("--profile", default="pixel_6", help="device profile (default pixel_6)")
    p.add_argument("--port", type=int, default=5555, help="TCP port (default 5555; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="loopback address to listen on: 127.0.0.1 (default), localhost or ::1; other addresses "
                        "are refused")
    p.add_argument("--adb-keys", default=None, metavar="FILE",
                   help="public keys allowed to connect, one per line like ~/.android/adbkey.pub "
                        "(default: your ~/.android/adbkey.pub)")
    p.add_argument("--insecure", action="store_true",
                   help="accept any ADB key (ro.adb.secure=0): every local user gets a shell on the phone")
    p.add_argument("--sandbox", default=None, help="folder for the phone's files (default: a temporary folder)")
    p.add_argument("--charging", action="store_true", help="start with a charger connected")
    p.add_argument("--storage-free-mb", type=float, default=None, help="free storage the phone reports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from android_harness.virtual import VirtualPhone

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        phone = VirtualPhone(args.profile, port=args.port, host=args.host, sandbox=args.sandbox,
                             charging=args.charging, storage_free_mb=args.storage_free_mb, adb_keys=args.adb_keys,
                             insecure=args.insecure)
        phone.start()
        try:
            if args.insecure:
                print("WARNING: --insecure: this phone accepts ANY ADB key; every local user gets a shell on it",
                      file=sys.stderr, flush=True)
                trust = "any key"
            else:
                trust = f"keys in {phone.adb_keys}"
            print(f"virtual {phone.profile.display_name} listening on {phone.serial} ({trust}); Ctrl-C stops it",
                  flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            phone.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"virtual phone stopped ({signal.Signals(received[0]).name if received else 'done'})", flush=True)
    return 0
