"""Synthesized networks vs the prototype and the baselines at equal budget, on Fashion-MNIST, host target.

One prototype (resnet20, trained on the training split minus a 5,000-image validation split) and one
weight-sharing supernet serve every strategy. Each strategy gets the same search wall-clock budget
(``--search-budget``) and the same final recipe for its best ``--final-k`` networks (the prototype's epochs and
data); everything is decided on the validation split and every reported top-1 is int8 on the full 10k test split,
read once per network. The reference accuracy is the stronger (on test, the conservative choice) of the prototype
as trained and the prototype architecture given the finals' extra training.

Prints one table per strategy and the targets of issue 10 (P1: >= 10x fewer MACs at <= 1.0 pt; P2: fewer MACs than
every baseline's best at equal or better accuracy; P5: >= 300 candidates per hour), Kendall's tau between the
search's proxy accuracy and final-trained accuracy, per-phase wall times; writes everything to
``benchmarks/results/synthesis_fashion_mnist.json`` (an existing one only with ``--force``, checked before the run
starts).

    python benchmarks/synthesis_fashion_mnist.py [--out bench-synth] [--search-budget 12m] ...

With ``--predictor [FILE]`` the search screens candidates by predicted latency/energy (see
:mod:`toolkit.synthesis.screen`) and each strategy prints its measurements saved and band misses.

With ``--space-root NAME`` gensynth and random search the space of that architecture (trained with the prototype's
recipe; its own supernet), while resnet20 stays the reference; width and l1prune still scale resnet20, width with a
supernet of its own over it. ``--final-epochs`` gives the finals (and the reference) more epochs than the prototype.
The reference is trained once, in gensynth's run; the other strategies' runs judge their finals against it
(``synthesize --reference-from``), and every strategy's finals learn from it (``--no-distill``: they do not).

``--strategies ...,gensynth-front`` adds gensynth with the "front" elite (``synthesize --elite front``) on gensynth's
prototype and supernet, at the same search budget and final recipe; P1 and P2 are printed for each gensynth.
``gensynth-reward`` is the same with the default elite: with ``--seed N`` and gensynth's run folder linked into a
new ``--out``, another draw of gensynth's search and final training on the same prototype and supernet, as random's
and gensynth-front's runs of that invocation are (``benchmarks/synthesis_draws.py`` tallies P2 over draws).

With ``--shortlist N`` the runs this invocation starts choose their finals among N search candidates fine-tuned and
judged again (``synthesize --shortlist N``); the table's proxy and Kendall's tau stay the search's proxy, and each
final's shortlist top-1 is in the results as ``shortlist_val_top1``.

Re-running with the same --out resumes every run (nothing finished is redone).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import (check_results_path, code_commit, command_line, kendall_tau, run_main,  # noqa: E402
                    write_record)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-synth")
    parser.add_argument("--db", default=None, help="store (default OUT/bench.db)")
    parser.add_argument("--prototype-epochs", type=int, default=3)
    parser.add_argument("--supernet-epochs", type=int, default=2)
    parser.add_argument("--train-samples", type=int, default=None, help="training images (default all 60k)")
    parser.add_argument("--val-samples", type=int, default=5_000)
    parser.add_argument("--eval-samples", type=int, default=2_000, help="validation images per search candidate")
    parser.add_argument("--search-budget", default="12m", help="search wall time per strategy, e.g. 12m")
    parser.add_argument("--cycles", type=int, default=30, help="gensynth/random cycles (the budget usually ends first)")
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--final-k", type=int, default=3, help="finals per strategy (default 3, as synthesize)")
    parser.add_argument("--require", action="append", default=None,
                        help="requirement (repeatable; default accuracy_drop<=1.0pt and macs<=3.1M, i.e. >= 10x fewer)")
    parser.add_argument("--strategies", default="gensynth,random,width,l1prune",
                        help="comma-separated; gensynth-ELITE (gensynth-front, gensynth-reward) is gensynth with "
                             "`synthesize --elite ELITE`, searching gensynth's supernet from gensynth's prototype (so "
                             "gensynth must come first): with --seed, another draw of the search on the same supernet")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "synthesis_fashion_mnist.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the runs this invocation starts (training, the generator's and random's samples); "
                             "a resumed run keeps its own. The train/validation split stays data seed 0")
    parser.add_argument("--predictor", nargs="?", const="", default=None, metavar="FILE",
                        help="screen search candidates by prediction (as `ferminet synthesize --predictor`); prints "
                             "the measurements saved and the band misses per strategy")
    parser.add_argument("--measure-share", type=float, default=0.2, help="with --predictor (default 0.2)")
    parser.add_argument("--separable", action="store_true",
                        help="the search space also holds depthwise-separable ResNet blocks (`synthesize --separable`)")
    parser.add_argument("--space-root", default=None, metavar="NAME",
                        help="gensynth and random search the space of this architecture (`synthesize --space-root`, "
                             "e.g. dsnet); width and l1prune still scale the prototype, width with a supernet of its "
                             "own over the prototype")
    parser.add_argument("--final-epochs", type=int, default=None,
                        help="final-training epochs (default: --prototype-epochs); the reference gets them too")
    parser.add_argument("--distill", action=argparse.BooleanOptionalAction, default=True,
                        help="every strategy's finals also learn the reference's soft predictions (synthesize "
                             "--distill, the default); the reference is trained once, without")
    parser.add_argument("--shortlist", type=int, default=0, metavar="N",
                        help="every strategy's finals are chosen among N search candidates fine-tuned and judged again "
                             "(`synthesize --shortlist N`, 1 epoch on 10,000 training images; default 0: none)")
    args = parser.parse_args()
    check_results_path(args.results, args.force)  # before any work

    from toolkit.cli.cmd_synthesize import parse_budget
    from toolkit.synthesis import SynthesisConfig, run_synthesis
    from toolkit.synthesis.screen import read_summary

    commit = code_commit()  # the code this run executes: the commit when it starts
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = Path(args.db or out / "bench.db")
    requirements = tuple(args.require or ("accuracy_drop<=1.0pt", "macs<=3.1M"))
    budget = parse_budget(args.search_budget)
    started = time.perf_counter()
    common = dict(prototype="resnet20", requirements=requirements, n_train=args.train_samples, n_val=args.val_samples,
                  n_eval=args.eval_samples, prototype_epochs=args.prototype_epochs,
                  supernet_epochs=args.supernet_epochs, final_k=args.final_k, budget_s=budget, data_seed=0, seed=args.seed,
                  separable=args.separable, final_epochs=args.final_epochs, shortlist=args.shortlist,
                  distill=args.distill)
    if args.predictor is not None:
        common.update(screen=True, predictor_path=args.predictor or None, measure_share=args.measure_share)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    results = {}
    first = out / "gensynth"
    for strategy in strategies:
        folder = out / strategy
        base, _, elite = strategy.partition("-")
        extra = {"elite": elite} if elite else {}
        if strategy != "gensynth":
            extra["prototype_path"] = str(first / "prototype.keras")
            extra["reference_path"] = str(first)  # the reference is trained once, in the gensynth run
            if base in ("gensynth", "random") or base == "width" and not args.space_root:
                extra["supernet_path"] = str(first)  # the same supernet (over the root, with --space-root)
        if base in ("gensynth", "random"):
            extra.update(cycles=args.cycles, population=args.population, space_root=args.space_root)
        config = SynthesisConfig(strategy=base, **common, **extra)
        resume = (folder / "run.json").exists()
        results[strategy] = run_synthesis(config, folder, db, resume=resume, progress=True)

    proto = results["gensynth"].prototype
    ref = results["gensynth"].reference
    reference_top1 = max(proto.test_top1, ref.test_top1) if ref else proto.test_top1
    print(f"\nprototype resnet20: {proto.macs:,} MACs, int8 test top-1 {proto.test_top1:.2%} as trained"
          + (f", {ref.test_top1:.2%} with the finals' extra training" if ref else "")
          + f"; reference {reference_top1:.2%}")
    side = proto.choices.get("resolution:input", 28)
    header = (f"{'strategy':<16}{'network':<18}{'res':>4}{'MACs':>12}{'x fewer':>8}{'params':>9}{'val top-1':>10}"
              f"{'test top-1':>11}{'drop pt':>8}{'proxy':>8}{'host ms':>9}{'mJ/inf':>9}  {'energy source':<15}"
              f"{'NetScore':>9}")
    print(header)
    summary = {}
    tau_proxy, tau_final = [], []
    per_supernet: dict[str, dict] = {}  # the run whose supernet gave the proxies -> its strategies and pairs
    for strategy, r in results.items():
        finals = []
        shortlist = {s.candidate_id: s for s in r.shortlist}
        for c in r.finals:
            if c.status != "ok":
                print(f"{strategy:<16}{c.candidate_id:<18}failed: {c.failure_reason}")
                continue
            # A final chosen through the shortlist holds its shortlisted parent's fine-tuned top-1 as proxy_top1;
            # that parent holds the search's proxy.
            shortlisted = shortlist.get(c.parent)
            if shortlisted is not None:
                c = dataclasses.replace(c, proxy_top1=shortlisted.proxy_top1)
            drop = (reference_top1 - c.test_top1) * 100
            resolution = c.choices.get("resolution:input", side)
            print(f"{strategy:<16}{c.candidate_id:<18}{resolution:>4}{c.macs:>12,}{proto.macs / c.macs:>8.1f}{c.params:>9,}"
                  f"{c.int8_top1:>10.2%}{c.test_top1:>11.2%}{drop:>8.2f}"
                  f"{(c.proxy_top1 if c.proxy_top1 is not None else float('nan')):>8.2%}{c.latency_ms:>9.3f}"
                  f"{(c.energy_mj if c.energy_mj is not None else float('nan')):>9.4f}  {c.energy_source or 'n/a':<15}"
                  f"{c.score:>9.2f}")
            finals.append({"candidate_id": c.candidate_id, "resolution": resolution, "macs": c.macs, "params": c.params, "val_top1": c.int8_top1,
                           "test_top1": c.test_top1, "proxy_val_top1": c.proxy_top1,
                           "shortlist_val_top1": shortlisted.int8_top1 if shortlisted else None,
                           "latency_ms": c.latency_ms,
                           "latency_source": c.latency_source, "energy_mj": c.energy_mj,
                           "energy_source": c.energy_source, "netscore": c.score, "drop_pt": drop,
                           "macs_ratio": proto.macs / c.macs, "meets_on_test": drop <= 1.0})
            if strategy != "l1prune" and c.proxy_top1 is not None:
                tau_proxy.append(c.proxy_top1)
                tau_final.append(c.int8_top1)
                owner = "width" if strategy == "width" and args.space_root else "gensynth"
                group = per_supernet.setdefault(owner, {"strategies": [], "proxy": [], "final": []})
                group["strategies"] += [strategy] if strategy not in group["strategies"] else []
                group["proxy"].append(c.proxy_top1)
                group["final"].append(c.int8_top1)
        searched = [c for c in r.candidates if c.status == "ok"]
        search_s = r.phase_seconds.get("search", 0.0)
        summary[strategy] = {"finals": finals, "candidates": len(r.candidates),
                             "candidates_ok": len(searched), "proxy_feasible": len(r.feasible),
                             "phase_seconds": r.phase_seconds, "stopped": r.stopped,
                             "candidates_per_hour": len(r.candidates) / search_s * 3600 if search_s else None}

        screening = read_summary(r.out_dir)
        summary[strategy]["screening"] = dataclasses.asdict(screening) if screening else None
        if screening is not None:
            print(f"{strategy:<16}{screening.text()}")
            print(f"{strategy:<16}measurements_saved={screening.predicted} measured={screening.measured} "
                  f"band_misses={screening.band_misses} band_checks={screening.checked_latency + screening.checked_energy}")

    tau = kendall_tau(tau_proxy, tau_final)
    per_hour = summary.get("gensynth", {}).get("candidates_per_hour")
    print(f"\nKendall tau (proxy top-1 vs final-trained top-1, validation, {len(tau_proxy)} sub-networks): "
          + (f"{tau:.3f} (target >= 0.5)" if tau is not None else "n/a"))
    tau_per_supernet = {}
    for owner, group in per_supernet.items():
        value = kendall_tau(group["proxy"], group["final"])
        tau_per_supernet[owner] = {"kendall_tau": value, "networks": len(group["proxy"]),
                                   "strategies": group["strategies"]}
        if len(per_supernet) > 1:
            print(f"  of which {owner}'s supernet ({', '.join(group['strategies'])}), {len(group['proxy'])} "
                  "sub-networks: " + (f"{value:.3f}" if value is not None else "n/a"))
    print("P5 candidates per hour in the gensynth search: " + (f"{per_hour:.0f} (target >= 300)" if per_hour else "n/a"))
    baselines = [s for s in strategies if not s.startswith("gensynth")]
    for synthesized in (s for s in strategies if s.startswith("gensynth")):
        summary[synthesized]["targets"] = print_targets(synthesized, summary, baselines)
    phase_seconds = {s: v["phase_seconds"] for s, v in summary.items()}
    print("phase seconds: " + "; ".join(f"{s}: " + ", ".join(f"{k} {v:.0f}" for k, v in p.items())
                                        for s, p in phase_seconds.items()))
    phases_total = sum(sum(p.values()) for p in phase_seconds.values())
    print(f"all phases {phases_total / 60:.1f} min (target <= 90 on 2 cores)")
    total = time.perf_counter() - started
    print(f"total {total:.0f} s in this invocation; store {db}")

    record = {"git_commit": commit,
              "command": command_line("synthesis_fashion_mnist.py"),
              "requirements": list(requirements), "space_root": args.space_root, "distill": args.distill,
              "prototype": {"macs": proto.macs, "params": proto.params, "test_top1": reference_top1,
                            "test_top1_as_trained": proto.test_top1,
                            "test_top1_retrained": ref.test_top1 if ref else None, "val_top1": proto.int8_top1},
              "strategies": summary, "candidates_per_hour": per_hour, "kendall_tau": tau,
              "kendall_tau_networks": len(tau_proxy), "kendall_tau_per_supernet": tau_per_supernet,
              "phase_seconds": phase_seconds, "phases_total_seconds": phases_total, "total_seconds": total}
    write_record(args.results, record)
    return 0


def print_targets(name: str, summary: dict, baselines: list[str]) -> dict:
    """P1 and P2 for one synthesizing strategy's finals; prints them and returns what it printed, as data."""
    finals = summary[name]["finals"]
    meeting = [f for f in finals if f["meets_on_test"]]
    best = min(meeting, key=lambda f: f["macs"]) if meeting else None
    if best:
        print(f"P1 {name}: best synthesized network meeting <= 1.0 pt on test: {best['candidate_id']}, "
              f"{best['macs_ratio']:.1f}x fewer MACs, {best['drop_pt']:+.2f} pt "
              f"(target >= 10x: {'MET' if best['macs_ratio'] >= 10 else 'MISSED'})")
    else:
        closest = min(finals, key=lambda f: f["drop_pt"], default=None)
        print(f"P1 {name} MISSED: no synthesized network within 1.0 pt on test"
              + (f"; closest {closest['candidate_id']}: {closest['drop_pt']:+.2f} pt at {closest['macs_ratio']:.1f}x"
                 if closest else ""))
    # P2 compares the network P1 found, else the final with the best validation top-1 (chosen on validation)
    contender = best or max(finals, key=lambda f: f["val_top1"], default=None)
    if contender and not best:
        print(f"P2 {name} with its best final on validation instead: {contender['candidate_id']}, "
              f"{contender['macs']:,} MACs, test {contender['test_top1']:.2%}")
    p2 = {}
    for strategy in baselines if contender else []:
        rivals = [f for f in summary[strategy]["finals"] if f["test_top1"] >= contender["test_top1"]]
        if not rivals:
            print(f"P2 {name} vs {strategy:<8}: no {strategy} network reaches {contender['test_top1']:.2%} on test")
            p2[strategy] = {"rival": None, "fewer_macs": True}
            continue
        rival = min(rivals, key=lambda f: f["macs"])
        fewer = contender["macs"] < rival["macs"]
        print(f"P2 {name} vs {strategy:<8}: synthesized has {'fewer' if fewer else 'NOT fewer'} MACs "
              f"({contender['macs']:,} vs {rival['macs']:,}) at {(contender['test_top1'] - rival['test_top1']) * 100:+.2f} pt")
        p2[strategy] = {"rival": rival["candidate_id"], "fewer_macs": fewer}
    return {"p1": best["candidate_id"] if best else None, "p2_network": contender["candidate_id"] if contender else None,
            "p2": p2}


if __name__ == "__main__":
    raise SystemExit(run_main(main))
