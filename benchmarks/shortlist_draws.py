"""Does the shortlist (``synthesize --shortlist N``) change P1 and P2? The synthesis benchmark's finished draws, their
finals chosen again through a shortlist.

``benchmarks/synthesis_draws.py`` found that the search's proxy says nothing about final top-1 beyond MACs, and
``proxy_reread.py`` that a 1-epoch fine-tune says a little. This script takes finished runs of
``benchmarks/synthesis_fashion_mnist.py`` (their search exactly as stored: same candidates, same proxy numbers) and
does what a run with ``--shortlist N`` does after its search, with the toolkit's own code
(:func:`toolkit.synthesis.shortlist.run_shortlist`, :func:`toolkit.synthesis.finals.choose_finals`, ``run_final``):
up to N candidates picked by the finals' rule are fine-tuned and judged again on validation, the finals are chosen
among them and final-trained with the run's recipe and seed, then read once on test. A final whose search candidate
the run had already final-trained is not trained again: the recipe is deterministic (same weights, data order and
seed; ``final_budget.py --seeds 0`` reproduced stored finals exactly), so its stored row is used and marked
``reused``. Drops are judged as the benchmark judges them: against the stronger of the prototype as trained and the
reference the draws' gensynth run trained (the other runs share its prototype and train none).

Every run is given as ``SEED:STRATEGY=FOLDER`` (STRATEGY as the benchmark names it: gensynth, gensynth-front,
gensynth-reward, random). For each draw (seed) P1 and P2 are judged as the benchmark judges them
(``synthesis_fashion_mnist.print_targets``), before (the stored finals) and after (the shortlist's), then tallied
over draws as ``synthesis_draws.py`` does (gensynth-reward counts as gensynth).

    python benchmarks/shortlist_draws.py --db /work/bench-res2/bench.db --shortlist 12 \\
        0:gensynth=/work/bench-res2/gensynth 0:random=/work/bench-res2/random ...

Nothing is written to the runs' folders or store: new rows go to ``--out-db``, files under ``--work`` (one folder per
run, with the run's summary as JSON, so a killed invocation resumes where it stopped). Writes
``benchmarks/results/shortlist_draws.json`` (an existing one only with ``--force``, checked before any work).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from record import (beyond_macs, check_results_path, claim_work_folder, code_commit,  # noqa: E402
                    command_line, kendall_tau, run_main, write_record)


def parse_run(text: str) -> tuple[int, str, Path]:
    from toolkit.errors import InvalidArgumentError

    try:
        head, folder = text.split("=", 1)
        seed, strategy = head.split(":", 1)
        return int(seed), strategy, Path(folder)
    except ValueError:
        raise InvalidArgumentError(f"Cannot parse run {text!r}; write SEED:STRATEGY=FOLDER, e.g. "
                                   f"0:gensynth=/work/bench-res2/gensynth") from None


def final_entry(c, proto_macs: int, **more) -> dict:
    """A final as the benchmark's results file lists it (``judge`` adds the drop), plus ``more``."""
    return {"candidate_id": c.candidate_id, "macs": c.macs, "params": c.params, "val_top1": c.int8_top1,
            "test_top1": c.test_top1, "macs_ratio": proto_macs / c.macs, "latency_ms": c.latency_ms,
            "latency_source": c.latency_source, "energy_mj": c.energy_mj, "energy_source": c.energy_source, **more}


def judge(finals: list[dict], reference_test: float) -> list[dict]:
    """The keys print_targets reads: the drop on test against the benchmark's reference and the 1-pt verdict."""
    return [{**f, "drop_pt": (reference_test - f["test_top1"]) * 100,
             "meets_on_test": (reference_test - f["test_top1"]) * 100 <= 1.0} for f in finals]


