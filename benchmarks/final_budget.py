"""How the gap to the reference moves with the final training budget: chosen networks of a finished synthesis
benchmark and the reference (the prototype architecture), all given the same final recipe at several epoch counts.

Issue 10 asks for <= 1 pt at >= 10x fewer MACs, or, where the frontier at the benchmark's budget lies above that,
for the budget that would reach it. This script measures that: it reads a run folder of
``benchmarks/synthesis_fashion_mnist.py`` (its trained supernet, prototype and channel importance, same data split),
takes the named networks' architectures from the store, and for each epoch count E trains every network and the
reference with the loop's own final recipe (``toolkit.synthesis.finals.train_final`` and ``train_reference``:
supernet weights, E epochs on the training split, final learning rate), converts to int8 and reads top-1 on the validation split and, once per
network and E, on the test split. Nothing is chosen here: the networks were chosen by the benchmark on validation.

    python benchmarks/final_budget.py --run bench-synth2/gensynth --db bench-synth2/bench.db \\
        --networks gensynth:final-c002-04 --epochs 3,6,12

With ``--seeds 0,1,2`` every network is trained once per final-training seed (the seed of the recipe's data
order; the weights it starts from and the train/validation split stay the run's), which measures how far final
training alone moves a network: a margin between two searches' finals smaller than that is not a result. A network
stored by several runs of one store (draws with other ``--seed``) is named ``STRATEGY:CANDIDATE_ID@RUN_FOLDER``
(STRATEGY as the run stores it: ``gensynth`` for the benchmark's gensynth-front).
``--reference stored`` judges drops against the reference the run itself trained (same recipe, its seed; its .tflite
read again on the same images) instead of training it again per E and seed (about 8 minutes each at 6 epochs
here); only for the run's own final epochs. Validation top-1 here is on the whole validation split; the run itself
judged its finals on the first ``n_eval`` of those images (the benchmark's ``--eval-samples``, 2,000).

    python benchmarks/final_budget.py --run R/gensynth --db R/bench.db --epochs 6 --seeds 0,1,2 \\
        --reference stored --networks gensynth:final-c006-00@R/gensynth-front,random:final-c010-08@R/random \\
        --results benchmarks/results/final_seeds.json

With ``--distill none,reference`` every network (not the reference) is trained once per teacher: labels only, and
also on the soft predictions of the network the run's finals learned from (the stronger on validation of the
reference it stored and the prototype as trained; ``prototype``: the prototype as trained); the script prints the
paired gain of each teacher over labels only.

    python benchmarks/final_budget.py --run R/gensynth --db R/bench.db --epochs 6 --reference stored \
        --distill none,reference --networks gensynth:ID@R/gensynth,random:ID@R/random \
        --results benchmarks/results/distill_seedN.json

Prints a table (MACs ratio, top-1, drop vs the reference trained for the same E) and, with more than one seed, the
mean, standard deviation and range per network over the seeds; writes ``benchmarks/results/final_budget.json``
(an existing one only with ``--force``, checked before any work).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import check_results_path, code_commit, command_line, run_main, write_record  # noqa: E402


def stored_choices(db: str, strategy: str, candidate_id: str, run_id: str | None = None) -> dict:
    """The decision choices of a network the synthesis benchmark stored (its store opened read only); of the run
    ``run_id`` when given, else of the one run in the store that holds ``STRATEGY:CANDIDATE_ID``."""
    from toolkit.errors import InvalidArgumentError

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)  # read only: the store is the benchmark's
    try:
        query = "SELECT run_id, extra_json FROM candidates WHERE strategy=? AND candidate_id=? AND status='ok'"
        params = (strategy, candidate_id)
        if run_id is not None:
            query, params = query + " AND run_id=?", params + (run_id,)
        rows = con.execute(query, params).fetchall()
    finally:
        con.close()
    if not rows:
        raise InvalidArgumentError(f"no successful candidate {strategy}:{candidate_id} in {db}"
                                   f"{'' if run_id is None else f' for run {run_id}'}; pass STRATEGY:CANDIDATE_ID of "
                                   f"a network the benchmark stored")
    if len({r[1] for r in rows}) > 1:
        raise InvalidArgumentError(f"{strategy}:{candidate_id} names different networks in runs "
                                   f"{', '.join(sorted(r[0] for r in rows))} of {db}; name the run folder, as in "
                                   f"{strategy}:{candidate_id}@RUN_FOLDER")
    return json.loads(rows[0][1])["choices"]


def stored_reference(db: str, run_id: str) -> str:
    """The int8 .tflite file of the reference the run trained (its store read only)."""
    from toolkit.errors import InvalidArgumentError

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT extra_json FROM candidates WHERE run_id=? AND candidate_id='reference' "
                          "AND status='ok'", (run_id,)).fetchone()
    finally:
        con.close()
    path = json.loads(row[0] or "{}").get("tflite_path") if row else None
    if path is None or not Path(path).is_file():
        raise InvalidArgumentError(f"run {run_id} in {db} keeps no reference .tflite"
                                   f"{'' if path is None else f' ({path!r} is gone)'}; use --reference train")
    return path


def spread(values: list[float]) -> tuple[float, float, float, float]:
    """(mean, sample standard deviation, min, max); the deviation is 0.0 for one value."""
    import statistics

    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd, min(values), max(values)


def distillation_gains(rows: list[dict], teachers: list[str]) -> dict:
    """Per teacher other than none: top-1 in points of the distilled network minus the same network, epochs and
    seed trained without one, paired, on validation and test (None where a split was not read)."""
    import statistics

    plain = {(r["network"], r["epochs"], r["seed"]): r for r in rows if r.get("teacher") == "none"}
    gains = {}
    for teacher in teachers:
        pairs = [(r, plain[(r["network"], r["epochs"], r["seed"])]) for r in rows if r.get("teacher") == teacher
                 and teacher != "none" and (r["network"], r["epochs"], r["seed"]) in plain]
        if not pairs:
            continue
        diff = {split: [(a[f"{split}_top1"] - b[f"{split}_top1"]) * 100 for a, b in pairs
                        if a[f"{split}_top1"] is not None] for split in ("val", "test")}
        gains[teacher] = {"pairs": len(pairs),
                          "val_pt_mean": statistics.fmean(diff["val"]) if diff["val"] else None,
                          "val_better": sum(d > 0 for d in diff["val"]),
                          "test_pt_mean": statistics.fmean(diff["test"])}
    return gains


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def _pt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}pt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a gensynth/random run folder of the synthesis benchmark")
    parser.add_argument("--db", required=True,
                        help="the benchmark's store (read: nothing is written to it for a finished run)")
    parser.add_argument("--networks", required=True,
                        help="comma-separated STRATEGY:CANDIDATE_ID, each optionally @RUN_FOLDER (the run that stored "
                             "it, when several runs share the store)")
    parser.add_argument("--epochs", default="3,6,12", help="comma-separated epoch counts")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated final-training seeds, each network trained once per seed (default: the "
                             "run's seed)")
    parser.add_argument("--reference", choices=("train", "stored"), default="train",
                        help="train the reference per epoch count and seed (default), or judge against the one the run "
                             "stored (only at the run's own final epochs)")
    parser.add_argument("--train-samples", default=None,
                        help="final training on this many images ('all': the whole training split) instead of the "
                             "run's. The supernet then has seen some of the new validation images, so only test "
                             "top-1 is reported (validation is not independent of the weights)")
    parser.add_argument("--distill", default=None,
                        help="comma-separated teachers, each network trained once per teacher: none (labels only), "
                             "prototype (the prototype as trained), reference (what the run's finals learn from: "
                             "the stronger on validation of its stored finals/reference.keras and the prototype as "
                             "trained). Default: the run's own recipe (reference under synthesize --distill, else "
                             "none). The reference row itself is never distilled")
    parser.add_argument("--work", default="/tmp/final-budget", help="folder for the .tflite files")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "final_budget.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    args = parser.parse_args()
    results_path = check_results_path(args.results, args.force)
    if not all(e.strip().isdigit() and int(e) > 0 for e in args.epochs.split(",")):
        parser.error(f"--epochs takes positive integers separated by commas, e.g. 3,6,12. Received: {args.epochs!r}")
    if args.train_samples not in (None, "all") and not (args.train_samples.isdigit() and int(args.train_samples) > 0):
        parser.error(f"--train-samples takes a positive integer or 'all'. Received: {args.train_samples!r}")
    if args.seeds is not None and not all(x.strip().isdigit() for x in args.seeds.split(",")):
        parser.error(f"--seeds takes non-negative integers separated by commas, e.g. 0,1,2. Received: {args.seeds!r}")
    teachers = None if args.distill is None else args.distill.split(",")
    if teachers is not None and (any(t not in ("none", "prototype", "reference") for t in teachers)
                                 or len(set(teachers)) != len(teachers)):
        parser.error(f"--distill takes distinct teachers from none, prototype, reference separated by commas, e.g. "
                     f"none,reference. Received: {args.distill!r}")
    items = args.networks.split(",")
    for item in items:
        if item.split("@", 1)[0].count(":") != 1:
            parser.error(f"--networks takes STRATEGY:CANDIDATE_ID[@RUN_FOLDER] items, e.g. gensynth:final-c002-04. "
                         f"Received: {item!r}")

    from toolkit.arch import count_macs
    from toolkit.convert import convert_model
    from toolkit.convert.interpreter import evaluate_tflite
    from toolkit.store import Store
    from toolkit.synthesis.assess import Context, candidate_from_row, report_on_test
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.finals import final_teacher, set_final_reference, train_final, train_reference
    from toolkit.synthesis.generate import open_finished_run
    from toolkit.synthesis.loop import RunLock, read_run_file
    from toolkit.synthesis.requirements import parse_requirements

    run = Path(args.run)
    run_file = read_run_file(run)
    config = SynthesisConfig.from_dict(run_file["config"])
    epochs = [int(e) for e in args.epochs.split(",")]
    teachers = teachers or ["reference" if config.distill else "none"]
    seeds = [config.seed] if args.seeds is None else [int(x) for x in args.seeds.split(",")]
    run_epochs = config.final_epochs or config.prototype_epochs
    if args.reference == "stored" and (epochs != [run_epochs] or args.train_samples is not None):
        parser.error(f"--reference stored holds for the run's own recipe only: --epochs {run_epochs} on the run's "
                     f"training split. Received: --epochs {args.epochs}"
                     f"{'' if args.train_samples is None else f', --train-samples {args.train_samples}'}")
    own_split = args.train_samples is None
    if not own_split:
        config = dataclasses.replace(config, n_train=None if args.train_samples == "all" else int(args.train_samples))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(config, run, parse_requirements(config.requirements))
    with RunLock(run), Store(args.db) as store:  # a finished run: everything is read from its folder
        proto, done = open_finished_run(ctx, store, run_file["run_id"])
    set_final_reference(ctx, proto, candidate_from_row(done["reference"]) if "reference" in done else None)

    networks = [] if args.reference == "stored" else [("reference", ctx.prototype_choices())]
    for item in items:
        name, _, folder = item.partition("@")
        strategy, cid = name.split(":")
        run_id = read_run_file(Path(folder))["run_id"] if folder else None
        networks.append((name, stored_choices(args.db, strategy, cid, run_id)))
    val = ctx.train_data  # its x_test/y_test are the validation split
    models = {"none": None, "prototype": ctx.prototype_model}
    if "reference" in teachers:  # what the run's finals learned from: the loop's own choice
        judge = ctx.final_reference
        if judge.candidate_id == "reference" and not Path(judge.keras_path or "").is_file():
            parser.error(f"--distill reference reads the reference the run stored, {judge.keras_path}, which is not "
                         f"there; use --distill none,prototype")
        models["reference"] = final_teacher(ctx)
        why = "the stronger" if judge.candidate_id == "reference" else "as trained: stronger than its reference"
        print(f"teacher 'reference': the run's {judge.candidate_id} ({judge.int8_top1:.2%} on validation, {why})")

    rows = []
    if args.reference == "stored":  # read again here, on the same validation images as the networks
        path = stored_reference(args.db, run_file["run_id"])
        rows.append({"network": "reference", "epochs": run_epochs, "seed": config.seed, "stored": True,
                     "macs": count_macs(ctx.prototype_model), "train_s": None,
                     "val_top1": evaluate_tflite(path, val.x_test, val.y_test, num_threads=config.threads),
                     "test_top1": report_on_test(ctx, path)})
        print(f"reference (the run's, {path}): val {rows[0]['val_top1']:.2%}  test {rows[0]['test_top1']:.2%}")
    for seed in seeds:
        for e in epochs:
            ctx.config = dataclasses.replace(config, final_epochs=e, seed=seed, distill=False)  # teachers: below
            for name, choices in networks:
                for teacher in ["none"] if name == "reference" else teachers:
                    tag = f"e{e}_s{seed}_{name.replace(':', '_')}" + ("" if teacher == "none" else f"_kd-{teacher}")
                    t0 = time.perf_counter()
                    model, _ = train_reference(ctx, f"budget_{tag}") if name == "reference" else \
                        train_final(ctx, choices, f"budget_{tag}", teacher=models[teacher])
                    train_s = time.perf_counter() - t0
                    path = work / f"{tag}_int8.tflite"
                    convert_model(model, ctx.search_data, path, mode="int8")
                    row = {"network": name, "teacher": teacher, "epochs": e, "seed": seed, "macs": count_macs(model),
                           "train_s": round(train_s, 1),
                           "val_top1": evaluate_tflite(path, val.x_test, val.y_test, num_threads=config.threads)
                           if own_split else None,
                           "test_top1": report_on_test(ctx, path)}
                    rows.append(row)
                    print(f"E={e:<3} seed {seed:<3} {name:<28} {teacher:<9} {row['macs']:>11,} MACs  "
                          f"val {_pct(row['val_top1'])}  test {row['test_top1']:.2%}  ({train_s:.0f} s)", flush=True)

    ref = {(r["epochs"], r["seed"]): r for r in rows if r["network"] == "reference"}
    print(f"\n{'E':>3} {'seed':>4} {'network':<28} {'teacher':<9} {'MACs':>11} {'fewer':>6} {'val':>7} {'test':>7} "
          f"{'val drop':>9} {'test drop':>9}")
    for r in rows:
        base = ref[(r["epochs"], config.seed if args.reference == "stored" else r["seed"])]
        r["macs_ratio"] = base["macs"] / r["macs"]
        r["val_drop_pt"] = (base["val_top1"] - r["val_top1"]) * 100 if own_split else None
        r["test_drop_pt"] = (base["test_top1"] - r["test_top1"]) * 100
        print(f"{r['epochs']:>3} {r['seed']:>4} {r['network']:<28} {r.get('teacher', 'none'):<9} {r['macs']:>11,} "
              f"{r['macs_ratio']:>5.1f}x "
              f"{_pct(r['val_top1']):>7} {r['test_top1']:>7.2%} {_pt(r['val_drop_pt']):>9} {r['test_drop_pt']:>8.2f}pt")
    summary = []
    if len(seeds) > 1:
        print(f"\nover seeds {','.join(map(str, seeds))}: mean, sample sd and range of int8 top-1 (drop in pt on test)")
        for e in epochs:
            for (name, _), teacher in itertools.product(networks, teachers):
                mine = [r for r in rows if r["network"] == name and r["epochs"] == e and not r.get("stored")
                        and r["teacher"] == teacher]
                if not mine:  # the reference is trained without a teacher only
                    continue
                entry = {"network": name, "teacher": teacher, "epochs": e, "seeds": len(mine)}
                for split in ("val", "test"):
                    if mine[0][f"{split}_top1"] is not None:
                        mean, sd, lo, hi = spread([r[f"{split}_top1"] for r in mine])
                        entry[split] = {"mean": mean, "sd": sd, "min": lo, "max": hi}
                mean, sd, lo, hi = spread([r["test_drop_pt"] for r in mine])
                entry["test_drop_pt"] = {"mean": mean, "sd": sd, "min": lo, "max": hi}
                summary.append(entry)
                v, t = entry.get("val"), entry["test"]
                val_text = "n/a" if v is None else f"{v['mean']:.2%} sd {v['sd'] * 100:.2f}pt"
                print(f"E={e:<3} {name:<28} {teacher:<9} val {val_text}  test {t['mean']:.2%} sd {t['sd'] * 100:.2f}pt "
                      f"[{t['min']:.2%}, {t['max']:.2%}]  test drop {mean:.2f}pt [{lo:.2f}, {hi:.2f}]")
    gains = distillation_gains(rows, teachers)
    for teacher, g in gains.items():
        print(f"\ndistilled from {teacher} minus the same network, epochs and seed without a teacher, over "
              f"{g['pairs']} pairs: mean {_pt(g['val_pt_mean'])} on validation ({g['val_better']} of "
              f"{g['pairs']} better), mean {_pt(g['test_pt_mean'])} on test")
    write_record(results_path, {"git_commit": code_commit(), "command": command_line("final_budget.py"),
                                "run": str(run), "train_images": len(val.x_train),
                                "validation_independent": own_split, "seeds": seeds, "reference": args.reference,
                                "final_learning_rate": config.final_learning_rate, "rows": rows,
                                "over_seeds": summary,
                                "distillation_gains": gains,
                                "reference_teacher": ctx.final_reference.candidate_id if "reference" in teachers
                                else None})
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
