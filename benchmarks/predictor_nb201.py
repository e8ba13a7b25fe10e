"""Kernel-level latency predictor validated on public NAS-Bench-201 measurements.

    python benchmarks/predictor_nb201.py --csv ../shared/data/nb201_latency_public.csv \\
        --device-column raspi4_ms --fit 300 --test 1000 --seed 0 [--cache DIR]

Reads a CSV with columns ``index,arch,<device>_ms``; leaves out the cells whose output does not depend on the
input (no path from node 0 to node 3 through non-``none`` edges, see ``toolkit.predict.nb201``) and any whose
measured latency is ~0 (below 5 % of the column's median); draws a sample stratified by cell composition
(number of live 3x3 and 1x1 convolutions), fits the predictor (toolkit.predict) on ``--fit`` networks and prints, on the other ``--test``: the
share of networks predicted within +-10 % and +-5 % of the measurement, RMSE, Kendall tau, the same for a
MACs-only linear baseline, and the share of measurements inside the predicted band (mean +- 2 sigma).

Each network is built in Keras, converted to float32 TFLite and split into kernels; kernels are cached as
JSON in ``--cache`` (default ``.ferminet-cache/nb201``), so a second run only fits. The last line is
machine-readable.

Result (2026-11-26, seed 0, fit 300 / test 1000; 1,300 two-cell probes per graph, two builds at once at ~25
networks/min each beside another job). ``--graph live``: raspi4_ms ``within_10pct=0.658 within_5pct=0.451
rmse_ms=3.377 kendall_tau=0.860 macs_baseline_within_10pct=0.537``; pixel2_ms ``within_10pct=0.402
within_5pct=0.172 rmse_ms=3.232 kendall_tau=0.646 macs_baseline_within_10pct=0.385``. ``--graph all``: raspi4_ms
``within_10pct=0.561 ... kendall_tau=0.765`` (worse), pixel2_ms ``within_10pct=0.479 within_5pct=0.182
rmse_ms=2.597 kendall_tau=0.747 macs_baseline_within_10pct=0.415`` (better): the phones' graphs computed the
dead edges, the Raspberry Pi's did not. (The earlier one-cell probe composed wrong kernels for some cells, see
``toolkit.predict.nb201.compose_kernels``; with it the live figures were 0.656 and 0.397.)
The issue's targets (>= 90 % within 10 %, tau >= 0.9) are not met. What the data allow: boosted trees on the
complete cell description (30 edge-op indicators) fitted on 12,000 networks reach 70.0 % within 10 % on
raspi4_ms and 46.9 % on pixel2_ms (3,284 held out). Pixel 2 values are whole ms (median 15 ms: the rounding
alone is +-3.3 % there, +-5 to +-12.5 % for the 11 % of networks under 10 ms).

``--ceiling`` prints how far apart the measurements of networks doing the same work are (2026-11-26): of the
2,400 networks with the same live edges and the same ops on their dead edges as another network (1,080 groups),
79.7 % are within 10 % of their group's median on raspi4_ms (70.0 % on pixel2_ms), and no value per group puts
more than 88.7 % of them within 10 % (83.4 % on pixel2_ms): the 90 % target is above what this data allows on
these networks. That best value is chosen per group with the measurements themselves, so it is an upper bound,
loose for small groups: dealing the same dead-edge keys at random inside each live-edge group (same group sizes,
20 draws) already gives 80.4 % (68.6 %), and 64.1 % (43.6 %) within 10 % of the median. The real keys give more,
so the dead edges carry latency on both columns. Grouped by live edges alone (the graph ``--graph live``
converts) the raspi4_ms figures are 62.0 % and 70.2 %; inside those groups a network with one dead 3x3
convolution is at 1.016x its group's median on raspi4_ms and 1.20x on pixel2_ms (two: 1.55x). Building every
edge (``--graph all``) is right for pixel2_ms (0.479 within 10 %, above the boosted trees' 46.9 % on 12,000
networks) and wrong for raspi4_ms (0.561): what the Raspberry Pi's graphs did with dead edges is neither reading.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("predictor_nb201")


def load(csv: str, column: str):
    import pandas as pd

    from toolkit.predict.nb201 import output_depends_on_input

    df = pd.read_csv(csv)
    missing = [c for c in ("index", "arch", column) if c not in df.columns]
    if missing:
        raise SystemExit(f"{csv}: missing column(s) {missing}; columns are {list(df.columns)}")
    df = df[["index", "arch", column]].dropna().rename(columns={column: "latency_ms"})
    n_all = len(df)
    depends = df["arch"].map(output_depends_on_input)
    constant = int((~depends).sum())
    df = df[depends]
    floor = 0.05 * float(df["latency_ms"].median())
    near_zero = int((df["latency_ms"] <= floor).sum())
    df = df[df["latency_ms"] > floor].reset_index(drop=True)
    print(f"{csv}: {n_all} networks; left out {constant} whose output does not depend on the input "
          f"(no input->output path through non-'none' edges) and {near_zero} more measured <= {floor:.3g} ms; "
          f"{len(df)} remain")
    return df


def strata_of(archs):
    """Stratum of each network: how many live 3x3 and 1x1 convolutions its cell has (device-independent, so
    every device column of one CSV draws the same networks and shares the kernel cache)."""
    from toolkit.predict.nb201 import live_edges

    keys = []
    for arch in archs:
        ops = [e.op for e in live_edges(arch)]
        keys.append(f"{ops.count('nor_conv_3x3')}x3-{min(ops.count('nor_conv_1x1'), 2)}x1")
    return keys


def sample(df, n_fit: int, n_test: int, seed: int):
    """Fit and test sets, both stratified: networks are ordered by their rank inside their stratum (shuffled by
    ``seed``) divided by the stratum's size, so every prefix of the order holds each stratum in proportion; the
    fit set is the first ``n_fit``, the test set the next ``n_test`` (a smaller --test is a subset of a larger)."""
    import numpy as np

    if n_fit + n_test > len(df):
        raise SystemExit(f"--fit {n_fit} + --test {n_test} exceeds the {len(df)} usable networks")
    rng = np.random.default_rng(seed)
    df = df.assign(stratum=strata_of(df["arch"]), key=rng.random(len(df)))
    df["order"] = df.groupby("stratum")["key"].rank(method="first") / df.groupby("stratum")["key"].transform("size")
    df = df.sort_values(["order", "key"]).reset_index(drop=True)
    return df.iloc[:n_fit].reset_index(drop=True), df.iloc[n_fit:n_fit + n_test].reset_index(drop=True)


def ceiling_keys(df):
    """Per network: its live edges (``toolkit.predict.nb201.live_edges``: the graph ``--graph live`` converts) and the
    multiset of ops on its dead edges (the same work if the sources' graphs computed dead edges; networks with the
    same key differ only in where those sit)."""
    from toolkit.predict.nb201 import live_edges, parse_cell

    live, dead = [], []
    for arch in df["arch"]:
        edges = tuple((e.src, e.dst, e.op) for e in live_edges(arch))
        kept = {(src, dst) for src, dst, _ in edges}
        live.append(edges)
        dead.append(tuple(sorted(e.op for e in parse_cell(arch) if (e.src, e.dst) not in kept)))
    return live, dead


def group_indices(keys) -> dict:
    """The positions of equal keys: {key: [index, ...]}, in order of first appearance."""
    groups: dict = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def same_network_ceiling(latency, keys) -> dict:
    """What the measurements allow any predictor that gives networks with the same ``keys`` one value. Networks
    that compute the same ops have one true latency, so within a group of them no prediction is within 10 % of
    more members than the best single value. Returns the groups of two or more, the share of their members within
    10 % of the group median, and the best-value ceiling for them: per group, the most members any one value v
    puts within 10 % (|v - m| <= 0.1 m). Chosen with the measurements themselves, per group: an upper bound, the
    looser the smaller the groups (a group of two within 22 % of each other is all "within 10 %")."""
    import numpy as np

    latency = np.asarray(latency, float)
    near_median = best = members = groups = 0
    for idx in group_indices(keys).values():
        m = np.sort(latency[idx])
        if len(m) < 2:
            continue
        groups += 1
        members += len(m)
        near_median += int(np.sum(np.abs(m - np.median(m)) <= 0.1 * m))
        # v covers m when m/1.1 <= v <= m/0.9; the best v is at one of the interval ends m_i/1.1.
        best += max(int(np.sum((m / 1.1 <= v) & (v <= m / 0.9))) for v in m / 1.1)
    return {"groups": groups, "networks": members, "within_10pct_of_median": near_median / max(members, 1),
            "best_value_ceiling": best / max(members, 1)}


def shuffled_dead_keys(live, dead, seed: int) -> list:
    """The control for the dead-edge grouping: inside each live-edge group, the dead-edge keys dealt to its
    members at random. Same group sizes, no link between a network's dead edges and its measurement: what the
    dead-edge grouping gives beyond this is what the dead edges explain."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = list(dead)
    for idx in group_indices(live).values():
        for i, j in zip(idx, rng.permutation(idx)):
            out[i] = dead[j]
    return list(zip(live, out))


