"""Screening search candidates by prediction (``ferminet synthesize --predictor``): measure on the target only
where it matters, predict the rest.

Every search candidate of a cycle reaches :meth:`Screen.measure` (through :meth:`Context.measure`) after its int8
conversion. It is **measured** on the target when

1. ``warm-up``: no predictor yet (started empty: the first :data:`MIN_FIT` measurements of the run — prototype
   and search reference included — fit one), or an energy bound/objective needs an energy predictor not fitted yet;
2. ``near a bound``: the predicted latency or energy is within its uncertainty (one sigma, :data:`NEAR_SIGMAS`)
   of a requirement bound on it (absolute, or relative to the prototype like ``latency_ms<=0.5x``) and that bound
   decides feasibility (every other requirement holds: a candidate that misses the accuracy bound is infeasible
   wherever its latency falls);
3. ``elite``: one sigma on the optimistic side it would meet every requirement and its U would rank among
   the best ``max(final_k, 1)`` feasible candidates so far (the ones the finals and the generator's update
   favour), so a decision rests on it;
4. ``share``: a fixed share (``measure_share``) of the rest, drawn per candidate id from the run's seed (a
   resumed or repeated run draws the same), to keep the predictor honest.

Otherwise its latency (and energy, once an energy predictor is fitted) is the prediction: a
:class:`~toolkit.targets.base.Measurement` whose ``source`` and energy source are ``predicted:<device>``
(``count`` 0 timed runs), stored like any other, never labelled measured. The prototype, the search reference,
the reference and the finals are always measured; the screen only sees search candidates.

Refits: on measured rows only (never predicted ones), when the run has :data:`MIN_FIT` measured networks and then
every ``refit_every`` new ones. A ``--predictor FILE`` predicts from the start and is replaced by the run's own fit
once the run has measured :data:`MIN_FIT` networks (the run's own measurements are of this device, in this state,
in this search space). Energy is predicted the same way (a second :class:`LatencyPredictor`, quantity
``energy_mj``) from the energies the target gives: on a phone measured (or virtual), on the host an estimate from
its power model, so there the predicted energy is a prediction of an estimate (still labelled ``predicted:``).

A phone farm of several device models (``--device`` repeated): each model has its own predictors, keyed by the
device of its measurements (``<device>`` of ``virtual:<device>`` / ``measured:<device>``), fitted and refitted by
the same rule on that device's measured rows only; every measurement of the farm feeds its own device's fit (the
require-on model's and the other models' alike, prototype and reference included). Requirements, and so the
decision above, are judged on the require-on model only. A candidate decided ``measured`` is measured on every
model, as without the screen. A candidate decided ``predicted`` gets the require-on model's prediction and, for
each other model, that model's own prediction (``predicted:<its device>``, the target/device fields of its
phones) when its predictor is fitted; a model with no fitted predictor yet (its own warm-up) gets the candidate
queued on its phones as usual, so it gets the data to fit on.

Counters (``screen.json`` in the run folder, logged at the end): search candidates screened, measured (by
reason), predicted (= measurements saved), and band misses: measured candidates whose measured value fell outside
the band predicted for them (``Prediction.low .. high``, mean +- 2 sigma, the band ``ferminet predictor eval``
reports; a calibrated predictor misses about 5 %). Each decision records the predicted bands as
``predicted_latency_ms`` / ``predicted_energy_mj`` (``{value, low, high, near_low, near_high, uncertainty,
source}``, in ms and mJ) and, when measured, ``measured_latency_ms`` / ``measured_energy_mj``. These summary
fields are the require-on model's; a farm's other models are under each decision's ``others`` (per device model:
``device``, ``action``, the same band and measured keys) and counted per device in the summary's ``per_device``
(``{device: {predicted, measured, checked_latency, band_misses_latency, checked_energy, band_misses_energy,
refits}}``, the require-on device included): a measured candidate's other-model measurement is checked against
the band that model's predictor gave it, when it had one.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import json
import logging
import threading
import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ToolkitError

log = logging.getLogger(__name__)

MIN_FIT = 5  # measured networks before the run fits its own predictor (LatencyPredictor needs >= 3)
MEMBERS = 12  # bootstrap members of the run's predictors (their spread is part of the uncertainty)
NEAR_SIGMAS = 1.0  # "within its uncertainty of a bound" (issue 11): measured; farther out the prediction decides
SUMMARY_FILE = "screen.json"
REASONS = ("warm-up", "near a bound", "elite", "share")


@dataclass(frozen=True)
class CandidateFacts:
    """What the screen knows of a candidate before it is measured (validation top-1, the search's reference
    top-1, MACs, params, size). ``screenable`` is True only for search candidates of a cycle."""

    candidate_id: str
    screenable: bool
    top1: float | None = None
    reference: float | None = None
    macs: int | None = None
    params: int | None = None
    size_kb: float | None = None


@dataclass(frozen=True)
class ScreenSummary:
    """The screen's counters. ``predicted`` are the measurements saved; a band miss is a measured value outside
    the band (mean +- 2 sigma) predicted for the same candidate, out of ``checked_*`` such candidates. (The
    decision to measure uses one sigma: :data:`NEAR_SIGMAS`.) These fields are the require-on model's;
    ``per_device`` has the same counts per device of a phone farm (the require-on one included)."""

    screened: int
    measured: int
    predicted: int
    reasons: dict
    checked_latency: int
    band_misses_latency: int
    checked_energy: int
    band_misses_energy: int
    refits: int
    predictor: str
    per_device: dict = dataclasses.field(default_factory=dict)

    @property
    def band_misses(self) -> int:
        return self.band_misses_latency + self.band_misses_energy

    def text(self) -> str:
        why = ", ".join(f"{n} {r}" for r, n in self.reasons.items() if n)
        text = (f"screening: {self.predicted} of {self.screened} search candidates predicted instead of measured "
                f"(measurements saved: {self.predicted}); {self.measured} measured ({why or 'none'}); band misses: "
                f"latency {self.band_misses_latency}/{self.checked_latency}, energy {self.band_misses_energy}/"
                f"{self.checked_energy} of the measured candidates that also had a prediction; "
                f"predictor fitted {self.refits} times in this run ({self.predictor})")
        others = [(d, c) for d, c in self.per_device.items() if not c.get("require_on")]
        if others:
            text += "; other device models: " + ", ".join(
                f"{d}: {c['predicted']} predicted, {c['measured']} measured, band misses latency "
                f"{c['band_misses_latency']}/{c['checked_latency']}, energy {c['band_misses_energy']}/"
                f"{c['checked_energy']}" for d, c in others)
        return text


def read_summary(out_dir: str | Path) -> ScreenSummary | None:
    """The counters a screened run wrote into its folder (None: the run was not screened)."""
    path = Path(out_dir) / SUMMARY_FILE
    if not path.is_file():
        return None
    return ScreenSummary(**json.loads(path.read_text())["summary"])


def _value(pred) -> dict | None:
    return None if pred is None else {"value": pred.value, "low": pred.low, "high": pred.high,
                                      "near_low": _near(pred)[0], "near_high": _near(pred)[1],
                                      "uncertainty": pred.uncertainty, "source": pred.source}


def _near(pred) -> tuple[float, float]:
    """The values within the prediction's uncertainty (NEAR_SIGMAS sigma) of its mean."""
    return max(0.0, pred.value - NEAR_SIGMAS * pred.uncertainty), pred.value + NEAR_SIGMAS * pred.uncertainty


