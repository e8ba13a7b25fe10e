"""`ferminet demo`: the main job on embedded defaults (no phone, no server)."""
from __future__ import annotations

import argparse

from toolkit.cli._common import positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the main job on embedded defaults (no phone needed)",
                              description="Train the default prototype briefly on Fashion-MNIST, convert it to "
                                          "validated int8 TFLite, profile it on the host, and print the table.")
    p.add_argument("--out", default="ferminet-out", help="folder for models and reports (default ferminet-out)")
    p.add_argument("--db", default="ferminet.db", help="results store (default ./ferminet.db)")
    p.add_argument("--epochs", type=positive_int, default=2, help="training epochs (default 2)")
    p.add_argument("--threads", type=positive_int, default=1, help="host interpreter threads (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(out_dir=args.out, db=args.db, epochs=args.epochs, threads=args.threads))
    header = f"{'model':<22}{'top-1':>8}{'MACs':>13}{'params':>10}{'size KB':>9}{'median ms':>11}  " \
             f"{'latency source':<16}{'energy mJ':>10}  energy source"
    print(header)
    print("-" * len(header))
    for r in result.rows:
        energy = f"{r.energy_mj:.4f}" if r.energy_mj is not None else "n/a"
        print(f"{r.name:<22}{r.top1:>8.2%}{r.macs:>13,}{r.params:>10,}{r.size_kb:>9.1f}{r.median_ms:>11.3f}  "
              f"{r.latency_source:<16}{energy:>10}  {r.energy_source or ''}")
    print(f"\ntop-1 on {result.eval_samples} Fashion-MNIST test images. Host energy is an ESTIMATE from the "
          f"host device profile, not a measurement.")
    print(f"models in {result.out_dir}/; results recorded as run {result.run_id} in {result.db}")
    return 0