def refinalize(seed: int, strategy: str, run: Path, db: str, out_db: str, work: Path, settings: dict) -> dict:
    """One run's finals chosen again through a shortlist (see the module docstring); its summary."""
    from toolkit.errors import InvalidArgumentError
    from toolkit.store import Store
    from toolkit.synthesis.assess import Context, candidate_from_row, write_candidate
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.finals import choose_finals, final_id, run_final, run_reference
    from toolkit.synthesis.generate import open_finished_run
    from toolkit.synthesis.loop import RunLock, read_run_file
    from toolkit.synthesis.requirements import parse_requirements
    from toolkit.synthesis.shortlist import run_shortlist

    started = time.perf_counter()
    saved = read_run_file(run)
    config = dataclasses.replace(SynthesisConfig.from_dict(saved["config"]), **settings)
    ctx = Context(config, run, parse_requirements(config.requirements))
    with RunLock(run), Store(db) as src:
        proto, done = open_finished_run(ctx, src, saved["run_id"])
        proto, _ = run_reference(ctx, src, saved["run_id"], done, proto)  # both stored: nothing written
    search = [candidate_from_row(r) for r in done.values() if (r["phase"] or "search") == "search" and r["cycle"] >= 0]
    stored = [candidate_from_row(r) for r in done.values() if r["phase"] == "final"]
    again = [f"final-{c.candidate_id}" for c in choose_finals(search, config.final_k)]
    if sorted(again) != sorted(c.candidate_id for c in stored):
        raise InvalidArgumentError(f"{str(run)!r}: its stored finals {[c.candidate_id for c in stored]} are not what "
                                   f"the finals' rule picks from its search today ({again}); the code changed since "
                                   f"the run, so its search cannot stand for a run with --shortlist")
    ref = ctx.final_reference
    ctx.out = work  # the new shortlist and finals files go here, never into the run's folder
    with Store(out_db) as dst:
        rid = dst.start_run("shortlist-refinalize", command=command_line("shortlist_draws.py"),
                            options={"source_run": saved["run_id"], "source_folder": str(run), **settings})
        pool = run_shortlist(ctx, dst, rid, {}, search, proto)
        finals = []
        for parent in choose_finals(pool, config.final_k):
            fid = final_id(parent)
            if fid in done:
                c, reused = candidate_from_row(done[fid]), True
            else:
                c, rows = run_final(ctx, parent)
                write_candidate(dst, rid, c, ctx.space.apply(parent.choices).to_json(), rows)
                reused = False
            finals.append(final_entry(c, proto.macs, reused=reused, shortlist_val_top1=parent.int8_top1,
                                      proxy_val_top1=parent.proxy_top1))
        dst.finish_run(rid)
    return {"seed": seed, "strategy": strategy, "folder": str(run), "run_id": saved["run_id"],
            "reference_test_top1": ref.test_top1, "prototype_macs": proto.macs,
            "before": [final_entry(c, proto.macs, proxy_val_top1=c.proxy_top1) for c in stored],
            "shortlist": [{"candidate_id": c.candidate_id, "macs": c.macs, "proxy_val_top1": c.proxy_top1,
                           "shortlist_val_top1": c.int8_top1, "feasible": c.feasible}
                          for c in pool if c.status == "ok"],
            "after": finals, "seconds": time.perf_counter() - started}


