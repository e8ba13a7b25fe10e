"""Fitting a predictor from the results store, and checking one against it.

Rows used, for one device (``device`` matches the store's ``device`` column — a phone serial, ``host:port`` or
``host`` — or the part after ``:`` of the source label, e.g. ``pixel_6`` for ``virtual:pixel_6``):

- ``measurements``: the median latency (``median_ms``, else ``mean_ms``) or the energy per inference, of every
  profile whose model file is still on disk; per-op profiles (``op_profile_json``) add per-kernel times,
  matched to kernels by output tensor name.
- ``candidates`` (synthesis): ``latency_ms`` / ``energy_mj`` of candidates whose model is not already counted
  from ``measurements``, through ``models.path``.

Estimated numbers (``estimated:``) and predictions (``predicted:``) are never fitted on: a predictor learns
measured (or virtual-phone) values only.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, StoreError
from toolkit.predict.kernels import Kernel, read_kernels
from toolkit.predict.model import QUANTITIES, LatencyPredictor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreSample:
    """One measured network of the store: its model file, the measured value and where it came from."""

    model_path: str
    value: float
    source: str
    op_times: tuple[tuple[str, float], ...] = ()  # (output tensor name, ms) from a per-op profile


@dataclass(frozen=True)
class Evaluation:
    """Predictions against measurements of one device. Shares are fractions of ``networks``."""

    networks: int
    within_10pct: float
    within_5pct: float
    rmse: float
    kendall_tau: float
    in_band: float  # measured value inside mean +- 2 sigma
    unit: str


def _op_name(label: str) -> str:
    """The output tensor name in a stored per-op row: rows are labelled ``[<name>]:<position in the run>``."""
    m = re.match(r"^\[(.*)\]:\d+$", label)
    return m.group(1) if m else label


def _matches(device: str, row_device: str | None, source: str | None) -> bool:
    if row_device == device:
        return True
    return bool(source) and source.split(":", 1)[-1] == device


def store_samples(db: str | Path, device: str, quantity: str = "latency_ms") -> list[StoreSample]:
    """The store's measured networks for ``device`` (see the module docstring for which rows)."""
    from toolkit.provenance import source_kind
    from toolkit.store import Store

    if quantity not in QUANTITIES:
        raise InvalidArgumentError(f"quantity must be one of {tuple(QUANTITIES)}. Received: quantity={quantity!r}")
    path = Path(db)
    if not path.is_file():
        raise StoreError(f"No results store at {str(path)!r}. Measure models first (ferminet profile), or pass --db")
    out: list[StoreSample] = []
    seen: set[str] = set()
    missing = 0
    with Store(path) as store:
        rows = store.query("SELECT m.*, mo.path AS stored_path FROM measurements m LEFT JOIN models mo "
                           "USING(model_id) ORDER BY m.measurement_id")
        for r in rows:
            if not _matches(device, r["device"], r["source"]):
                continue
            if quantity == "latency_ms":
                value, source = r["median_ms"] if r["median_ms"] is not None else r["mean_ms"], r["source"]
            else:
                value, source = r["energy_mj"], r["energy_source"]
            if value is None or not value > 0 or not source or source_kind(source) in ("estimated", "predicted"):
                continue
            model_path = next((p for p in (r["model_path"], r["stored_path"]) if p and Path(p).is_file()), None)
            if model_path is None:
                missing += 1
                continue
            op_times = ()
            if quantity == "latency_ms":
                try:
                    ops = json.loads(r["op_profile_json"] or "[]")
                except ValueError:
                    ops = []
                op_times = tuple((_op_name(o.get("name", "")), float(o.get("avg_ms", 0.0))) for o in ops
                                 if o.get("name") and o.get("avg_ms", 0) > 0)
            out.append(StoreSample(model_path=str(model_path), value=float(value), source=source, op_times=op_times))
            seen.add(r["model_id"])
        value_col, source_col = ("latency_ms", "latency_source") if quantity == "latency_ms" else \
            ("energy_mj", "energy_source")
        rows = store.query(f"SELECT c.model_id, c.{value_col} AS value, c.{source_col} AS source, mo.path AS path "
                           f"FROM candidates c LEFT JOIN models mo USING(model_id) WHERE c.{value_col} IS NOT NULL")
        for r in rows:
            if r["model_id"] in seen or not r["source"] or not _matches(device, None, r["source"]):
                continue
            if source_kind(r["source"]) in ("estimated", "predicted") or not r["value"] > 0:
                continue
            if not r["path"] or not Path(r["path"]).is_file():
                missing += 1
                continue
            out.append(StoreSample(model_path=r["path"], value=float(r["value"]), source=r["source"]))
            seen.add(r["model_id"])
    if missing:
        log.warning("%d measured models of %s are no longer on disk and were left out", missing, device)
    return out


def fit_from_store(db: str | Path, device: str, *, quantity: str = "latency_ms", members: int = 16,
                   seed: int = 0) -> LatencyPredictor:
    """Fit a predictor of ``quantity`` on ``device`` from everything the store measured there."""
    samples = store_samples(db, device, quantity)
    if len(samples) < 3:
        raise InvalidArgumentError(
            f"A predictor needs at least 3 measured models of the device; the store has {len(samples)} for "
            f"device={device!r} ({quantity}). Measure more (ferminet profile m.tflite --device ...), or check "
            f"the device name against `ferminet report`")
    kernel_lists, values, op_times = [], [], []
    for s in samples:
        kernels = read_kernels(s.model_path)
        by_name = {k.name: k for k in kernels}
        kernel_lists.append(kernels)
        values.append(s.value)
        op_times += [(by_name[name], ms) for name, ms in s.op_times if name in by_name]
    return LatencyPredictor.fit_networks(kernel_lists, values, device=device, quantity=quantity,
                                         op_times=op_times, members=members, seed=seed)


def prediction_errors(predicted, measured) -> dict[str, float]:
    """How close ``predicted`` values come to ``measured`` ones: the shares within +-10 % and +-5 % of the measured
    value, the RMSE (in their unit) and Kendall's tau-b (NaN for fewer than 2 values)."""
    from scipy.stats import kendalltau

    pred, y = np.asarray(predicted, float), np.asarray(measured, float)
    rel = np.abs(pred - y) / y
    return {"within_10pct": float(np.mean(rel <= 0.10)), "within_5pct": float(np.mean(rel <= 0.05)),
            "rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
            "kendall_tau": float(kendalltau(pred, y).statistic) if len(y) > 1 else float("nan")}


def evaluate(predictor: LatencyPredictor, kernel_lists: list[tuple[Kernel, ...]], values: list[float]) -> Evaluation:
    """How close ``predictor`` comes to measured ``values`` of the networks ``kernel_lists``."""
    if not kernel_lists:
        raise InvalidArgumentError("Nothing to evaluate on: 0 measured networks")
    preds = predictor.predict_many(kernel_lists)
    mean = np.array([p.value for p in preds])
    sigma = np.array([p.uncertainty for p in preds])
    y = np.asarray(values, float)
    return Evaluation(networks=len(y), **prediction_errors(mean, y),
                      in_band=float(np.mean(np.abs(mean - y) <= 2 * sigma)), unit=preds[0].unit)


def evaluate_on_store(predictor: LatencyPredictor, db: str | Path, device: str | None = None) -> Evaluation:
    """Evaluate ``predictor`` on the store's measurements of ``device`` (default: the predictor's device)."""
    samples = store_samples(db, device or predictor.device, predictor.quantity)
    return evaluate(predictor, [read_kernels(s.model_path) for s in samples], [s.value for s in samples])