class _Fit:
    """One device model's predictors and the measured rows they are fitted on (guarded by the screen's lock)."""

    def __init__(self, model: str | None):
        self.model = model  # the farm's device model name (None: the only target)
        self.device: str | None = None  # the device label of its measurements' sources (after the first)
        self.target_device: str | None = None  # Measurement.device / .target of the first measurement
        self.target_name: str | None = None
        self.latency = None  # LatencyPredictor of latency_ms (None: not fitted yet)
        self.energy = None  # ... of energy_mj
        self.own_fit = False  # the predictors in use were fitted on this run's measurements
        self.rows: dict[str, list] = {"latency_ms": [], "energy_mj": []}  # (kernels, value), measured only
        self.fitted_at = 0
        self.refits = 0

    def predictions(self, kernels):
        """(latency, energy) predictions; energy None when it has no energy predictor."""
        lat = self.latency.predict(kernels) if self.latency is not None else None
        energy = self.energy.predict(kernels) if self.energy is not None else None
        return lat, energy

    def can_predict(self) -> bool:
        """A prediction can stand in for a measurement: a latency predictor, and an energy one where the device
        gave energies (an other model's own warm-up; the require-on model's rule is :meth:`Screen._reason`)."""
        return self.latency is not None and self.device is not None and (
            self.energy is not None or not self.rows["energy_mj"])


