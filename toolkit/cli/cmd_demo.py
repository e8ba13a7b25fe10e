"""`ferminet demo`: the main job on embedded defaults (no phone, no server)."""
from __future__ import annotations

import argparse

from toolkit.cli._common import positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the main job on embedded defaults (no phone needed)",
                              description="Start a virtual Pixel 6, run a short generative synthesis of resnet20 on "
                                          "Fashion-MNIST measured on it over ADB, and build the energy report.")
    p.add_argument("--out", default="ferminet-out", help="folder for the run and the report (default ferminet-out)")
    p.add_argument("--db", default="ferminet.db", help="results store (default ./ferminet.db)")
    p.add_argument("--profile", default="pixel_6", help="virtual phone's device profile (default pixel_6)")
    p.add_argument("--cycles", type=positive_int, default=2)
    p.add_argument("--population", type=positive_int, default=4)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.cli.cmd_synthesize import print_candidates
    from toolkit.demo import DemoConfig, run_demo

    result = run_demo(DemoConfig(out_dir=args.out, db=args.db, profile=args.profile, cycles=args.cycles,
                                 population=args.population))
    s = result.synthesis
    print(f"\nsynthesis run {s.run_id}: {len(s.candidates)} candidates measured on the virtual {args.profile} "
          f"({result.device}), {len(s.feasible)} met {' and '.join(DemoConfig.requirements)} on the proxy "
          f"(validation split); {len(s.finals)} final-trained; {s.wall_s:.0f} s")
    print_candidates([s.prototype] + ([s.reference] if s.reference else []) + list(s.finals))
    if s.best:
        energies = (s.prototype.energy_mj, s.best.energy_mj)
        energy = (f"{energies[0] / energies[1]:.1f}x less energy per inference than the prototype "
                  f"({s.best.energy_source})" if None not in energies else "energy ratio n/a (an energy is missing)")
        print(f"best: {s.best.candidate_id}, {s.prototype.macs / s.best.macs:.1f}x fewer MACs, {energy}; "
              f"requirements on the test split: {'met' if s.best.test_feasible else 'NOT met'}")
    else:
        print("no final-trained network met the requirements on the validation split")
    print("energy here is virtual: the virtual phone's power model driven by real CPU time, not a measurement")
    print(f"results: {args.db} (run {s.run_id}); models: {s.out_dir}; report: {result.report_html}")
    return 0
