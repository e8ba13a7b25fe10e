"""`ferminet synthesize`: learn a generator of networks that meet requirements measured on a target."""
from __future__ import annotations

import argparse
import re

from toolkit.cli._common import add_data_arguments, add_db_argument, positive_int


def parse_budget(text: str) -> float:
    """'60m', '90s', '1.5h', '3600' -> seconds (> 0)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 60m, 90s or 1.5h. Received: {text!r}")
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the budget must be > 0. Received: {text!r}")
    return seconds


def print_candidates(rows, header: bool = True) -> None:
    if header:
        print(f"{'candidate':<12}{'spec':<14}{'int8 top-1':>11}{'MACs':>13}{'params':>10}{'KB':>8}{'latency ms':>11}"
              f"{'energy mJ':>11}  {'latency / energy source':<34}{'U':>7}  ok")
    for c in rows:
        if c.status != "ok":
            print(f"{c.candidate_id:<12}{c.spec_hash:<14}  failed: {c.failure_reason}")
            continue
        energy = f"{c.energy_mj:.4f}" if c.energy_mj is not None else "n/a"
        print(f"{c.candidate_id:<12}{c.spec_hash:<14}{c.int8_top1:>11.2%}{c.macs:>13,}{c.params:>10,}"
              f"{c.size_kb:>8.1f}{c.latency_ms:>11.3f}{energy:>11}  "
              f"{(c.latency_source or '?') + ' / ' + (c.energy_source or 'n/a'):<34}{c.score:>7.1f}  "
              f"{'yes' if c.feasible else 'no: ' + (c.failure_reason or '')}")


def register(subparsers) -> None:
    p = subparsers.add_parser("synthesize", help="generative synthesis of networks meeting requirements",
                              description="Train the prototype, then run generator-inquisitor cycles: sample "
                                          "networks, inherit weights, fine-tune, convert to int8, measure on the "
                                          "target, and update the generator toward networks that meet the "
                                          "requirements with the best U. Baselines: --strategy random|width|l1prune.")
    p.add_argument("--prototype", default="resnet20", help="resnet20 | mobilenetv2 | vgg_small (default resnet20)")
    p.add_argument("--prototype-width", type=float, default=1.0, help="width multiplier of the prototype")
    add_data_arguments(p)
    p.add_argument("--target", choices=("host", "android"), default="host")
    p.add_argument("--device", default=None, help="phone serial or host:port (implies --target android)")
    p.add_argument("--require", action="append", default=None, metavar="REQ",
                   help="requirement, repeatable: accuracy>=0.92, accuracy_drop<=1.0pt, latency_ms<=3, "
                        "energy_mj<=0.5, size_kb<=150, macs<=5M, params<=100k (default accuracy_drop<=1.0pt)")
    p.add_argument("--objective", choices=("netscore", "energy", "latency"), default="netscore")
    p.add_argument("--strategy", choices=("gensynth", "random", "width", "l1prune"), default="gensynth")
    p.add_argument("--budget", type=parse_budget, default=None, help="wall-time budget, e.g. 60m (default: none)")
    p.add_argument("--cycles", type=positive_int, default=None,
                   help="generator cycles (default 5); with --resume, extend the run to this many cycles")
    p.add_argument("--population", type=positive_int, default=8, help="candidates per cycle")
    p.add_argument("--prototype-epochs", type=positive_int, default=3)
    p.add_argument("--finetune-epochs", type=positive_int, default=2)
    p.add_argument("--train-samples", type=positive_int, default=None,
                   help="training images for the prototype (default: the whole training split)")
    p.add_argument("--finetune-samples", type=positive_int, default=20_000, help="training images for fine-tuning")
    p.add_argument("--eval-samples", type=positive_int, default=2_000, help="test images used during the search")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run folder (prototype, candidates, generator.json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    add_db_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.synthesis import SynthesisConfig, run_synthesis

    config = SynthesisConfig(
        prototype=args.prototype, prototype_width=args.prototype_width, dataset=args.data,
        data_path=args.data_path, target="android" if args.device else args.target, device=args.device,
        requirements=tuple(args.require or ("accuracy_drop<=1.0pt",)), objective=args.objective,
        strategy=args.strategy, cycles=args.cycles or 5, population=args.population, budget_s=args.budget,
        prototype_epochs=args.prototype_epochs, finetune_epochs=args.finetune_epochs,
        n_train=args.train_samples, finetune_n_train=args.finetune_samples, n_eval=args.eval_samples,
        threads=args.threads, seed=args.seed)
    result = run_synthesis(config, args.out, args.db, resume=args.resume,
                           cycles=args.cycles if args.resume else None)
    print(f"run {result.run_id} ({result.strategy}, {result.stopped}) in {result.wall_s:.0f} s: "
          f"{len(result.candidates)} candidates, {len(result.feasible)} meet {', '.join(config.requirements)}")
    print_candidates([result.prototype] + ([result.best] if result.best else []))
    if result.best is None:
        print("no candidate met the requirements")
    print(f"run folder {result.out_dir}; results in {result.db}; report: ferminet report --db {result.db} "
          f"--run {result.run_id} --out {result.out_dir}/report")
    return 0
