"""Is the search's proxy noise? The finals of the synthesis benchmark's draws, their proxy read again on other images.

A search candidate's proxy is its int8 top-1, weights from the supernet, on the first ``n_eval`` validation images
(the benchmark's ``--eval-samples``, 2,000). The finals were chosen on that number, so on those images their proxy
holds the luck of the read as well as the network. This script takes every final in the store that has a proxy from
the run's supernet (the runs of ``gensynth`` and ``random`` strategies: gensynth, gensynth-front, gensynth-reward
and random of every draw), builds its proxy again exactly as the search did (weights from the supernet, batch-norm
statistics re-estimated, int8) and reads it on the validation images the search did not use. Then, against final
top-1 on test: Kendall's tau of the stored proxy, of the re-read one, and of log MACs, and of each proxy's residual
once both it and final top-1 are fitted on log MACs (what the proxy says beyond MACs); and how well the two reads'
residuals agree (a property of the network if they do, the luck of the read if not). The stored proxy is read again
on its own images as a check that the rebuild is the search's. With ``--finetune-epochs E`` each rebuilt network is
also fine-tuned E epochs on ``--finetune-images`` training images (the shortlist's evaluator,
``toolkit.synthesis.shortlist.fine_tune``) and read on the same other images: a candidate evaluator, judged by the
same residual tau. Nothing is chosen here.

    python benchmarks/proxy_reread.py --run /work/bench-res2/gensynth --db /work/bench-res2/bench.db

Writes ``benchmarks/results/proxy_reread.json`` (an existing one only with ``--force``, checked before any work).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import (beyond_macs, check_results_path, claim_work_folder, code_commit,  # noqa: E402
                    command_line, kendall_tau, run_main, write_record)


def stored_finals(store, run_id: str, folder: Path) -> list[dict]:
    """Every final of a synthesis run in ``store`` whose proxy came from the supernet of run ``run_id`` in
    ``folder`` (that run, and the runs whose ``supernet_path`` is that folder, through a link or not), one per
    architecture and test top-1 (a draw that resumed another's run repeats its rows), with its search proxy (for a
    final chosen through the shortlist, its shortlisted parent's)."""
    def reuses(options_json: str | None) -> bool:
        path = json.loads(options_json or "{}").get("supernet_path")
        return bool(path) and Path(path).resolve() == folder.resolve()

    runs = [r["run_id"] for r in store.query("SELECT run_id, options_json FROM runs WHERE kind='synthesis'")
            if r["run_id"] == run_id or reuses(r["options_json"])]
    seen, finals = set(), []
    for rid in runs:
        # A final chosen through the shortlist keeps its shortlist row's top-1 as proxy_top1; the search's proxy
        # is the one that shortlist row keeps
        for row in store.query("SELECT f.candidate_id, f.strategy, f.spec_hash, f.macs, f.test_top1, f.extra_json, "
                               "COALESCE(s.proxy_top1, f.proxy_top1) AS proxy_top1 FROM candidates f "
                               "LEFT JOIN candidates s ON s.run_id=f.run_id AND s.candidate_id=f.parent "
                               "AND s.phase='shortlist' WHERE f.run_id=? AND f.phase='final' AND f.status='ok' "
                               "AND f.proxy_top1 IS NOT NULL", (rid,)):
            key = (row["spec_hash"], row["test_top1"])
            if key not in seen:
                seen.add(key)
                finals.append({"run_id": rid, "candidate_id": row["candidate_id"], "strategy": row["strategy"],
                               "macs": row["macs"], "proxy_stored": row["proxy_top1"], "test_top1": row["test_top1"],
                               "choices": json.loads(row["extra_json"])["choices"]})
    return finals


def main() -> int:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the gensynth run folder whose supernet the draws searched")
    parser.add_argument("--db", required=True, help="the benchmark's store (read: nothing is written to it)")
    parser.add_argument("--finetune-epochs", type=int, default=0,
                        help="also fine-tune each rebuilt network this many epochs (the final recipe's learning rate) "
                             "on --finetune-images training images and read it on the same other images: a candidate "
                             "evaluator (default 0: off)")
    parser.add_argument("--finetune-images", type=int, default=10_000)
    parser.add_argument("--work", default="/tmp/proxy-reread",
                        help="folder for the .tflite files: a new or empty folder, or one this script made before")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "proxy_reread.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    args = parser.parse_args()
    results_path = check_results_path(args.results, args.force)
    if args.finetune_epochs < 0 or args.finetune_images < 1:
        parser.error(f"--finetune-epochs must be >= 0 and --finetune-images >= 1. Received: {args.finetune_epochs}, "
                     f"{args.finetune_images}")

    from toolkit.convert.interpreter import evaluate_tflite
    from toolkit.convert import convert_model
    from toolkit.errors import InvalidArgumentError
    from toolkit.store import Store
    from toolkit.synthesis.assess import Context
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.generate import open_finished_run
    from toolkit.synthesis.loop import RunLock, read_run_file
    from toolkit.synthesis.requirements import parse_requirements
    from toolkit.synthesis.shortlist import fine_tune

    run = Path(args.run)
    saved = read_run_file(run)
    config = SynthesisConfig.from_dict(saved["config"])
    if args.finetune_epochs:  # the shortlist's evaluator (synthesize --shortlist), with these settings
        config = dataclasses.replace(config, shortlist_epochs=args.finetune_epochs,
                                     shortlist_images=args.finetune_images)
    if config.n_eval is None:
        raise InvalidArgumentError(f"the run in {str(run)!r} read its proxy on every validation image (no n_eval): "
                                   f"there are no other images to read it on")
    work = claim_work_folder(args.work, "proxy_reread.py")
    ctx = Context(config, run, parse_requirements(config.requirements))
    started = time.perf_counter()
    with RunLock(run), Store(args.db) as store:
        open_finished_run(ctx, store, saved["run_id"])
        finals = stored_finals(store, saved["run_id"], run)
    if len(finals) < 3:
        raise InvalidArgumentError(f"only {len(finals)} finals with a proxy from {saved['run_id']}'s supernet in "
                                   f"{args.db}; pass the store the benchmark's draws wrote")
    val = ctx.train_data  # x_test: the whole validation split; the search read its first n_eval images
    n = len(ctx.search_data.x_test)
    print(f"{len(finals)} finals; proxy read on validation images 1-{n} (the search's) and {n + 1}-{len(val.x_test)}")
    print(f"{'run':<34}{'final':<16}{'MACs':>11}{'stored':>8}{'again':>8}{'others':>8}"
          + (f"{'tuned':>8}" if args.finetune_epochs else "") + f"{'test':>8}")
    for f in finals:
        model, _ = ctx.evaluator.proxy(f["choices"], name=f"reread_{f['candidate_id']}")
        path = work / f"{f['run_id']}_{f['candidate_id']}_int8.tflite"
        convert_model(model, ctx.search_data, path, mode="int8")  # calibrated as the search's was
        f["proxy_again"] = evaluate_tflite(path, val.x_test[:n], val.y_test[:n], num_threads=config.threads)
        f["proxy_others"] = evaluate_tflite(path, val.x_test[n:], val.y_test[n:], num_threads=config.threads)
        if args.finetune_epochs:
            t0 = time.perf_counter()
            fine_tune(ctx, model)
            tuned = work / f"{f['run_id']}_{f['candidate_id']}_tuned_int8.tflite"
            convert_model(model, ctx.search_data, tuned, mode="int8")
            f["finetuned_others"] = evaluate_tflite(tuned, val.x_test[n:], val.y_test[n:], num_threads=config.threads)
            f["finetune_s"] = time.perf_counter() - t0
        print(f"{f['run_id']:<34}{f['candidate_id']:<16}{f['macs']:>11,}{f['proxy_stored']:>8.2%}"
              f"{f['proxy_again']:>8.2%}{f['proxy_others']:>8.2%}"
              + (f"{f['finetuned_others']:>8.2%}" if args.finetune_epochs else "") + f"{f['test_top1']:>8.2%}",
              flush=True)

    macs = [f["macs"] for f in finals]
    test = [f["test_top1"] for f in finals]
    taus = {"macs": kendall_tau(list(np.log(macs)), test)}
    for key in ("proxy_stored", "proxy_others") + (("finetuned_others",) if args.finetune_epochs else ()):
        values = [f[key] for f in finals]
        taus[key] = {"tau": kendall_tau(values, test),
                     "beyond_macs": kendall_tau(beyond_macs(macs, values), beyond_macs(macs, test)),
                     "residual_sd_pt": float(np.std(beyond_macs(macs, values), ddof=2) * 100)}
    # Is the proxy at equal MACs a property of the network or the luck of the read? Its residuals on the two image
    # sets agree in the first case.
    taus["reads_agree_beyond_macs"] = kendall_tau(beyond_macs(macs, [f["proxy_stored"] for f in finals]),
                                                  beyond_macs(macs, [f["proxy_others"] for f in finals]))
    same = sum(abs(f["proxy_again"] - f["proxy_stored"]) < 1e-9 for f in finals)
    print(f"\nrebuild check: {same} of {len(finals)} proxies read again on the search's images equal the stored ones")
    print(f"Kendall tau vs final test top-1 over {len(finals)} finals: log MACs {taus['macs']:.3f}")
    labels = [("proxy_stored", f"stored proxy (images 1-{n})"),
              ("proxy_others", f"proxy on images {n + 1}-{len(val.x_test)}")]
    if args.finetune_epochs:
        labels.append(("finetuned_others", f"{args.finetune_epochs}-epoch fine-tune, same images"))
    for key, label in labels:
        t = taus[key]
        print(f"  {label:<34}: tau {t['tau']:.3f}, beyond log MACs {t['beyond_macs']:.3f}, "
              f"its residual sd {t['residual_sd_pt']:.2f} pt")
    print(f"  the two reads' residuals after log MACs agree at tau {taus['reads_agree_beyond_macs']:.3f}")
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s")
    write_record(results_path, {"git_commit": code_commit(), "command": command_line("proxy_reread.py"),
                                "run": str(run), "search_images": n, "other_images": len(val.x_test) - n,
                                "finetune_epochs": args.finetune_epochs,
                                "finetune_images": len(ctx.shortlist_data.x_train) if args.finetune_epochs else None,
                                "rebuilt_equal": same, "finals": [{k: v for k, v in f.items() if k != "choices"}
                                                                  for f in finals],
                                "kendall_tau": taus, "seconds": seconds})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
