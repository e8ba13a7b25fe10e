"""`ferminet synthesize`: learn a generator of networks that meet requirements measured on a target."""
from __future__ import annotations

import argparse
import logging
import re
import sys

from toolkit.cli._common import add_data_arguments, non_negative_int, positive_int

log = logging.getLogger(__name__)


def parse_budget(text: str) -> float:
    """'60m', '90s', '1.5h', '3600' -> seconds (> 0)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([smh]?)\s*", str(text))
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 60m, 90s or 1.5h. Received: {text!r}")
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the budget must be > 0. Received: {text!r}")
    return seconds


def _pct(value) -> str:
    return f"{value:.2%}" if value is not None else "-"


def print_candidates(rows, header: bool = True) -> None:
    """One line per network: validation top-1 (what decisions used) and, for reported networks, test top-1."""
    from toolkit.targets import energy_text

    if header:
        print(f"{'network':<15}{'phase':<10}{'spec':<14}{'val top-1':>10}{'test top-1':>11}{'MACs':>13}"
              f"{'params':>10}{'KB':>8}{'latency ms':>11}{'energy mJ':>11}  {'latency / energy source':<34}"
              f"{'U(val)':>7}  meets requirements")
    for c in rows:
        if c.status != "ok":
            print(f"{c.candidate_id:<15}{c.phase:<10}{c.spec_hash:<14}  failed: {c.failure_reason}")
            continue
        energy = energy_text(c.energy_mj, c.energy_below_resolution, c.energy_resolution_mj) \
            if c.energy_source else "n/a"
        if c.test_feasible is None:
            verdict = "yes (val)" if c.feasible else "no: " + (c.failure_reason or "")
        else:
            verdict = ("yes" if c.feasible else "no") + " (val), " + ("yes" if c.test_feasible else "no") + " (test)"
        print(f"{c.candidate_id:<15}{c.phase:<10}{c.spec_hash:<14}{_pct(c.int8_top1):>10}{_pct(c.test_top1):>11}"
              f"{c.macs:>13,}{c.params:>10,}{c.size_kb:>8.1f}{c.latency_ms:>11.3f}{energy:>11}  "
              f"{(c.latency_source or '?') + ' / ' + (c.energy_source or 'n/a'):<34}{c.score:>7.1f}  {verdict}")


# Options that define a run: on --resume they come from the run's run.json, so giving them is refused.
_RUN_DEFINING = ("prototype", "prototype_width", "data", "data_path", "target", "device", "devices", "require_on",
                 "require", "objective",
                 "strategy", "budget", "population", "prototype_epochs", "supernet_epochs", "supernet_from",
                 "final_k", "final_epochs", "final_lr", "resolutions", "separable", "space_root", "distill",
                 "no_reference_retrain", "reference_from",
                 "train_samples", "val_samples", "eval_samples", "threads", "seed", "data_seed", "predictor",
                 "measure_share", "refit_every", "elite", "shortlist", "shortlist_epochs", "shortlist_images")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synthesize", help="generative synthesis of networks meeting requirements",
        description="Train the prototype (on the training split minus a validation split), train it once more as a "
                    "weight-sharing supernet, then run generator-inquisitor cycles: sample networks, take their "
                    "weights from the supernet, convert to int8, evaluate on the validation split, measure on the "
                    "target, and update the generator toward networks that meet the requirements with the best U. "
                    "The best k get the prototype's training budget and are reported on the test split. "
                    "Baselines: --strategy random|width|l1prune.")
    p.add_argument("--prototype", default="resnet20",
                   help="resnet20 | mobilenetv2 | vgg_small | dsnet (default resnet20)")
    p.add_argument("--prototype-width", type=float, default=1.0, help="width multiplier of the prototype")
    add_data_arguments(p)
    p.add_argument("--target", choices=("host", "android"), default="host")
    p.add_argument("--device", action="append", default=None, metavar="SERIAL",
                   help="phone serial or host:port (implies --target android); repeat it for a phone farm: each "
                        "cycle's candidates are measured on the phones in parallel. With --executor ray: serials "
                        "of phones that `ferminet agent` registered in the cluster")
    p.add_argument("--devices", choices=("all",), default=None,
                   help="all: every phone the adb server (127.0.0.1:5037) lists, plus the --device addresses; with "
                        "--executor ray: every phone registered in the Ray cluster (also the default of --target "
                        "android there)")
    p.add_argument("--require-on", default=None, metavar="MODEL",
                   help="with phones of several device models: the model (e.g. 'Pixel 6') requirements and U are "
                        "judged on (default: the first phone's); every candidate is measured on each model and "
                        "stored with its provenance")
    p.add_argument("--require", action="append", default=None, metavar="REQ",
                   help="requirement, repeatable: accuracy>=0.92, accuracy_drop<=1.0pt, latency_ms<=3, "
                        "energy_mj<=0.5, size_kb<=150, macs<=5M, params<=100k; a cost bound with x is relative to "
                        "the run's prototype, e.g. energy_mj<=0.7x (default accuracy_drop<=1.0pt)")
    p.add_argument("--objective", choices=("netscore", "energy", "latency"), default="netscore")
    p.add_argument("--strategy", choices=("gensynth", "random", "width", "l1prune"), default="gensynth")
    p.add_argument("--elite", choices=("reward", "front"), default="reward",
                   help="gensynth: while fewer than 2 of a cycle meet the requirements, its elite is the least "
                        "violation (reward, default) or the cycle's Pareto layers over violation vs MACs (front)")
    p.add_argument("--budget", type=parse_budget, default=None,
                   help="wall-time budget of the search phase, e.g. 60m (default: none)")
    p.add_argument("--cycles", type=positive_int, default=None,
                   help="generator cycles (default 5; gensynth and random); with --resume, extend the run to this "
                        "many cycles")
    p.add_argument("--population", type=positive_int, default=None, help="candidates per cycle (default 8)")
    p.add_argument("--prototype-epochs", type=positive_int, default=3)
    p.add_argument("--supernet-epochs", type=non_negative_int, default=2,
                   help="epochs of weight-sharing training (sandwich rule); checkpointed each epoch (default 2)")
    p.add_argument("--supernet-from", default=None, metavar="RUN",
                   help="reuse the trained supernet of an earlier run with the same prototype and data")
    p.add_argument("--final-k", type=non_negative_int, default=3,
                   help="networks that get final training (default 3; 0: search only, finalize later with "
                        "`ferminet generate --finalize`)")
    p.add_argument("--shortlist", type=non_negative_int, default=0, metavar="N",
                   help="before the finals are chosen, fine-tune up to N search candidates (picked by the finals' "
                        "rule on their proxy) for --shortlist-epochs on --shortlist-images training images, judge "
                        "them again on validation (against the prototype architecture fine-tuned the same way) and "
                        "choose the finals among them (default 0: finals chosen on the proxy; N >= --final-k)")
    p.add_argument("--shortlist-epochs", type=positive_int, default=1, help="with --shortlist (default 1)")
    p.add_argument("--shortlist-images", type=positive_int, default=10_000,
                   help="with --shortlist: training images each shortlisted network is fine-tuned on (default 10000)")
    p.add_argument("--final-epochs", type=positive_int, default=None,
                   help="final-training epochs (default: --prototype-epochs, the prototype's budget)")
    p.add_argument("--final-lr", type=float, default=4e-3,
                   help="peak learning rate of final training, the reference's too (default 0.004)")
    p.add_argument("--resolutions", type=_fractions, default=(0.5, 0.625, 0.75, 0.875, 1.0),
                   help="input resolutions the search may choose, as fractions of the input side "
                        "(default 0.5,0.625,0.75,0.875,1; 1 = the input's own only)")
    p.add_argument("--separable", action="store_true",
                   help="experimental: the search may also replace a ResNet block's 3x3 convs by depthwise-separable "
                        "ones (3x3 depthwise + 1x1: 5.8x fewer MACs per conv at 16 channels, 7.9x at 64); the supernet "
                        "trains both forms. Measured worse than without it so far (README)")
    p.add_argument("--space-root", default=None, metavar="NAME",
                   help="derive the search space from this built-in architecture instead of the prototype (e.g. "
                        "dsnet: depthwise-separable, made for it): it is trained with the prototype's recipe and its "
                        "supernet is the evaluator; the prototype stays the reference that requirements, drops and "
                        "MAC ratios are judged against. gensynth and random only")
    p.add_argument("--distill", action=argparse.BooleanOptionalAction, default=True,
                   help="final training also learns the soft predictions of the reference the finals are judged "
                        "against (the stronger on validation of the prototype as trained and retrained); the "
                        "reference itself is trained without (default: on; --no-distill: labels only)")
    p.add_argument("--no-reference-retrain", action="store_true",
                   help="judge finals against the prototype as trained, without giving it the finals' training")
    p.add_argument("--reference-from", default=None, metavar="RUN",
                   help="judge finals against (and with --distill learn from) the reference an earlier run trained, "
                        "instead of training one: the same data and reference recipe (prototype, epochs, learning "
                        "rates, seed)")
    p.add_argument("--train-samples", type=positive_int, default=None,
                   help="training images (default: the whole training split)")
    p.add_argument("--val-samples", type=positive_int, default=5_000,
                   help="validation images carved from the training split (default 5000)")
    p.add_argument("--eval-samples", type=positive_int, default=None,
                   help="validation images each candidate is evaluated on (default: all)")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the generator's samples (default 0)")
    p.add_argument("--data-seed", type=int, default=None,
                   help="seed of the train/validation split (default: --seed); runs sharing a prototype or supernet "
                        "(--supernet-from) must share it")
    p.add_argument("--out", required=True, help="run folder (prototype, supernet, candidates, finals, generator.json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    p.add_argument("--executor", choices=("inprocess", "ray"), default="inprocess",
                   help="where search candidates are evaluated and finals trained: in this process (default), or "
                        "as Ray tasks on the cluster at --ray-address (pip install 'ferminet-toolkit[ray]'; the run "
                        "folder must be at the same path on every node). Measured on the workers' host, or with "
                        "--target android on the cluster's phones (`ferminet agent`); this process alone writes "
                        "the store")
    p.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="the Ray cluster's head for --executor ray (default: $RAY_ADDRESS, or this machine's cluster)")
    p.add_argument("--predictor", nargs="?", const="", default=None, metavar="FILE",
                   help="screen search candidates by predicted latency/energy and measure on the target only where it "
                        "matters: when the predicted latency/energy is within its uncertainty (1 sigma) of a bound that decides "
                        "feasibility (the other requirements hold), "
                        "when the candidate could enter the elite (the best --final-k feasible so far), and for a seeded "
                        "--measure-share of the rest; the others store the prediction, labelled predicted:<device>. "
                        "FILE: a predictor `ferminet predictor fit` saved; without FILE the run fits its own after "
                        "its first 5 measurements (prototype and search reference included). Refitted on measured "
                        "rows only, every --refit-every new ones. Phones of several device models: one predictor "
                        "per model (FILE is the --require-on model's). The prototype, reference and finals are always "
                        "measured. Counters (measurements saved, band misses) in RUN/screen.json")
    p.add_argument("--measure-share", type=_share, default=0.2,
                   help="with --predictor: share of the otherwise-predicted candidates measured anyway, chosen per "
                        "candidate from --seed (default 0.2)")
    p.add_argument("--refit-every", type=positive_int, default=4,
                   help="with --predictor: refit the predictor after this many new measurements (default 4)")
    p.add_argument("--db", default=None,
                   help="results store (default: ./ferminet.db; with --resume, the store the run recorded)")
    p.set_defaults(func=run, synthesize_parser=p)


def _executor(args: argparse.Namespace):
    """None (in-process), or a Ray executor connected to --ray-address (Ray is imported only then)."""
    if args.executor == "inprocess":
        if args.ray_address:
            from toolkit.errors import InvalidArgumentError

            raise InvalidArgumentError(f"--ray-address is for --executor ray. Received: --ray-address "
                                       f"{args.ray_address} with --executor inprocess")
        return None
    from toolkit.scale.tasks import get_executor

    return get_executor("ray", args.ray_address)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share in [0, 1], e.g. 0.2; got {text!r}")
    return value


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected fractions in (0, 1] separated by commas, e.g. 0.5,0.75,1; "
                                         f"got {text!r}")
    return values


def _given(args: argparse.Namespace) -> list[str]:
    """The run-defining options the user set (differing from their defaults)."""
    parser = args.synthesize_parser
    return [name for name in _RUN_DEFINING if getattr(args, name) != parser.get_default(name)]


def run(args: argparse.Namespace) -> int:
    from toolkit.errors import InvalidArgumentError
    from toolkit.synthesis import SynthesisConfig, run_synthesis
    from toolkit.synthesis.loop import RAY_HOST_SCREEN

    if args.resume:
        given = _given(args)
        if given:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise InvalidArgumentError(f"--resume continues the run as recorded in {args.out}/run.json; {flags} "
                                       f"would be ignored. Drop {flags} (only --cycles and --db apply to a resume)")
        result = run_synthesis(SynthesisConfig(), args.out, args.db, resume=True, cycles=args.cycles,
                               executor=_executor(args))
    else:
        if args.strategy in ("width", "l1prune") and (args.cycles is not None or args.population is not None):
            raise InvalidArgumentError(f"--strategy {args.strategy} evaluates one uniform network per width option; "
                                       f"it has no cycles or population. Drop --cycles/--population")
        if args.predictor is not None and args.executor == "ray" and not (
                args.device or args.devices or args.target == "android"):
            raise InvalidArgumentError(RAY_HOST_SCREEN)  # before connecting to the cluster; the loop checks it too
        if args.predictor is None and (args.measure_share != 0.2 or args.refit_every != 4):
            raise InvalidArgumentError("--measure-share and --refit-every apply to --predictor; add --predictor "
                                       "(optionally with a FILE) or drop them")
        executor = _executor(args)
        phones = list(args.device or [])
        if executor is not None and (args.devices == "all" or (args.target == "android" and not phones)):
            phones = executor.phone_serials()  # the phones the cluster's agents serve
        elif args.devices == "all":
            from toolkit.targets.farm import all_devices

            phones = all_devices(extra=phones)
        config = SynthesisConfig(
            prototype=args.prototype, prototype_width=args.prototype_width, dataset=args.data,
            data_path=args.data_path, target="android" if phones else args.target,
            device=phones[0] if phones else None, devices=tuple(phones) if len(phones) > 1 else (),
            require_on=args.require_on,
            requirements=tuple(args.require or ("accuracy_drop<=1.0pt",)), objective=args.objective,
            strategy=args.strategy, cycles=args.cycles or 5, population=args.population or 8, budget_s=args.budget,
            prototype_epochs=args.prototype_epochs, supernet_epochs=args.supernet_epochs,
            supernet_path=args.supernet_from, final_k=args.final_k, final_epochs=args.final_epochs,
            final_learning_rate=args.final_lr, resolution_options=args.resolutions, separable=args.separable,
            space_root=args.space_root,
            distill=args.distill, retrain_reference=not args.no_reference_retrain,
            reference_path=args.reference_from, n_train=args.train_samples,
            n_val=args.val_samples, n_eval=args.eval_samples, threads=args.threads, seed=args.seed,
            data_seed=args.data_seed, screen=args.predictor is not None, predictor_path=args.predictor or None,
            measure_share=args.measure_share, refit_every=args.refit_every, elite=args.elite,
            shortlist=args.shortlist, shortlist_epochs=args.shortlist_epochs, shortlist_images=args.shortlist_images)
        result = run_synthesis(config, args.out, args.db, executor=executor)
    print(f"run {result.run_id} ({result.strategy}, {result.stopped}) in {result.wall_s:.0f} s: "
          f"{len(result.candidates)} candidates searched, {len(result.feasible)} met the requirements on the "
          f"proxy (validation); {len(result.finals)} final-trained")
    from toolkit.synthesis.screen import read_summary

    screening = read_summary(result.out_dir)
    if screening is not None:
        print(screening.text())
    if result.shortlist:
        print(f"shortlist: {len(result.shortlist)} search candidates fine-tuned and judged again on validation; "
              f"the finals were chosen among them")
        print_candidates(result.shortlist)
    rows = [result.prototype] + ([result.reference] if result.reference else []) + list(result.finals)
    print_candidates(rows)
    if not result.finals:
        print(f"no network was final-trained; `ferminet generate {result.out_dir} --seeds 1-3 --finalize` "
              f"final-trains networks sampled from the learned generator")
    elif result.best is None:
        print("no final network met the requirements on the validation split")
    else:
        b = result.best
        print(f"best: {b.candidate_id} ({b.macs:,} MACs, {result.prototype.macs / b.macs:.1f}x fewer than the "
              f"prototype), test top-1 {_pct(b.test_top1)}; requirements on test: "
              f"{'met' if b.test_feasible else 'NOT met'}")
    print(f"run folder {result.out_dir}; results in {result.db}; report: ferminet report --db {result.db} "
          f"--run {result.run_id} --out {result.out_dir}/report", file=sys.stdout)
    return 0