def kernels_for(archs, cache: Path, graph: str = "live"):
    from toolkit.predict.nb201 import network_kernels

    def cached() -> int:
        return len(list(cache.glob("nb201_*.json"))) if cache.is_dir() else 0

    out = []
    t0 = time.time()
    start = cached()
    for i, arch in enumerate(archs):
        out.append(network_kernels(arch, cache_dir=cache, graph=graph))
        if (i + 1) % 50 == 0 or i + 1 == len(archs):
            built = cached() - start  # conversions this run (the rest came from the cache)
            rate = built / max(1e-9, (time.time() - t0) / 60)
            print(f"  kernels: {i + 1}/{len(archs)} networks ({built} converted, {rate:.1f} networks/min)",
                  flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", required=True)
    ap.add_argument("--device-column", required=True, help="e.g. raspi4_ms, pixel2_ms")
    ap.add_argument("--fit", type=int, default=300)
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=".ferminet-cache/nb201", help="folder for kernel JSON files")
    ap.add_argument("--graph", choices=("live", "all"), default="live",
                    help="live: build the edges that reach each cell's output; all: every edge, as NAS-Bench-201's "
                         "forward pass runs it (dead edges and none as x * 0 too)")
    ap.add_argument("--build-only", action="store_true", help="convert and cache the sample's kernels, no fit")
    ap.add_argument("--ceiling", action="store_true",
                    help="only print what the measurements allow: networks with the same converted graph, how far "
                         "apart their measured latencies are (no conversion, no fit)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    import numpy as np

    df = load(args.csv, args.device_column)
    if args.ceiling:
        live, dead = ceiling_keys(df)
        lat = df["latency_ms"]
        both = same_network_ceiling(lat, list(zip(live, dead)))
        shuffled = [same_network_ceiling(lat, shuffled_dead_keys(live, dead, seed)) for seed in range(20)]
        rows = (("the same live edges", same_network_ceiling(lat, live)),
                ("the same live edges and dead-edge ops", both),
                ("control: dead-edge ops dealt at random within live-edge groups (mean of 20)",
                 {k: float(np.mean([c[k] for c in shuffled])) for k in both}))
        for what, c in rows:
            print(f"{what}: {c['networks']:.0f} networks in {c['groups']:.0f} groups; within 10 % of their group's "
                  f"median latency: {c['within_10pct_of_median']:.3f}; the most one value per group can put within "
                  f"10 % of these: {c['best_value_ceiling']:.3f}")
        control = rows[2][1]
        print(f"same_ops_networks={both['networks']} within_10pct_of_group_median={both['within_10pct_of_median']:.3f} "
              f"best_value_ceiling={both['best_value_ceiling']:.3f} "
              f"shuffled_best_value_ceiling={control['best_value_ceiling']:.3f}")
        return 0
    fit, test = sample(df, args.fit, args.test, args.seed)
    cache = Path(args.cache)
    print(f"sample: fit {len(fit)}, test {len(test)} (stratified by cell composition, seed {args.seed}); "
          f"{args.graph} graph; kernel cache {cache}")
    t0 = time.time()
    k_fit = kernels_for(list(fit["arch"]), cache, args.graph)
    k_test = kernels_for(list(test["arch"]), cache, args.graph)
    print(f"kernels ready in {time.time() - t0:.0f} s")
    if args.build_only:
        return 0

    from toolkit.predict import LatencyPredictor, total_macs
    from toolkit.predict.fit import evaluate, prediction_errors

    t0 = time.time()
    predictor = LatencyPredictor.fit_networks(k_fit, list(fit["latency_ms"]), device=args.device_column)
    y = np.asarray(test["latency_ms"], float)
    ev = evaluate(predictor, k_test, y)
    m, in_band = {k: getattr(ev, k) for k in ("within_10pct", "within_5pct", "rmse", "kendall_tau")}, ev.in_band
    print(f"predictor fitted in {time.time() - t0:.1f} s: {predictor.describe()}")

    macs_fit = np.array([total_macs(k) for k in k_fit], float)
    macs_test = np.array([total_macs(k) for k in k_test], float)
    a, b = np.polyfit(macs_fit, np.asarray(fit["latency_ms"], float), 1)
    base = prediction_errors(a * macs_test + b, y)

    print()
    print(f"{'model':<22}{'within 10%':>12}{'within 5%':>12}{'RMSE ms':>10}{'Kendall tau':>13}")
    print(f"{'kernel predictor':<22}{m['within_10pct']:>12.3f}{m['within_5pct']:>12.3f}{m['rmse']:>10.3f}"
          f"{m['kendall_tau']:>13.3f}")
    print(f"{'MACs-only linear':<22}{base['within_10pct']:>12.3f}{base['within_5pct']:>12.3f}"
          f"{base['rmse']:>10.3f}{base['kendall_tau']:>13.3f}")
    ratio = m["within_10pct"] / max(base["within_10pct"], 1e-9)
    print(f"within-10% ratio predictor/baseline: {ratio:.2f}x; measured inside the predicted band "
          f"(mean +- 2 sigma): {in_band:.3f}; median measured {np.median(y):.2f} ms")
    print(f"within_10pct={m['within_10pct']:.3f} within_5pct={m['within_5pct']:.3f} rmse_ms={m['rmse']:.3f} "
          f"kendall_tau={m['kendall_tau']:.3f} macs_baseline_within_10pct={base['within_10pct']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
