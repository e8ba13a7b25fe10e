"""P1 and P2 over several draws of the synthesis benchmark: the same settings, other ``--seed``.

One draw of ``benchmarks/synthesis_fashion_mnist.py`` decides P2 (the synthesized network has fewer MACs than every
baseline network at equal or better test top-1) on one final training of a handful of networks, and final training
alone moves a network of equal MACs by tenths of a point (``benchmarks/final_budget.py --seeds``). So a single draw
cannot separate two searches whose finals are that close. This script reads the results files of several draws
(same settings apart from ``--seed``, ``--out``, ``--db`` and ``--results``; ``--strategies`` may differ), reprints
each draw's P1 and P2 as the benchmark judged them, and adds the tally over draws (a run a draw linked in from
another draw, or made without the draw's ``--shortlist``, is shown but not counted) and, per strategy, the median MACs
of its smallest network within 1 pt on test. Then, pooled over the draws' finals, what the search's proxy says about
final top-1 beyond what MACs say (Kendall's tau of the residuals once both are fitted on log MACs): a search can
beat uniform sampling at equal MACs only through that. Nothing is trained or chosen here.

    python benchmarks/synthesis_draws.py benchmarks/results/synthesis_fashion_mnist.json \\
        benchmarks/results/synthesis_fashion_mnist_seed1.json --results benchmarks/results/synthesis_draws.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import (beyond_macs, check_results_path, code_commit, command_line, kendall_tau, per_doubling,  # noqa: E402
                    run_main, write_record)

PER_DRAW = ("--seed", "--out", "--db", "--results", "--strategies")  # what may differ between draws of one setting


def settings(command: str) -> tuple[int, str]:
    """(the draw's --seed, its command without the options that may differ between draws)."""
    words = command.split()
    seed, kept, skip = 0, [], False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        if name in PER_DRAW:
            value = word.split("=", 1)[1] if "=" in word else words[i + 1] if i + 1 < len(words) else ""
            skip = "=" not in word
            if name == "--seed":
                seed = int(value)
            continue
        kept.append(word)
    return seed, " ".join(kept)


def method(strategy: str) -> str:
    """The method a strategy draws: gensynth-reward is gensynth (the default elite) run on gensynth's supernet."""
    return "gensynth" if strategy == "gensynth-reward" else strategy


def made_with(settings_text: str, strategy: dict) -> bool:
    """Whether a strategy's run went through the phases the draw's settings ask for. A draw may link in a run made
    under other settings (a run without a shortlist in a draw with ``--shortlist``): it is not a draw of these."""
    return "--shortlist" not in settings_text.split() or "shortlist" in strategy.get("phase_seconds", {})


def smallest_within(finals: list[dict]) -> dict | None:
    """The final with the fewest MACs among those within the requirement on test, or None."""
    meeting = [f for f in finals if f["meets_on_test"]]
    return min(meeting, key=lambda f: f["macs"]) if meeting else None


def proxy_beyond_macs(draws, counted: set) -> dict:
    """What the search's proxy tells about final top-1 that MACs do not: over every distinct final with a proxy
    (the strategies searching gensynth's supernet) of the runs ``counted`` ((seed, strategy) pairs), Kendall's tau
    of proxy vs final, of log MACs vs final, and of the two residuals once each is fitted on log MACs (least
    squares, a constant per prototype); the residual sd of final top-1 and of the proxy (whether that spread is the
    network or the read: ``proxy_reread.py``); whether the finals' residuals on validation and on test agree (the
    network, not its training's luck); and final test top-1 per doubling of MACs."""
    import numpy as np

    seen, finals, groups, strategies = set(), [], [], []
    for _, seed, record in draws:
        for name, s in record["strategies"].items():
            # width has a supernet of its own, l1prune no proxy from a supernet
            if name in ("width", "l1prune") or (seed, name) not in counted:
                continue
            for f in s["finals"]:
                key = (f["macs"], f["proxy_val_top1"], f["val_top1"], f["test_top1"])
                if f["proxy_val_top1"] is not None and key not in seen:
                    seen.add(key)
                    finals.append(f)
                    groups.append(json.dumps(record["prototype"], sort_keys=True))  # draws on their own prototype
                    strategies += [name] if name not in strategies else []
    macs = [f["macs"] for f in finals]
    proxy = [f["proxy_val_top1"] for f in finals]
    residual = {split: beyond_macs(macs, [f[f"{split}_top1"] for f in finals], groups) for split in ("val", "test")}
    proxy_residual = beyond_macs(macs, proxy, groups)
    out = {"networks": len(finals), "prototypes": len(set(groups)), "strategies": strategies,
           "proxy_residual_sd_pt": float(np.std(proxy_residual, ddof=2) * 100),
           # at equal MACs, is a final's top-1 the network's (validation and test agree) or its training's luck?
           "final_val_vs_test_beyond_macs": kendall_tau(residual["val"], residual["test"]),
           "test_pt_per_doubling_macs": per_doubling(macs, [f["test_top1"] for f in finals], groups) * 100}
    for split in ("val", "test"):
        final = [f[f"{split}_top1"] for f in finals]
        out[split] = {"proxy": kendall_tau(proxy, final), "macs": kendall_tau(list(np.log(macs)), final),
                      "proxy_beyond_macs": kendall_tau(proxy_residual, residual[split]),
                      "residual_sd_pt": float(np.std(residual[split], ddof=2) * 100)}
    return out


def main() -> int:
    from toolkit.errors import InvalidArgumentError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("draws", nargs="+", help="results files of synthesis_fashion_mnist.py, one per draw")
    parser.add_argument("--baseline", default="random", help="the baseline P2 is tallied against (default: random)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "synthesis_draws.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    args = parser.parse_args()
    check_results_path(args.results, args.force)

    draws, common = [], None
    for path in args.draws:
        try:
            record = json.loads(Path(path).read_text())
            seed, rest = settings(record["command"])
            strategies, _ = record["strategies"], record["prototype"]  # the prototype: its draws' own constant
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidArgumentError(f"{path!r} is not a results file of synthesis_fashion_mnist.py "
                                       f"({type(exc).__name__}: {exc})") from None
        if common is None:
            common = rest
        elif rest != common:
            raise InvalidArgumentError(f"{path!r} ran other settings than {args.draws[0]!r}; draws differ only in "
                                       f"{', '.join(PER_DRAW)}. Received: {rest!r} vs {common!r}")
        if args.baseline not in strategies:
            raise InvalidArgumentError(f"{path!r} has no {args.baseline!r} strategy to tally P2 against; pass "
                                       f"--baseline with one of {', '.join(strategies)}")
        draws.append((path, seed, record))
    seeds = [seed for _, seed, _ in draws]
    if len(set(seeds)) != len(seeds):
        raise InvalidArgumentError(f"two results files are the same draw (--seed {seeds}); pass each draw once")

    prototype_macs = {seed: record["prototype"]["macs"] for _, seed, record in draws}
    print(f"{'seed':>4}  {'strategy':<16} {'smallest within 1 pt on test':<34} P2 vs {args.baseline}")
    rows, runs = [], {}
    for path, seed, record in sorted(draws, key=lambda d: d[1]):
        for name, s in record["strategies"].items():
            best = smallest_within(s["finals"])
            # A draw may resume another draw's run (its folder linked in): the same finals. Only a run made in its
            # own draw, with the draw's settings, counts, against the baseline run of that draw.
            first = runs.setdefault((name, json.dumps(s["finals"], sort_keys=True)), seed)
            own = first == seed and made_with(common, s)
            p2 = s.get("targets", {}).get("p2", {}).get(args.baseline)
            text = "n/a" if best is None else f"{best['candidate_id']} {best['macs']:>9,} ({best['drop_pt']:+.2f} pt)"
            verdict = "" if p2 is None else ("held" if p2["fewer_macs"] else f"missed (rival {p2['rival']})")
            again = ("" if own else f"  [the run of seed {first}, resumed: not counted]" if first != seed
                     else "  [a run linked in, made without the draw's --shortlist: not counted]")
            print(f"{seed:>4}  {name:<16} {text:<34} {verdict}{again}")
            rows.append({"file": path, "seed": seed, "strategy": name, "method": method(name),
                         "own_draw": own, "smallest_within": best, "p2_vs_baseline": p2,
                         "candidates_per_hour": s.get("candidates_per_hour")})
    own = [r for r in rows if r["own_draw"]]
    tally, medians, p1 = {}, {}, {}
    print()
    for name in dict.fromkeys(r["method"] for r in own):  # P1: >= 10x fewer MACs than the draw's prototype
        met = [r["seed"] for r in own if r["method"] == name and r["smallest_within"] is not None
               and r["smallest_within"]["macs"] * 10 <= prototype_macs[r["seed"]]]
        p1[name] = {"met": len(met), "draws": sum(r["method"] == name for r in own), "seeds": met}
        print(f"P1 {name}: a final with >= 10x fewer MACs than the prototype within 1 pt on test in {len(met)} of "
              f"{p1[name]['draws']} draws")
    rival_within = {r["seed"] for r in own if r["strategy"] == args.baseline and r["smallest_within"] is not None}
    for name in sorted({r["method"] for r in own if r["p2_vs_baseline"] is not None}):
        judged = [r for r in own if r["method"] == name and r["p2_vs_baseline"] is not None]
        held = [r["seed"] for r in judged if r["p2_vs_baseline"]["fewer_macs"]]
        contested = [s for s in held if s in rival_within]  # the baseline also had a final within 1 pt
        tally[name] = {"held": len(held), "draws": len(judged), "held_with_baseline_within": len(contested)}
        print(f"P2 {name} vs {args.baseline}: held in {len(held)} of {len(judged)} draws; in {len(contested)} of "
              f"them {args.baseline} also had a final within 1 pt (elsewhere it had none as accurate)")
    for name in dict.fromkeys(r["method"] for r in own):
        macs = [r["smallest_within"]["macs"] if r["smallest_within"] else None for r in own if r["method"] == name]
        found = [m for m in macs if m is not None]
        medians[name] = {"median_macs": statistics.median(found) if found else None, "runs_with_one": len(found),
                         "runs": len(macs)}
        median = "none" if not found else f"{statistics.median(found):,.0f}"
        print(f"median MACs of {name}'s smallest network within 1 pt on test: {median} "
              f"({len(found)} of its {len(macs)} draws have one)")
    proxy = proxy_beyond_macs(draws, {(r["seed"], r["strategy"]) for r in own})
    print(f"\nproxy vs final top-1 over the {proxy['networks']} distinct finals with a proxy from "
          f"{', '.join(proxy['strategies'])} (pooled over draws):")
    for split in ("val", "test"):
        t = proxy[split]
        print(f"  {split:<4}: Kendall tau proxy {t['proxy']:.3f}, log MACs alone {t['macs']:.3f}; after log MACs "
              f"(residuals of both) {t['proxy_beyond_macs']:.3f}; residual sd of final top-1 "
              f"{t['residual_sd_pt']:.2f} pt")
    print(f"  the proxy's own spread at equal MACs (its residual sd after log MACs): "
          f"{proxy['proxy_residual_sd_pt']:.2f} pt")
    print(f"  final top-1 at equal MACs, validation vs test (residuals after log MACs): Kendall tau "
          f"{proxy['final_val_vs_test_beyond_macs']:.3f}; a doubling of MACs adds "
          f"{proxy['test_pt_per_doubling_macs']:.2f} pt on test (a constant per prototype: {proxy['prototypes']})")
    write_record(args.results, {"git_commit": code_commit(), "command": command_line("synthesis_draws.py"),
                                "settings": common, "seeds": sorted(seeds), "baseline": args.baseline,
                                "rows": rows, "p1_tally": p1, "p2_tally": tally, "smallest_within_median": medians,
                                "proxy_beyond_macs": proxy})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