class Screen:
    """Decides per search candidate: measure on the target, or store the prediction (see the module docstring)."""

    def __init__(self, out: Path, *, share: float, refit_every: int, seed: int, final_k: int,
                 predictor_path: str | None = None):
        from toolkit.predict import LatencyPredictor

        if not 0.0 <= share <= 1.0:
            raise InvalidArgumentError(f"measure_share must be in [0, 1]. Received: measure_share={share!r}")
        self.out = Path(out)
        self.share, self.refit_every, self.seed, self.elite_k = share, refit_every, seed, max(final_k, 1)
        self._main = _Fit(None)  # the require-on model's (the only target's) predictors
        self._others: dict[str, _Fit] = {}  # a farm's other device models' predictors, by model name
        if predictor_path:  # the require-on model's, until the run fits its own
            given = LatencyPredictor.load(predictor_path)
            if given.quantity == "energy_mj":
                self._main.energy = given
            else:
                self._main.latency = given
            log.info("screening with %s (%s)", predictor_path, given.describe())
        self._lock = threading.Lock()
        self.decisions: dict[str, dict] = {}
        self._refits_before = 0  # a resumed run's refits
        self._previous = "none fitted"  # a resumed run's predictor, as its last process described it
        self._previous_device: str | None = None  # ... its require-on device label
        self._previous_refits: dict[str, int] = {}  # ... and its other devices' refits
        saved = self.out / SUMMARY_FILE
        if saved.is_file():  # a resumed run keeps its counters; its predictor refits from new measurements
            try:
                old = json.loads(saved.read_text())
                self.decisions = dict(old.get("decisions", {}))
                self._refits_before = int(old.get("summary", {}).get("refits", 0))
                self._previous = str(old.get("summary", {}).get("predictor", self._previous))
                per_device = old.get("summary", {}).get("per_device", {})
                self._previous_device = next((d for d, c in per_device.items() if c.get("require_on")), None)
                self._previous_refits = {d: int(c.get("refits", 0)) for d, c in per_device.items()
                                         if not c.get("require_on")}
            except (ValueError, TypeError):
                log.warning("%s is damaged; the screen's counters start again", saved)

    # The require-on model's predictors and device label (what the summary's main fields describe).
    latency = property(lambda self: self._main.latency)
    energy = property(lambda self: self._main.energy)
    device = property(lambda self: self._main.device)
    refits = property(lambda self: self._refits_before + self._main.refits)

    def _other(self, model: str) -> _Fit:
        with self._lock:
            return self._others.setdefault(model, _Fit(model))

    # -- the hook -------------------------------------------------------------------------------------------------
    def measure(self, ctx, tflite_path: Path, options, facts: CandidateFacts | None) -> tuple[Future, tuple]:
        """What :meth:`Context.measure` returns: the require-on model's measurement, or a done future holding its
        predicted one (sources ``predicted:<device>``); and the farm's other models' futures (measured, or done
        with their own prediction; see the module docstring)."""
        from toolkit.predict import read_kernels

        kernels = read_kernels(tflite_path)
        models = ctx.other_models()
        fits = [self._other(m) for m in models]
        if facts is None or not facts.screenable:
            measured, others = ctx.measure(tflite_path, options, screen=False, models=models)
            self._hook(measured, kernels, self._main, None)
            for fit, future in zip(fits, others):
                self._hook(future, kernels, fit, None)
            return measured, others
        for fit in (self._main, *fits):
            self._refit(fit)
        lat, energy = self._main.predictions(kernels)
        reason = self._reason(ctx, facts, lat, energy)
        decision = {"action": "predicted" if reason is None else "measured", "reason": reason,
                    "predicted_latency_ms": _value(lat), "predicted_energy_mj": _value(energy)}
        entries, bands = {}, {}
        for fit in fits:  # each other model: its own prediction, when its predictor is fitted
            o_lat, o_energy = fit.predictions(kernels) if fit.device is not None else (None, None)
            bands[fit.model] = (o_lat, o_energy)
            predict = reason is None and fit.can_predict()
            why = None if predict else ("with the require-on model" if reason is not None else "warm-up")
            entries[fit.model] = {"device": fit.device, "action": "predicted" if predict else "measured",
                                  "reason": why,
                                  "predicted_latency_ms": _value(o_lat), "predicted_energy_mj": _value(o_energy)}
        if entries:
            decision["others"] = entries
        with self._lock:
            self.decisions[facts.candidate_id] = decision
        if reason is not None:
            measured, others = ctx.measure(tflite_path, options, screen=False, models=models)
            self._hook(measured, kernels, self._main, decision)
            for fit, future in zip(fits, others):
                self._hook(future, kernels, fit, entries[fit.model])
            self.write()
            return measured, others
        future: Future = Future()
        future.set_result(self._predicted(self._main, tflite_path, options, lat, energy))
        others = []
        for fit in fits:
            entry = entries[fit.model]
            if entry["action"] == "predicted":
                done: Future = Future()
                done.set_result(self._predicted(fit, tflite_path, options, *bands[fit.model]))
                others.append(done)
            else:  # its own warm-up: measured on its phones, so it gets data to fit on
                queued = ctx.measure_on(fit.model, tflite_path, options)
                self._hook(queued, kernels, fit, entry)
                others.append(queued)
        self.write()
        return future, tuple(others)

    def _hook(self, future: Future, kernels, fit: _Fit, decision: dict | None) -> None:
        future.add_done_callback(lambda f: self._record(f, kernels, fit, decision))

    # -- deciding -------------------------------------------------------------------------------------------------
    def _reason(self, ctx, facts: CandidateFacts, lat, energy) -> str | None:
        """Why the candidate must be measured, or None to store its prediction."""
        from toolkit.synthesis.objective import score
        from toolkit.synthesis.requirements import check

        cfg = ctx.config
        uses_energy = cfg.objective == "energy" or any(r.metric == "energy_mj" for r in ctx.requirements)
        uses_latency = cfg.objective == "latency" or any(r.metric == "latency_ms" for r in ctx.requirements)
        if lat is None or (uses_energy and energy is None):
            return "warm-up"
        (lat_lo, lat_hi), (e_lo, e_hi) = _near(lat), (_near(energy) if energy else (None, None))
        low = self._metrics(ctx, facts, lat_lo, e_lo)
        high = self._metrics(ctx, facts, lat_hi, e_hi)
        costs = [r for r in ctx.requirements if r.metric in ("latency_ms", "energy_mj")]
        # A latency/energy bound decides feasibility only when every other requirement holds (accuracy, size...):
        # near such a bound the prediction could flip the verdict, so measure.
        if check(tuple(r for r in ctx.requirements if r not in costs), low)[0]:
            for r in costs:
                key = f"{r.metric}/prototype" if r.relative else r.metric
                if r.holds(low.get(key)) != r.holds(high.get(key)):
                    return "near a bound"
        ok, _, _ = check(ctx.requirements, low)
        if ok:  # could be feasible: would its U enter the elite?
            try:
                u = score(cfg.objective, facts.top1, facts.params, facts.macs, lat_lo if uses_latency else lat.value,
                          e_lo if (energy and uses_energy) else (energy.value if energy else None))
            except InvalidArgumentError:  # e.g. the band reaches 0 ms: no optimistic U, so measure
                return "elite"
            best = sorted((c.score for c in ctx.evaluated.values()
                           if c.feasible and c.score is not None and c.phase == "search"), reverse=True)
            if len(best) < self.elite_k or u > best[self.elite_k - 1]:
                return "elite"
        draw = np.random.default_rng([self.seed, zlib.crc32(facts.candidate_id.encode())]).random()
        if draw < self.share:
            return "share"
        return None

    @staticmethod
    def _metrics(ctx, facts: CandidateFacts, latency_ms, energy_mj) -> dict:
        from toolkit.synthesis.requirements import relative_metrics

        reference = facts.top1 if facts.reference is None else facts.reference
        drop = None if facts.top1 is None or reference is None else (reference - facts.top1) * 100.0
        costs = {"latency_ms": latency_ms, "energy_mj": energy_mj, "size_kb": facts.size_kb, "macs": facts.macs,
                 "params": facts.params}
        p = ctx.prototype_result
        proto = None if p is None else {"latency_ms": p.latency_ms, "energy_mj": p.energy_mj, "size_kb": p.size_kb,
                                        "macs": p.macs, "params": p.params}
        return relative_metrics({"accuracy": facts.top1, "accuracy_drop": drop, **costs}, proto)

    @staticmethod
    def _predicted(fit: _Fit, tflite_path: Path, options, lat, energy):
        """A Measurement holding ``fit``'s predictions: every source ``predicted:<device>``, no timed run."""
        from toolkit.provenance import file_sha256
        from toolkit.targets.base import EnergyResult, LatencyStats, Measurement

        path = Path(tflite_path).resolve()
        stats = LatencyStats(init_ms=0.0, first_inference_ms=0.0, mean_ms=lat.value, median_ms=lat.value,
                             p90_ms=None, std_ms=lat.uncertainty, min_ms=lat.value, max_ms=lat.value, count=0)
        e = None
        if energy is not None and energy.value > 0:
            e = EnergyResult(energy_per_inference_mj=energy.value, inferences_per_joule=1000.0 / energy.value,
                             avg_power_mw=energy.value / lat.value * 1000.0 if lat.value > 0 else 0.0,
                             baseline_power_mw=0.0, method="predictor", source=energy.source,
                             uncertainty_mj=energy.uncertainty)
        provenance = {"predictor": fit.latency.describe(), "predicted_band_ms": f"{lat.low:.6g}..{lat.high:.6g}",
                      "note": "predicted, not measured: count 0 timed runs; std_ms is the prediction's sigma"}
        if energy is not None:
            provenance["energy_predictor"] = fit.energy.describe()
            provenance["predicted_band_mj"] = f"{energy.low:.6g}..{energy.high:.6g}"
        return Measurement(target=fit.target_name or "unknown", device=fit.target_device or "unknown",
                           source=lat.source, model_path=str(path), model_sha256=file_sha256(path),
                           size_kb=path.stat().st_size / 1024.0, latency=stats, options=options, energy=e,
                           provenance=tuple(sorted(provenance.items())))

    # -- learning -------------------------------------------------------------------------------------------------
    def _record(self, future: Future, kernels, fit: _Fit, decision: dict | None) -> None:
        """A measurement of ``fit``'s device model arrived (any thread): keep it for that model's next refit;
        count a band miss (``decision``: the candidate's decision, or its entry for another model)."""
        from toolkit.provenance import source_kind

        if future.cancelled() or future.exception() is not None:
            return
        m = future.result()
        if source_kind(m.source) == "predicted":
            return
        latency = m.latency.median_ms if m.latency.median_ms is not None else m.latency.mean_ms
        e = m.energy
        energy = e.energy_per_inference_mj if e is not None and source_kind(e.source) != "predicted" else None
        with self._lock:
            if fit.device is None:
                fit.device = m.source.split(":", 1)[1]
                fit.target_device, fit.target_name = m.device, m.target
                for p in (fit.latency, fit.energy):
                    if p is not None and p.device != fit.device:
                        log.warning("the predictor was fitted on %r, the target is %r: its predictions are labelled "
                                    "predicted:%s until this run fits its own", p.device, fit.device, p.device)
            if latency is not None and latency > 0:
                fit.rows["latency_ms"].append((kernels, float(latency)))
            if energy is not None and energy > 0:
                fit.rows["energy_mj"].append((kernels, float(energy)))
            if decision is not None:
                if fit.model is not None:
                    decision["device"] = fit.device
                decision["measured_latency_ms"] = latency
                decision["measured_energy_mj"] = energy
                for key, band_key, value in (("latency", "predicted_latency_ms", latency),
                                             ("energy", "predicted_energy_mj", energy)):
                    band = decision.get(band_key)
                    if band is not None and value is not None:
                        decision[f"{key}_miss"] = not band["low"] <= value <= band["high"]

    def _refit(self, fit: _Fit) -> None:
        """Fit (or refit) one device model's predictors on its measured rows (main thread, before a decision)."""
        from toolkit.predict import LatencyPredictor

        with self._lock:
            rows = {q: list(r) for q, r in fit.rows.items()}
            device = fit.device
        n = len(rows["latency_ms"])
        due = (not fit.own_fit and n >= MIN_FIT) or (fit.own_fit and n - fit.fitted_at >= self.refit_every)
        if not due or device is None:
            return
        try:
            fitted = {}
            for quantity, data in rows.items():
                if len(data) >= MIN_FIT:
                    fitted[quantity] = LatencyPredictor.fit_networks(
                        [k for k, _ in data], [v for _, v in data], device=device, quantity=quantity,
                        members=MEMBERS, seed=self.seed)
        except ToolkitError as exc:
            log.warning("the screen's predictor for %s could not be refitted (%s); keeping the one it has", device,
                        exc)
            return
        fit.latency = fitted.get("latency_ms", fit.latency)
        fit.energy = fitted.get("energy_mj", fit.energy)
        fit.own_fit, fit.fitted_at = True, n
        fit.refits += 1
        log.info("screen: predictor of %s refitted on %d measured networks (%s)", device, n, fit.latency.describe())

    # -- reporting ------------------------------------------------------------------------------------------------
    @staticmethod
    def _counts(entries: list[dict]) -> dict:
        measured = [d for d in entries if d["action"] == "measured"]
        return {"predicted": len(entries) - len(measured), "measured": len(measured),
                "checked_latency": sum(1 for d in measured if "latency_miss" in d),
                "band_misses_latency": sum(1 for d in measured if d.get("latency_miss")),
                "checked_energy": sum(1 for d in measured if "energy_miss" in d),
                "band_misses_energy": sum(1 for d in measured if d.get("energy_miss"))}

    def summary(self) -> ScreenSummary:
        with self._lock:  # deep: a measurement arriving in another thread adds keys to an entry
            decisions = copy.deepcopy(list(self.decisions.values()))
            labels = {m: f.device for m, f in self._others.items()}
            refits = {f.device: f.refits for f in self._others.values() if f.device is not None}
        main = self._counts(decisions)
        reasons = collections.Counter(d["reason"] for d in decisions if d["action"] == "measured")
        per_device: dict[str, dict] = {}
        if self.device is not None or self._previous_device is not None or any("others" in d for d in decisions):
            main_device = self.device or self._previous_device or "require-on"
            per_device[main_device] = {**main, "refits": self.refits, "require_on": True}
            by_device = collections.defaultdict(list)
            for d in decisions:
                for model, entry in d.get("others", {}).items():
                    by_device[entry.get("device") or labels.get(model) or model].append(entry)
            for device, entries in by_device.items():
                refitted = refits.get(device, 0) + self._previous_refits.get(device, 0)
                per_device[device] = {**self._counts(entries), "refits": refitted, "require_on": False}
        return ScreenSummary(
            screened=len(decisions), measured=main["measured"], predicted=main["predicted"],
            reasons={r: reasons.get(r, 0) for r in REASONS},
            checked_latency=main["checked_latency"], band_misses_latency=main["band_misses_latency"],
            checked_energy=main["checked_energy"], band_misses_energy=main["band_misses_energy"],
            refits=self.refits, predictor=self.latency.describe() if self.latency is not None else self._previous,
            per_device=per_device)

    def write(self) -> ScreenSummary:
        """Write ``screen.json`` (the summary and every decision) atomically into the run folder."""
        s = self.summary()
        with self._lock:
            decisions = copy.deepcopy(self.decisions)
        path = self.out / SUMMARY_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"summary": dataclasses.asdict(s), "decisions": decisions}, indent=1,
                                  default=float))
        tmp.replace(path)
        return s

    def close(self) -> ScreenSummary:
        """Write and log the counters (nothing is written for a run that screened no candidate)."""
        if not self.decisions and not (self.out / SUMMARY_FILE).exists():
            return self.summary()
        s = self.write()
        log.info("%s", s.text())
        return s


def make_screen(config, out: Path) -> Screen | None:
    """The run's screen (None when the run measures every candidate)."""
    if not config.screen:
        return None
    return Screen(out, share=config.measure_share, refit_every=config.refit_every, seed=config.seed,
                  final_k=config.final_k, predictor_path=config.predictor_path)
