"""The frontier the synthesis benchmark measured: final-trained networks, MACs vs int8 test top-1, per strategy.

Reads ``benchmarks/results/synthesis_fashion_mnist.json`` (and, when present, ``final_budget*.json`` from
``benchmarks/final_budget.py``: the same networks given longer final training or more images) and prints, per strategy, its Pareto front (no other final of that strategy
has fewer MACs and at least its accuracy), where the target of issue 10 lies (>= 10x fewer MACs than the prototype
at <= 1 pt below the reference) and how far each front is from it; writes the figure
``benchmarks/results/synthesis_frontier.png`` (an existing one only with ``--force``, checked before any work).
Nothing is trained or measured here: every number is the JSON's.

    python benchmarks/synthesis_frontier.py --force
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import check_results_path, run_main  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MARKERS = {"gensynth": "o", "random": "s", "width": "^", "l1prune": "v"}


def pareto(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The points no other point beats on both MACs (fewer) and accuracy (higher or equal), by MACs.

    >>> pareto([(3, 0.9), (2, 0.8), (4, 0.85), (1, 0.8)])
    [(1, 0.8), (3, 0.9)]
    """
    front, best = [], -1.0
    for macs, acc in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((macs, acc))
            best = acc
    return front


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(RESULTS / "synthesis_fashion_mnist.json"))
    parser.add_argument("--budget", action="append", default=None,
                        help="final_budget.py results (repeatable; default every results/final_budget*.json)")
    parser.add_argument("--figure", default=str(RESULTS / "synthesis_frontier.png"))
    parser.add_argument("--ratio", type=float, default=10.0, help="MACs reduction the target asks for")
    parser.add_argument("--max-drop", type=float, default=1.0, help="accuracy drop (pt) the target allows")
    parser.add_argument("--force", action="store_true", help="replace an existing --figure")
    args = parser.parse_args()
    check_results_path(args.figure, args.force, "--figure")

    bench = json.loads(Path(args.results).read_text())
    proto_macs = bench["prototype"]["macs"]
    ref_top1 = max(bench["prototype"]["test_top1_as_trained"], bench["prototype"]["test_top1_retrained"])
    target_macs, target_top1 = proto_macs / args.ratio, ref_top1 - args.max_drop / 100
    print(f"prototype {proto_macs:,} MACs; reference test top-1 {ref_top1:.2%} (the stronger of as-trained and "
          f"retrained, on test); target: <= {target_macs:,.0f} MACs at >= {target_top1:.2%}")
    print(f"{'strategy':<10} {'front (MACs: test top-1)':<72} {'best <= target MACs':>20}")
    fronts = {}
    for name, s in bench["strategies"].items():
        pts = [(f["macs"], f["test_top1"]) for f in s["finals"] if f.get("test_top1") is not None]
        fronts[name] = pareto(pts)
        under = [a for m, a in pts if m <= target_macs]
        gap = f"{(target_top1 - max(under)) * 100:+.2f} pt short" if under else "none"
        text = ", ".join(f"{m / 1e6:.2f}M: {a:.2%}" for m, a in fronts[name])
        print(f"{name:<10} {text:<72} {gap:>20}")

    budgets = [json.loads(Path(p).read_text()) for p in (args.budget or sorted(RESULTS.glob("final_budget*.json")))]
    rows = []
    for b in budgets:
        print(f"\nfinal training budget ({b['command']}): same network and recipe, E epochs on {b['train_images']:,} "
              f"images, the reference given the same:")
        for r in b["rows"]:
            if r["network"] != "reference":
                r = dict(r, images=b["train_images"], study=f"{Path(b['run']).parent.name}, {b['git_commit'][:7]}")
                rows.append(r)
                val = "n/a" if r.get("val_drop_pt") is None else f"{r['val_drop_pt']:+.2f} pt"
                print(f"  E={r['epochs']:<3} {r['network']:<26} {r['macs_ratio']:.1f}x fewer MACs  test "
                      f"{r['test_top1']:.2%}  drop {r['test_drop_pt']:+.2f} pt (validation {val})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import ScalarFormatter

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for name, s in bench["strategies"].items():
        pts = [(f["macs"], f["test_top1"]) for f in s["finals"]]
        ax.scatter([m / 1e6 for m, _ in pts], [a * 100 for _, a in pts], marker=MARKERS.get(name, "x"),
                   label=f"{name} finals", alpha=0.8)
        front = fronts[name]
        ax.plot([m / 1e6 for m, _ in front], [a * 100 for _, a in front], lw=0.8, alpha=0.6)
    ax.scatter([proto_macs / 1e6], [ref_top1 * 100], marker="*", s=120, color="k", label="reference (prototype)")
    ax.axvline(target_macs / 1e6, ls="--", color="grey", lw=0.8)
    ax.axhline(target_top1 * 100, ls="--", color="grey", lw=0.8)
    ax.text(target_macs / 1e6, target_top1 * 100, f" target: {args.ratio:g}x fewer MACs, -{args.max_drop:g} pt",
            fontsize=7, va="bottom")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("MACs (millions, log)")
    ax.set_ylabel("int8 top-1 on the test split (%)")
    ax.set_title(f"final-trained networks at the benchmark's budget ({bench['git_commit'][:7]})", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    # Right: the gensynth network's gap to a reference given the same final training, per budget.
    for images in sorted({r["images"] for r in rows}):
        pts = sorted((r for r in rows if r["images"] == images), key=lambda r: r["epochs"])
        bx.plot([r["epochs"] for r in pts], [r["test_drop_pt"] for r in pts], "o-",
                label=f"test, {images // 1000}k training images")
        val = [r for r in pts if r.get("val_drop_pt") is not None]
        if val:
            bx.plot([r["epochs"] for r in val], [r["val_drop_pt"] for r in val], "s:", alpha=0.7,
                    label=f"validation, {images // 1000}k training images")
    bx.axhline(args.max_drop, ls="--", color="grey", lw=0.8)
    bx.text(bx.get_xlim()[0] if rows else 0, args.max_drop, f" target: <= {args.max_drop:g} pt", fontsize=7,
            va="bottom")
    if rows:
        r0 = rows[0]
        # The budget study is its own run (named): not necessarily the run on the left.
        bx.set_title(f"{r0['network']} ({r0['macs_ratio']:.1f}x fewer MACs),\nrun {r0['study']}: gap vs final "
                     f"epochs", fontsize=9)
        bx.legend(fontsize=7)
    bx.set_xlabel("final training epochs (the reference gets the same)")
    bx.set_ylabel("top-1 below the reference (pt)")
    fig.tight_layout()
    fig.savefig(args.figure, dpi=120)
    print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
