"""`ferminet fetch-benchmark`: download the official prebuilt benchmark_model for an ABI."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch-benchmark", help="download the official benchmark_model for an ABI",
                              description="Download TensorFlow Lite's official nightly benchmark_model prebuilt into "
                                          "~/.cache/ferminet/benchmark_model/<abi>/ (needs internet).")
    p.add_argument("--abi", required=True, choices=("arm64-v8a", "armeabi-v7a", "x86_64", "x86"))
    p.add_argument("--out", default=None, help="folder to put it in (default: the cache)")
    p.add_argument("--url", default=None, help="download from this URL instead of the official one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from android_harness.benchmark import fetch_prebuilt

    path = fetch_prebuilt(args.abi, args.out, args.url)
    print(f"benchmark_model for {args.abi} at {path}")
    return 0
