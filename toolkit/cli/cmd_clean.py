"""`ferminet clean`: remove what ferminet put on a phone."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("clean", help="remove ferminet's files (models, binaries) from a phone",
                              description="Delete /data/local/tmp/ferminet (our private folder) on the device.")
    p.add_argument("--device", required=True, help="phone serial or HOST:PORT")
    p.add_argument("--adb-server", default="127.0.0.1:5037")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from android_harness.connection import connect
    from android_harness.deploy import REMOTE_ROOT
    from android_harness.services import clean_device
    from android_harness.device import AndroidDevice

    removed = clean_device(AndroidDevice(connect(args.device, adb_server=args.adb_server)))
    print(f"removed {len(removed)} files from {REMOTE_ROOT} on {args.device}")
    return 0
