"""How the gap to the reference moves with the final training budget: chosen networks of a finished synthesis
benchmark and the reference (the prototype architecture), all given the same final recipe at several epoch counts.

Issue 10 asks for <= 1 pt at >= 10x fewer MACs, or, where the frontier at the benchmark's budget lies above that,
for the budget that would reach it. This script measures that: it reads a run folder of
``benchmarks/synthesis_fashion_mnist.py`` (its trained supernet, prototype and channel importance, same data split),
takes the named networks' architectures from the store, and for each epoch count E trains every network and the
reference with the loop's own final recipe (``toolkit.synthesis.finals.train_final``: supernet weights, E epochs on
the training split, final learning rate), converts to int8 and reads top-1 on the validation split and, once per
network and E, on the test split. Nothing is chosen here: the networks were chosen by the benchmark on validation.

    python benchmarks/final_budget.py --run bench-synth2/gensynth --db bench-synth2/bench.db \\
        --networks gensynth:final-c002-04 --epochs 3,6,12

Prints a table (MACs ratio, top-1, drop vs the reference trained for the same E) and writes
``benchmarks/results/final_budget.json`` (an existing one only with ``--force``, checked before any work).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import check_results_path, code_commit, command_line, run_main, write_record  # noqa: E402


def stored_choices(db: str, strategy: str, candidate_id: str) -> dict:
    """The decision choices of a network the synthesis benchmark stored (its store opened read only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # read only: the store is the benchmark's
    try:
        row = con.execute("SELECT extra_json FROM candidates WHERE strategy=? AND candidate_id=? AND status='ok'",
                          (strategy, candidate_id)).fetchone()
    finally:
        con.close()
    if row is None:
        from toolkit.errors import InvalidArgumentError

        raise InvalidArgumentError(f"no successful candidate {strategy}:{candidate_id} in {db}; pass "
                                   f"STRATEGY:CANDIDATE_ID of a network the benchmark stored")
    return json.loads(row[0])["choices"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _pt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}pt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a gensynth/random run folder of the synthesis benchmark")
    parser.add_argument("--db", required=True, help="the benchmark's store (read only)")
    parser.add_argument("--networks", required=True, help="comma-separated STRATEGY:CANDIDATE_ID")
    parser.add_argument("--epochs", default="3,6,12", help="comma-separated epoch counts")
    parser.add_argument("--train-samples", default=None,
                        help="final training on this many images ('all': the whole training split) instead of the "
                             "run's. The supernet then has seen some of the new validation images, so only test "
                             "top-1 is reported (validation is not independent of the weights)")
    parser.add_argument("--work", default="/tmp/final-budget", help="folder for the .tflite files")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "final_budget.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    args = parser.parse_args()
    results_path = check_results_path(args.results, args.force)
    if not all(e.strip().isdigit() and int(e) > 0 for e in args.epochs.split(",")):
        parser.error(f"--epochs takes positive integers separated by commas, e.g. 3,6,12. Received: {args.epochs!r}")
    if args.train_samples not in (None, "all") and not (args.train_samples.isdigit() and int(args.train_samples) > 0):
        parser.error(f"--train-samples takes a positive integer or 'all'. Received: {args.train_samples!r}")
    items = args.networks.split(",")
    for item in items:
        if item.count(":") != 1:
            parser.error(f"--networks takes STRATEGY:CANDIDATE_ID items, e.g. gensynth:final-c002-04. "
                         f"Received: {item!r}")

    import keras
    import numpy as np

    from toolkit.arch import count_macs
    from toolkit.convert import convert_model
    from toolkit.convert.interpreter import evaluate_tflite
    from toolkit.synthesis.assess import Context, report_on_test
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.evaluator import SupernetEvaluator
    from toolkit.synthesis.finals import train_final
    from toolkit.synthesis.loop import read_run_file
    from toolkit.synthesis.requirements import parse_requirements
    from toolkit.synthesis.supernet import Supernet
    from toolkit.arch import get_prototype

    run = Path(args.run)
    config = SynthesisConfig.from_dict(read_run_file(run)["config"])
    own_split = args.train_samples is None
    if not own_split:
        config = dataclasses.replace(config, n_train=None if args.train_samples == "all" else int(args.train_samples))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(config, work, parse_requirements(config.requirements))
    spec = get_prototype(config.prototype, ctx.test.input_shape, ctx.test.num_classes, config.prototype_width)
    ctx.space = config.space(spec)
    ctx.prototype_model = keras.models.load_model(run / "prototype.keras", compile=False)
    with np.load(run / "importance.npz") as npz:
        importance = {k: npz[k] for k in npz.files}
    supernet = Supernet.from_prototype(ctx.prototype_model, ctx.space, importance)
    supernet.load(run / "supernet")
    ctx.evaluator = SupernetEvaluator(supernet, ctx.recal_x)

    networks = [("reference", ctx.space.prototype_choices())]
    for item in items:
        strategy, cid = item.split(":")
        networks.append((item, stored_choices(args.db, strategy, cid)))
    epochs = [int(e) for e in args.epochs.split(",")]
    val = ctx.train_data  # its x_test/y_test are the validation split

    rows = []
    for e in epochs:
        ctx.config = dataclasses.replace(config, final_epochs=e)
        for name, choices in networks:
            t0 = time.perf_counter()
            model, _ = train_final(ctx, choices, f"budget_e{e}_{name.replace(':', '_')}")
            train_s = time.perf_counter() - t0
            path = work / f"e{e}_{name.replace(':', '_')}_int8.tflite"
            convert_model(model, ctx.search_data, path, mode="int8")
            row = {"network": name, "epochs": e, "macs": count_macs(model), "train_s": round(train_s, 1),
                   "val_top1": evaluate_tflite(path, val.x_test, val.y_test, num_threads=config.threads)
                   if own_split else None,
                   "test_top1": report_on_test(ctx, path)}
            rows.append(row)
            print(f"E={e:<3} {name:<28} {row['macs']:>11,} MACs  val {_pct(row['val_top1'])}  "
                  f"test {row['test_top1']:.2%}  ({train_s:.0f} s)", flush=True)

    ref = {r["epochs"]: r for r in rows if r["network"] == "reference"}
    print(f"\n{'E':>3} {'network':<28} {'MACs':>11} {'fewer':>6} {'val':>7} {'test':>7} {'val drop':>9} {'test drop':>9}")
    for r in rows:
        base = ref[r["epochs"]]
        r["macs_ratio"] = base["macs"] / r["macs"]
        r["val_drop_pt"] = (base["val_top1"] - r["val_top1"]) * 100 if own_split else None
        r["test_drop_pt"] = (base["test_top1"] - r["test_top1"]) * 100
        print(f"{r['epochs']:>3} {r['network']:<28} {r['macs']:>11,} {r['macs_ratio']:>5.1f}x {_pct(r['val_top1']):>7} "
              f"{r['test_top1']:>7.2%} {_pt(r['val_drop_pt']):>9} {r['test_drop_pt']:>8.2f}pt")
    write_record(results_path, {"git_commit": code_commit(), "command": command_line("final_budget.py"),
                                "run": str(run), "train_images": len(val.x_train),
                                "validation_independent": own_split,
                                "final_learning_rate": config.final_learning_rate, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
