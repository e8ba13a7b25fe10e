"""The report's tables as pandas DataFrames, straight from the results store.

Every energy number keeps its ``energy_source`` (``measured:<serial>`` / ``virtual:<profile>`` /
``estimated:<profile>``) and a ``kind`` column (measured / virtual / estimated), so an estimate is never
read as a measurement.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from toolkit.errors import StoreError
from toolkit.store import Store, read_candidates, read_measurements
from toolkit.targets.base import energy_text


def _kind(source) -> str | None:
    if not isinstance(source, str) or ":" not in source:
        return None
    return source.split(":", 1)[0]


def load(db: str | Path, run: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(measurements, candidates) of the store, or of one run; clear errors for a missing/empty store/run."""
    path = Path(db)
    if not path.is_file():
        raise StoreError(f"No results store at {str(path)!r}. Profile something first, or pass --db")
    if run:
        with Store(path) as store:
            run = store.get_run(run)["run_id"]
    measurements = read_measurements(path, run_id=run)
    candidates = read_candidates(path, run_id=run)
    if measurements.empty and candidates.empty:
        where = f"run {run}" if run else f"the store {str(path)!r}"
        raise StoreError(f"{where} holds no measurements or candidates: nothing to report. Run `ferminet profile`, "
                         f"`ferminet demo` or `ferminet synthesize` first")
    if not measurements.empty:
        measurements = measurements.assign(kind=measurements["source"].map(_kind),
                                           energy_kind=measurements["energy_source"].map(_kind),
                                           label=measurements["model_name"].fillna(measurements["model_path"]))
    return measurements, candidates


def _flag(value) -> bool:
    return bool(value) if value is not None and not pd.isna(value) else False


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def energy_column(df: pd.DataFrame, flag: str = "energy_below_resolution",
                  bound: str = "energy_resolution_mj") -> pd.Series:
    """The energy per inference as it reads: "0.1234 mJ", "below resolution (< 0.0123 mJ)" or "not measured".
    A below-resolution energy is NULL in ``energy_mj`` and never shown as a number."""
    if df.empty:
        return pd.Series([], dtype=object)
    return pd.Series([energy_text(_num(r.get("energy_mj")), _flag(r.get(flag)), _num(r.get(bound)))
                      for _, r in df.iterrows()], index=df.index, dtype=object)


def summary(measurements: pd.DataFrame) -> pd.DataFrame:
    """Per model x device: latency, memory, energy per inference and inferences per joule, with sources.

    ``energy`` is the display text (a below-resolution energy reads "below resolution (< X mJ)", its
    ``energy_mj`` and ``inferences_per_j`` are empty); ``delegate`` is the delegate that ran, with
    ``delegate_fallback`` set when the requested one did not. Memory: ``process_peak_memory_mb`` is the whole
    process's peak, ``memory_increment_mb`` the model's increment over the runtime's baseline.
    """
    if measurements.empty:
        return pd.DataFrame()
    df = measurements.assign(energy=energy_column(measurements))
    cols = ["label", "device", "source", "num_threads", "delegate", "delegate_fallback", "median_ms", "p90_ms",
            "p95_ms", "mean_ms", "std_ms", "count", "memory_increment_mb", "process_peak_memory_mb", "energy",
            "energy_mj", "energy_uncertainty_mj", "energy_below_resolution", "energy_resolution_mj",
            "inferences_per_j", "avg_power_mw", "energy_method", "energy_source", "energy_kind", "tflite_top1",
            "size_kb", "macs", "throttled"]
    return df[[c for c in cols if c in df]].reset_index(drop=True)


def latency_samples(measurements: pd.DataFrame) -> pd.DataFrame:
    """Long format: one row per timed run (host profiles keep every sample; phones give aggregates)."""
    rows = []
    for _, m in measurements.iterrows():
        for value in json.loads(m["samples_json"] or "[]"):
            rows.append({"label": m["label"], "device": m["device"], "source": m["source"], "latency_ms": value})
    return pd.DataFrame(rows)


