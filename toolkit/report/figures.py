"""Matplotlib figures of the report (Agg backend, PNG). Measured, virtual, estimated and predicted numbers are
drawn differently (solid / hatched / hollow) and say so in the legend."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = {"measured": dict(color="#1f77b4", hatch=""), "virtual": dict(color="#2ca02c", hatch="//"),
         "estimated": dict(color="#bbbbbb", hatch="xx"), "predicted": dict(color="#ffbb78", hatch="..")}
STRATEGY_MARKERS = {"prototype": ("*", "#d62728"), "gensynth": ("o", "#1f77b4"), "random": ("s", "#7f7f7f"),
                    "width": ("^", "#ff7f0e"), "l1prune": ("D", "#9467bd"), "generated": ("P", "#17becf")}


def _save(fig, path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def latency_distribution(samples: pd.DataFrame, summary: pd.DataFrame, path) -> str:
    """A box per model x device where every timed run was kept (host); the printed median (or mean, hollow) with
    a whisker to the printed p95 where the tool reports only aggregates (benchmark_model on phones)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = []
    for i, row in enumerate(summary.itertuples(), start=1):
        kept = samples[(samples["label"] == row.label) & (samples["device"] == row.device)]["latency_ms"] \
            if not samples.empty else []
        if len(kept):
            ax.boxplot([kept.values], positions=[i], showfliers=False, widths=0.6)
        else:
            # Only what the phone's benchmark printed: its median (else its mean, drawn hollow) and a whisker up
            # to its p95 when it printed one; nothing is drawn for a statistic it did not print.
            median, mean = getattr(row, "median_ms", None), getattr(row, "mean_ms", None)
            has_median = median is not None and not pd.isna(median)
            centre = median if has_median else mean
            top = next((v for v in (getattr(row, "p95_ms", None), getattr(row, "p90_ms", None))
                        if v is not None and not pd.isna(v)), None)
            if centre is not None and not pd.isna(centre):
                ax.errorbar([i], [centre], yerr=[[0], [max(top - centre, 0) if top is not None else 0]], fmt="o",
                            color="#2ca02c", mfc="#2ca02c" if has_median else "none")
        labels.append(f"{row.label}\n{row.device}\n[{row.source}]")
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=6, rotation=15)
    ax.set_ylabel("latency per inference (ms)")
    ax.set_title("Latency over timed runs (box: all runs kept; dot: median (hollow: mean), whisker to p95)")
    return _save(fig, path)


def energy_bars(summary: pd.DataFrame, path) -> str:
    df = summary.dropna(subset=["energy_mj"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    names = [f"{r.label}\n{r.device}" for r in df.itertuples()]
    for ax, column, title in ((axes[0], "energy_mj", "energy per inference (mJ)"),
                              (axes[1], "inferences_per_j", "inferences per joule")):
        for i, r in enumerate(df.itertuples()):
            style = STYLE.get(r.energy_kind, STYLE["estimated"])
            ax.bar(i, getattr(r, column), color=style["color"], hatch=style["hatch"], edgecolor="black",
                   yerr=r.energy_uncertainty_mj if column == "energy_mj" else None)
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=15)
        ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, facecolor=s["color"], hatch=s["hatch"], edgecolor="black")
               for s in STYLE.values()]
    axes[1].legend(handles, ["measured on a phone", "virtual phone", "estimated from a profile",
                             "predicted (not measured)"], fontsize=7)
    return _save(fig, path)


def power_trace(traces: pd.DataFrame, path) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for (mid, label, device, source), g in traces.groupby(["measurement_id", "label", "device", "energy_source"]):
        ax.plot(g["t_s"], g["power_mw"], label=f"{label} on {device} [{source}]", linewidth=1)
    ax.set_xlabel("seconds into the benchmark run")
    ax.set_ylabel("battery power (mW)")
    ax.legend(fontsize=7)
    ax.set_title("Power during the run (fuel-gauge samples)")
    return _save(fig, path)


def top_ops_bars(ops: pd.DataFrame, path) -> str:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh([f"{r.node_type} {str(r.name)[:40]}" for r in ops.itertuples()][::-1], ops["avg_ms"].values[::-1])
    ax.set_xlabel("average ms per inference")
    ax.set_title("Top ops by latency")
    return _save(fig, path)


def accuracy_scatter(cands: pd.DataFrame, cost: str, front: str, xlabel: str, path) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    source = {"latency_ms": "latency_source", "energy_mj": "energy_source"}.get(cost)
    for strategy, g in cands.groupby("strategy"):
        marker, color = STRATEGY_MARKERS.get(strategy, ("x", "black"))
        # A cost predicted by --predictor's screen (source predicted:<device>) is drawn hollow: not measured.
        predicted = g[source].astype(str).str.startswith("predicted:") if source in g else g[cost].isna()
        for part, hollow in ((g[~predicted], False), (g[predicted], True)):
            if part.empty:
                continue
            ax.scatter(part[cost], part["int8_top1"] * 100, marker=marker, label=strategy + (" (predicted)" if hollow
                       else ""), s=50 if marker != "*" else 160, alpha=0.8, edgecolors=color,
                       facecolors="none" if hollow else color)
    f = cands[cands[front]].sort_values(cost)
    ax.step(f[cost], f["int8_top1"] * 100, where="post", color="black", linewidth=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("int8 top-1 (%)")
    ax.legend(fontsize=7)
    ax.set_title(f"Accuracy vs {xlabel.split(' (')[0]}")
    return _save(fig, path)


def progress(prog: pd.DataFrame, path) -> str:
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
    for (run, strategy), g in prog.groupby(["run_id", "strategy"]):
        label = f"{strategy} ({run[-6:]})"
        axes[0].plot(g["cycle"], g["best_U"], marker="o", label=label)
        axes[1].plot(g["cycle"], g["best_macs"], marker="o", label=label)
        axes[2].plot(g["cycle"], g["feasible_share"] * 100, marker="o", label=label)
    for ax, title in zip(axes, ("best U (NetScore)", "MACs of the best feasible", "share meeting requirements (%)")):
        ax.set_xlabel("cycle")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    return _save(fig, path)
