"""How well the search's proxy ranks final-trained accuracy, over networks spread across one supernet's space.

Issue 10 asks for Kendall's tau between proxy accuracy and final-trained accuracy over >= 12 sub-networks. The
synthesis benchmark's finals are a poor sample for that: they are chosen to meet the same requirements, so they
cluster in a narrow band of MACs and accuracy, and the width baseline's finals come from another supernet. This
script measures the proxy on a stratified random sample of one finished run's space instead:

- ``--pool`` sub-networks are drawn uniformly from the run's decision space (seeded by ``--seed``), sorted by
  MACs, and ``--networks`` of them taken at evenly spaced MAC quantiles (one per stratum; duplicates skipped).
- Each is evaluated exactly as the run's search evaluated its candidates (weights from the run's supernet,
  batch-norm statistics re-estimated, int8 top-1 on the run's validation images), then trained with the run's
  final recipe and read again: int8 top-1 on the validation split (and once on test, reported only).
- Kendall's tau (proxy vs final, both validation) over all of them, over those at or under ``--macs-max``, and
  with the run's own finals added; and MACs alone vs final, the ranking the proxy has to beat. Nothing is chosen
  here.

    python benchmarks/proxy_rank.py --run bench-synth/gensynth --networks 12 --macs-max 3.1M

Writes ``benchmarks/results/proxy_rank.json`` (an existing one only with ``--force``). The networks are stored in the run's store as a run of kind
``sample``; an interrupted run starts over.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import (check_results_path, code_commit, command_line, kendall_tau, run_main,  # noqa: E402
                    write_record)


def stratified(space, pool: int, networks: int, seed: int) -> list[tuple[str, int, dict, int]]:
    """``networks`` distinct sub-networks at evenly spaced MAC quantiles of ``pool`` uniform draws:
    [(candidate_id, draw index, choices, MACs)], cheapest first."""
    import numpy as np

    from toolkit.arch import build_model, count_macs
    from toolkit.synthesis.supernet import random_choices

    rng = np.random.default_rng(seed)
    drawn = {}
    for i in range(pool):
        choices = random_choices(space, rng)
        spec = space.apply(choices)
        drawn.setdefault(spec.spec_hash(), (i, choices, count_macs(build_model(spec))))
    ordered = sorted(drawn.values(), key=lambda d: d[2])
    if len(ordered) < networks:
        raise SystemExit(f"only {len(ordered)} distinct networks in {pool} draws; raise --pool")
    picks = sorted({int((j + 0.5) / networks * len(ordered)) for j in range(networks)})
    return [(f"rank-{n:02d}", ordered[p][0], ordered[p][1], ordered[p][2]) for n, p in enumerate(picks)]


def main() -> int:
    from toolkit.errors import InvalidArgumentError
    from toolkit.synthesis.requirements import parse_requirement

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a finished gensynth, random or width run folder")
    parser.add_argument("--db", default=None, help="its store (default: the one its run.json names)")
    parser.add_argument("--networks", type=int, default=12)
    parser.add_argument("--pool", type=int, default=300, help="uniform draws the sample is stratified from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--macs-max", default=None, help="also tau over the networks at or under this, e.g. 3.1M")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "proxy_rank.json"))
    parser.add_argument("--force", action="store_true", help="replace an existing --results file")
    args = parser.parse_args()
    check_results_path(args.results, args.force)  # before any work
    if args.networks < 2:
        parser.error(f"--networks must be at least 2 for a rank correlation. Received: {args.networks}")
    try:
        macs_max = parse_requirement(f"macs<={args.macs_max}").bound if args.macs_max else None
    except InvalidArgumentError:
        raise InvalidArgumentError(f"Cannot read --macs-max {args.macs_max!r}; write a MAC count such as 3.1M or "
                                   f"500k") from None

    from toolkit.store import Store
    from toolkit.synthesis.generate import evaluate_networks
    from toolkit.synthesis.loop import read_run_file

    commit = code_commit()
    run = Path(args.run)
    saved = read_run_file(run)
    db = args.db or saved.get("db", "ferminet.db")
    sample: list = []

    def propose(space):
        sample.extend(stratified(space, args.pool, args.networks, args.seed))
        return [(cid, draw, choices) for cid, draw, choices, _ in sample]

    started = time.perf_counter()
    result = evaluate_networks(run, propose, db, finalize=True, progress=True, keep=False,
                               command=" ".join(["proxy_rank", *sys.argv[1:]]),
                               options={"pool": args.pool, "networks": args.networks, "seed": args.seed})
    seconds = time.perf_counter() - started
    proxies = {c.candidate_id: c for c in result.sampled}
    rows = []
    print(f"{'network':<12}{'MACs':>12}{'proxy val':>10}{'final val':>10}{'final test':>11}")
    for f in result.networks:
        p = proxies.get(f.parent or "")
        if f.status != "ok" or p is None or p.status != "ok":
            print(f"{f.candidate_id:<12} failed: {f.failure_reason or (p.failure_reason if p else '')}")
            continue
        rows.append({"candidate_id": p.candidate_id, "macs": f.macs, "proxy_val_top1": p.int8_top1,
                     "final_val_top1": f.int8_top1, "final_test_top1": f.test_top1})
        print(f"{p.candidate_id:<12}{f.macs:>12,}{p.int8_top1:>10.2%}{f.int8_top1:>10.2%}{f.test_top1:>11.2%}")

    with Store(db) as store:  # the run's own finals: the search chose them, so they sit in one band
        finals = [dict(r) for r in store.query(
            "SELECT candidate_id, macs, proxy_top1, int8_top1 FROM candidates WHERE run_id=? AND phase='final' "
            "AND status='ok' AND proxy_top1 IS NOT NULL", (saved["run_id"],))]

    def tau_of(items, proxy_key, final_key):
        return {"kendall_tau": kendall_tau([r[proxy_key] for r in items], [r[final_key] for r in items]),
                "networks": len(items)}

    taus = {"sample": tau_of(rows, "proxy_val_top1", "final_val_top1"),
            "sample_macs_alone": tau_of(rows, "macs", "final_val_top1")}  # what the proxy must beat
    if macs_max is not None:
        taus[f"sample_macs_le_{args.macs_max}"] = tau_of([r for r in rows if r["macs"] <= macs_max],
                                                          "proxy_val_top1", "final_val_top1")
    pooled = rows + [{"proxy_val_top1": r["proxy_top1"], "final_val_top1": r["int8_top1"]} for r in finals]
    taus["sample_and_run_finals"] = tau_of(pooled, "proxy_val_top1", "final_val_top1")
    print()
    for name, t in taus.items():
        value = "n/a" if t["kendall_tau"] is None else f"{t['kendall_tau']:.3f}"
        what = "MACs" if name.endswith("macs_alone") else "proxy"
        print(f"Kendall tau ({what} vs final top-1, validation), {name}, {t['networks']} networks: {value}"
              + (" (target >= 0.5)" if name == "sample" else ""))
    print(f"{seconds:.0f} s")
    record = {"git_commit": commit, "command": command_line("proxy_rank.py"),
              "run": str(run), "source_run_id": result.source_run_id, "space_root": saved["config"].get("space_root"),
              "supernet_epochs": saved["config"].get("supernet_epochs"),
              "final_epochs": saved["config"].get("final_epochs") or saved["config"].get("prototype_epochs"),
              "networks": rows, "run_finals": finals, "kendall_tau": taus, "seconds": seconds}
    write_record(args.results, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