def power_traces(measurements: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, m in measurements.iterrows():
        for t, p in json.loads(m["trace_json"] or "[]"):
            rows.append({"measurement_id": m["measurement_id"], "label": m["label"], "device": m["device"],
                         "energy_source": m["energy_source"], "t_s": t, "power_mw": p})
    return pd.DataFrame(rows)


def top_ops(measurements: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    rows = []
    for _, m in measurements.iterrows():
        for op in json.loads(m["op_profile_json"] or "[]"):
            rows.append({"label": m["label"], "device": m["device"], **op})
    df = pd.DataFrame(rows)
    return df.sort_values("avg_ms", ascending=False).head(n).reset_index(drop=True) if not df.empty else df


def pareto_front(df: pd.DataFrame, cost: str, gain: str = "int8_top1") -> pd.Series:
    """True for rows no other row beats on both lower ``cost`` and higher ``gain``."""
    front = pd.Series(False, index=df.index)
    ok = df.dropna(subset=[cost, gain])
    for i, row in ok.iterrows():
        dominated = ((ok[cost] <= row[cost]) & (ok[gain] >= row[gain]) &
                     ((ok[cost] < row[cost]) | (ok[gain] > row[gain]))).any()
        front[i] = not dominated
    return front


def candidates_table(candidates: pd.DataFrame) -> pd.DataFrame:
    if candidates.empty:
        return candidates
    df = candidates[candidates["status"] == "ok"].copy()
    df["energy_kind"] = df["energy_source"].map(_kind)
    # The loop records a below-resolution energy as energy_mj NULL with extra_json
    # {"energy_below_resolution": true, "energy_resolution_mj": X}.
    extra = [json.loads(x or "{}") if isinstance(x, str) else {} for x in df.get("extra_json", [None] * len(df))]
    df["energy_below_resolution"] = [bool(e.get("energy_below_resolution")) for e in extra]
    df["energy_resolution_mj"] = [e.get("energy_resolution_mj") for e in extra]
    df["energy"] = energy_column(df)
    df["pareto_energy"] = pareto_front(df, "energy_mj")
    df["pareto_latency"] = pareto_front(df, "latency_ms")
    # int8_top1 is on the validation split (what the search decided on); test_top1 only exists for the networks
    # a run reports (prototype, reference, finals), read once each.
    for column, default in (("phase", "search"), ("top1_split", "validation"), ("test_top1", None),
                            ("test_requirements_met", None)):
        if column not in df:
            df[column] = default
    df["phase"] = df["phase"].fillna("search")
    return df[["run_id", "candidate_id", "strategy", "phase", "cycle", "spec_hash", "int8_top1", "top1_split",
               "test_top1", "macs", "params", "size_kb", "latency_ms", "latency_source", "energy", "energy_mj",
               "energy_source", "energy_kind", "score", "requirements_met", "test_requirements_met", "pareto_energy",
               "pareto_latency"]].reset_index(drop=True)


def synthesis_progress(candidates: pd.DataFrame) -> pd.DataFrame:
    """Per run and cycle: best U, the MACs and accuracy of the best feasible search candidate, the feasible share.
    Search candidates only: a final or shortlisted network carries its parent's cycle but is not part of it."""
    if candidates.empty:
        return pd.DataFrame()
    phase = candidates["phase"].fillna("search") if "phase" in candidates else "search"
    df = candidates[(candidates["cycle"] >= 0) & (candidates["status"] == "ok") & (phase == "search")]
    rows = []
    for (run, strategy, cycle), g in df.groupby(["run_id", "strategy", "cycle"]):
        feasible = g[g["requirements_met"] == 1]
        best = feasible.loc[feasible["score"].idxmax()] if not feasible.empty else None
        rows.append({"run_id": run, "strategy": strategy, "cycle": cycle, "candidates": len(g),
                     "feasible_share": len(feasible) / len(g), "mean_U": g["score"].mean(),
                     "best_U": best["score"] if best is not None else None,
                     "best_macs": best["macs"] if best is not None else None,
                     "best_int8_top1": best["int8_top1"] if best is not None else None})
    return pd.DataFrame(rows)


def provenance(measurements: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, m in measurements.iterrows():
        prov = json.loads(m["provenance_json"] or "{}")
        versions = json.loads(prov.get("tool_versions", "{}") or "{}")
        rows.append({"measurement": int(m["measurement_id"]), "label": m["label"], "device": m["device"],
                     "device_model": prov.get("model") or prov.get("cpu", ""),
                     "android": prov.get("android_release", ""), "thermal": " -> ".join(
                         x for x in (prov.get("thermal_before"), prov.get("thermal_after")) if x),
                     "threads": m["num_threads"], "source": m["source"],
                     "runtime": prov.get("runtime") or prov.get("benchmark_binary", ""),
                     "tool_versions": ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))})
    return pd.DataFrame(rows)