def main() -> int:
    import numpy as np

    from synthesis_draws import method, smallest_within
    from synthesis_fashion_mnist import print_targets
    from toolkit.errors import InvalidArgumentError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="SEED:STRATEGY=FOLDER", help="finished benchmark runs")
    parser.add_argument("--db", required=True, help="the benchmark's store the runs wrote (read)")
    parser.add_argument("--shortlist", type=int, default=12)
    parser.add_argument("--shortlist-epochs", type=int, default=1)
    parser.add_argument("--shortlist-images", type=int, default=10_000)
    parser.add_argument("--baseline", default="random")
    parser.add_argument("--work", default="/tmp/shortlist-draws",
                        help="new files and per-run summaries: a new or empty folder, or one this script made before")
    parser.add_argument("--out-db", default=None, help="store for the new rows (default: WORK/shortlist.db)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "shortlist_draws.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    args = parser.parse_args()
    results_path = check_results_path(args.results, args.force)
    settings = {"shortlist": args.shortlist, "shortlist_epochs": args.shortlist_epochs,
                "shortlist_images": args.shortlist_images}
    runs = [parse_run(text) for text in args.runs]
    if not any(s == "gensynth" for _, s, _ in runs):
        raise InvalidArgumentError("the draws' reference was trained by the benchmark's gensynth run; add "
                                   "0:gensynth=FOLDER (the other runs judge against the prototype as trained)")
    if not any(s == args.baseline for _, s, _ in runs):
        raise InvalidArgumentError(f"no {args.baseline!r} run to judge P2 against; add SEED:{args.baseline}=FOLDER")
    for _, _, folder in runs:
        if not (folder / "run.json").is_file():
            raise InvalidArgumentError(f"{str(folder)!r} holds no synthesis run (no run.json)")
    work = claim_work_folder(args.work, "shortlist_draws.py")
    out_db = args.out_db or str(work / "shortlist.db")
    started = time.perf_counter()
    summaries = []
    for seed, strategy, folder in runs:
        folder_work = work / f"seed{seed}-{strategy}"
        cached = folder_work / "summary.json"
        if cached.is_file() and json.loads(cached.read_text()).get("settings") == settings:
            summary = json.loads(cached.read_text())  # a killed invocation's finished run
        else:
            folder_work.mkdir(parents=True, exist_ok=True)
            summary = {**refinalize(seed, strategy, folder, args.db, out_db, folder_work, settings),
                       "settings": settings}
            cached.write_text(json.dumps(summary, indent=1))
            print(f"seed {seed} {strategy}: done in {summary['seconds']:.0f} s", flush=True)
        summaries.append(summary)
    # As the benchmark: the stronger of the prototype as trained and the reference its gensynth run trained (the
    # other runs share that prototype and train no reference of their own).
    reference = max(s["reference_test_top1"] for s in summaries)
    print(f"reference: {reference:.2%} on test")
    for summary in summaries:
        for label in ("before", "after"):
            summary[label] = judge(summary[label], reference)
        print(f"seed {summary['seed']} {summary['strategy']}: shortlist of {len(summary['shortlist'])} in "
              f"{summary['seconds']:.0f} s")
        for label in ("before", "after"):
            for f in summary[label]:
                extra = "" if label == "before" else \
                    f" shortlist {f['shortlist_val_top1']:.2%}" + (" (reused)" if f["reused"] else "")
                print(f"  {label:<6} {f['candidate_id']:<16}{f['macs']:>11,} {f['macs_ratio']:>5.1f}x proxy "
                      f"{f['proxy_val_top1']:.2%}{extra} val {f['val_top1']:.2%} test {f['test_top1']:.2%} "
                      f"drop {f['drop_pt']:+.2f}", flush=True)

    verdicts: dict[str, dict[str, list]] = {"before": {}, "after": {}}
    smallest: dict[str, dict[str, list]] = {"before": {}, "after": {}}
    per_draw = []
    for seed in sorted({s["seed"] for s in summaries}):
        draw = {s["strategy"]: s for s in summaries if s["seed"] == seed}
        for label in ("before", "after"):
            print(f"\nseed {seed}, finals {label} the shortlist:")
            table = {name: {"finals": s[label]} for name, s in draw.items()}
            for name in draw:
                best = smallest_within(table[name]["finals"])
                smallest[label].setdefault(method(name), []).append(best["macs"] if best else None)
            if args.baseline not in draw:
                continue
            for name in (n for n in draw if n.startswith("gensynth")):
                targets = print_targets(name, table, [args.baseline])
                held = targets["p2"].get(args.baseline, {}).get("fewer_macs")
                if held is not None:
                    verdicts[label].setdefault(method(name), []).append(held)
                per_draw.append({"seed": seed, "finals": label, "strategy": name, "targets": targets})
    print()
    tally, medians = {}, {}
    for label in ("before", "after"):
        for name, held in verdicts[label].items():
            tally.setdefault(label, {})[name] = {"held": sum(held), "draws": len(held)}
            print(f"P2 {name} vs {args.baseline}, finals {label} the shortlist: held in {sum(held)} of {len(held)} "
                  f"draws")
        for name, macs in smallest[label].items():
            found = [m for m in macs if m is not None]
            medians.setdefault(label, {})[name] = {"median_macs": statistics.median(found) if found else None,
                                                   "runs_with_one": len(found), "runs": len(macs)}
            print(f"  median MACs of {name}'s smallest final within 1 pt on test ({label}): "
                  + (f"{statistics.median(found):,.0f}" if found else "none") + f" ({len(found)} of {len(macs)})")
    # Pooled over the new finals of every run: does the shortlist's number say more than the proxy, beyond MACs?
    seen, pooled = set(), []
    for s in summaries:
        for f in s["after"]:
            key = (f["macs"], f["test_top1"], f["shortlist_val_top1"])
            if key not in seen:
                seen.add(key)
                pooled.append(f)
    macs, test = [f["macs"] for f in pooled], [f["test_top1"] for f in pooled]
    taus = {"networks": len(pooled), "macs": kendall_tau(list(np.log(macs)), test)}
    for key in ("proxy_val_top1", "shortlist_val_top1"):
        values = [f[key] for f in pooled]
        taus[key] = {"tau": kendall_tau(values, test),
                     "beyond_macs": kendall_tau(beyond_macs(macs, values), beyond_macs(macs, test))}
    print(f"over the {len(pooled)} distinct new finals, Kendall tau vs final test top-1: log MACs {taus['macs']:.3f}; "
          f"proxy {taus['proxy_val_top1']['tau']:.3f} (beyond MACs {taus['proxy_val_top1']['beyond_macs']:.3f}); "
          f"shortlist {taus['shortlist_val_top1']['tau']:.3f} "
          f"(beyond MACs {taus['shortlist_val_top1']['beyond_macs']:.3f})")
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s in this invocation")
    write_record(results_path, {"git_commit": code_commit(), "command": command_line("shortlist_draws.py"),
                                "settings": settings, "baseline": args.baseline, "reference_test_top1": reference,
                                "runs": summaries,
                                "per_draw": per_draw, "p2_tally": tally, "smallest_within_median": medians,
                                "kendall_tau": taus, "seconds": seconds})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
