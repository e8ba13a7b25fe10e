"""One network, evaluated: convert to int8 (validated on the validation split), measure on the target, score U,
judge the requirements, and the store rows that keep it. Search candidates, shortlisted ones, the prototype, the
reference and the finals all go through :func:`assess`; only reported networks (:data:`REPORTED_PHASES`) are read on
the test split.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.config import SynthesisConfig
from toolkit.synthesis.requirements import Requirement, check, relative_metrics

log = logging.getLogger(__name__)

REPORTED_PHASES = ("prototype", "reference", "final")  # read on test once; "search" and "shortlist" never


@dataclass(frozen=True)
class CandidateResult:
    """One evaluated network. ``int8_top1`` is on the validation split (what decisions use); ``test_top1`` is
    set only for reported networks (prototype, reference, finals). ``feasible`` is the requirement indicator on
    validation; ``test_feasible`` the same requirements judged on the test split (finals and prototype)."""

    candidate_id: str
    cycle: int
    strategy: str
    seed: int | None
    spec_hash: str
    status: str  # "ok" | "failed"
    failure_reason: str | None
    float_top1: float | None = None
    int8_top1: float | None = None
    macs: int | None = None
    params: int | None = None
    size_kb: float | None = None
    latency_ms: float | None = None
    latency_source: str | None = None
    energy_mj: float | None = None
    energy_source: str | None = None
    score: float | None = None
    feasible: bool = False
    violation: float = 0.0
    keras_path: str | None = None
    tflite_path: str | None = None
    choices: dict = field(default_factory=dict)
    phase: str = "search"
    test_top1: float | None = None
    test_feasible: bool | None = None
    parent: str | None = None  # a final's (or a shortlisted network's) candidate it was chosen as
    proxy_top1: float | None = None  # a final's (or shortlisted network's) parent's validation top-1
    energy_below_resolution: bool = False  # energy_mj is None: the net energy was under the measurement's floor
    energy_resolution_mj: float | None = None


class Context:
    """What every evaluation needs: the three splits, the target, the prototype, the evaluator.

    ``phones``: a phone farm to measure on (a :class:`~toolkit.targets.farm.PhoneFarm`, or the Ray cluster's
    :class:`~toolkit.scale.phones.RayPhonePool`; closed with the context); default: the config's phones, a farm
    when there are several. ``connect=False``: no target at all (a Ray worker converts; the driver measures)."""

    def __init__(self, config: SynthesisConfig, out: Path, requirements: tuple[Requirement, ...], *,
                 phones=None, connect: bool = True):
        from toolkit.data import load_dataset
        from toolkit.targets import get_target

        self.config = config
        self.out = out
        self.requirements = requirements
        data = load_dataset(config.dataset, path=config.data_path, n_train=config.n_train, seed=config.split_seed)
        data = data.holdout(min(config.n_val, len(data.x_train) // 5), seed=config.split_seed)
        self.test = data  # the test split: read only by report_on_test
        # Training sees train; anything a trainer evaluates on the side is the validation split, never test.
        self.train_data = data.validation_as_test()
        self.search_data = data.validation_as_test(config.n_eval)
        rng = np.random.default_rng(config.split_seed)
        self.recal_x = data.x_train[rng.choice(len(data.x_train), min(config.recal_samples, len(data.x_train)),
                                               replace=False)]
        self.farm = None  # several phones: their PhoneFarm / RayPhonePool; self.target measures on require_on's
        self.require_on: str | None = None
        self.target = None  # connect=False (a Ray worker: it converts, the driver measures)
        if phones is None and connect and config.target == "android" and len(config.phones) > 1:
            from toolkit.targets.farm import PhoneFarm

            phones = PhoneFarm(config.phones)  # every phone reached now, not after training the prototype
        if phones is not None:
            self._use_phones(phones)
        elif connect:
            kwargs = {"device": config.device} if config.target == "android" else {}
            self.target = get_target(config.target, **kwargs)
            if config.target == "android":
                self.target.device.info()  # an unreachable phone fails now, not after training the prototype
        self.prototype_model = None
        self.space_model = None  # the trained network the space is derived from: the prototype, or the space root
        self.space_result: CandidateResult | None = None  # its assessment (validation top-1, MACs, ...)
        self.importance: dict[str, np.ndarray] = {}
        self.space = None
        self.reused_supernet: Path | None = None  # the checkpoint folder of a supernet this run reuses (checked)
        self.evaluator = None
        self.shortlist_data = None  # the shortlist's fine-tuning images (toolkit.synthesis.shortlist), made once
        self.op_profile: tuple = ()  # the target's per-op profile of the prototype (empty: cost from MACs)
        self.search_reference: float | None = None  # proxy top-1 of the prototype architecture (validation)
        self.final_reference: CandidateResult | None = None
        self.reused_reference: Path | None = None  # reference.keras of another run (finals.reused_reference)
        self.teacher = None  # (keras path, model): the reference finals distill from (finals.final_teacher)
        self.prototype_result: CandidateResult | None = None  # what relative bounds ("energy_mj<=0.7x") divide by
        self.evaluated: dict[str, CandidateResult] = {}  # spec_hash -> first successful result
        self.progress = False
        self.executor = None  # None: this process evaluates; else e.g. toolkit.scale.tasks.RayExecutor
        self.screen = None  # --predictor: a toolkit.synthesis.screen.Screen (the loop sets it)

    def prototype_spec(self):
        """The run's prototype architecture for its dataset's input shape and classes."""
        from toolkit.arch import get_prototype

        cfg = self.config
        return get_prototype(cfg.prototype, self.test.input_shape, self.test.num_classes, cfg.prototype_width)

    def prototype_choices(self) -> dict:
        """The prototype as choices of the run's space; none when the space comes from another root."""
        return {} if self.config.space_root else self.space.prototype_choices()

    def _use_phones(self, farm) -> None:
        from toolkit.targets.farm import same_model

        self.farm = farm
        models = farm.models()
        wanted = self.config.require_on or models[0]
        matching = [m for m in models if same_model(m, wanted)]
        if not matching:
            farm.close()
            raise InvalidArgumentError(f"--require-on names a device model none of the phones is; they are "
                                       f"{', '.join(models)}. Received: require_on={self.config.require_on!r}")
        self.require_on = matching[0]
        self.target = farm.target(self.require_on)

    def measure(self, tflite_path: Path, options, facts=None, *, screen: bool = True, models=None
                ) -> tuple[Future, tuple[Future, ...]]:
        """Queue the measurement of ``tflite_path``: (the one requirements are judged on, the other device models'
        ones). One target: measured now, in this thread (the future is done on return). Several phones: queued on
        the farm, on a phone of the require-on model and one of each other model. With --predictor (``screen``), a
        search candidate (``facts``, a :class:`toolkit.synthesis.screen.CandidateFacts`) may get its prediction
        instead: a done future whose Measurement's sources are ``predicted:<device>``, and for each other model a
        done future with that model's own prediction, or its measurement queued while it has no predictor yet.
        ``models``: the other models, in the order of their futures (default :meth:`other_models`; the screen
        passes the list it keys its predictors by)."""
        if screen and self.screen is not None:
            return self.screen.measure(self, tflite_path, options, facts)
        if self.farm is not None:
            others = tuple(self.measure_on(m, tflite_path, options)
                           for m in (self.other_models() if models is None else models))
            return self.measure_on(self.require_on, tflite_path, options), others
        future: Future = Future()
        try:
            future.set_result(self.target.profile(tflite_path, options))
        except ToolkitError as exc:
            future.set_exception(exc)
        return future, ()

    def measure_on(self, model: str, tflite_path: Path, options) -> Future:
        """Queue ``tflite_path`` on the farm, on a phone of device model ``model``, never predicted."""
        return self.farm.submit(tflite_path, options, model=model)

    def other_models(self) -> list[str]:
        """The farm's device models other than the require-on one, in the order :meth:`measure` returns their
        futures (none without a farm)."""
        return [] if self.farm is None else [m for m in self.farm.models() if m != self.require_on]

    def close(self) -> None:
        if self.farm is not None:
            self.farm.close()


def _costs(c: CandidateResult) -> dict[str, float | None]:
    return {"latency_ms": c.latency_ms, "energy_mj": c.energy_mj, "size_kb": c.size_kb, "macs": c.macs,
            "params": c.params}


def _metrics(top1: float | None, reference: float | None, c: CandidateResult,
             prototype: CandidateResult | None) -> dict[str, float | None]:
    """What requirements compare: accuracy, the drop against ``reference``, the costs, and the costs relative to
    the run's prototype (for bounds like ``energy_mj<=0.7x``; the prototype itself is 1x)."""
    drop = None if (top1 is None or reference is None) else (reference - top1) * 100.0
    return relative_metrics({"accuracy": top1, "accuracy_drop": drop, **_costs(c)},
                            _costs(prototype) if prototype is not None else None)


def assess(ctx: Context, model, spec, *, candidate_id: str, cycle: int, strategy: str, seed: int | None,
           choices: dict, phase: str, reference: float | None, test_reference: float | None = None,
           folder: Path | None = None, **extra) -> tuple[CandidateResult, tuple]:
    """Convert (int8, validated on validation), measure, score; for reported phases also top-1 on test, once."""
    return start_assess(ctx, model, spec, candidate_id=candidate_id, cycle=cycle, strategy=strategy, seed=seed,
                        choices=choices, phase=phase, reference=reference, test_reference=test_reference,
                        folder=folder, **extra).finish()


def start_assess(ctx: Context, model, spec, *, candidate_id: str, cycle: int, strategy: str, seed: int | None,
                 choices: dict, phase: str, reference: float | None, test_reference: float | None = None,
                 folder: Path | None = None, **extra) -> "Assessment":
    """:func:`prepare` (the CPU part), then the measurement queued (:meth:`Prepared.queue`);
    :meth:`Assessment.finish` waits for it and scores."""
    return prepare(ctx, model, spec, candidate_id=candidate_id, cycle=cycle, strategy=strategy, seed=seed,
                   choices=choices, phase=phase, reference=reference, test_reference=test_reference, folder=folder,
                   **extra).queue(ctx)


def prepare(ctx: Context, model, spec, *, candidate_id: str, cycle: int, strategy: str, seed: int | None,
            choices: dict, phase: str, reference: float | None, test_reference: float | None = None,
            folder: Path | None = None, **extra) -> "Prepared":
    """The CPU part of :func:`assess`: int8 conversion validated on validation, MACs, params; nothing measured.
    It needs no target, so a Ray worker runs it and the driver queues the measurement on its phones."""
    from toolkit.arch import count_macs, count_params
    from toolkit.convert import convert_model
    from toolkit.targets import ProfileOptions

    cfg = ctx.config
    folder = folder or ctx.out / {"search": "candidates", "shortlist": "shortlist"}.get(phase, "finals")
    folder.mkdir(parents=True, exist_ok=True)
    keras_path = None
    if phase in REPORTED_PHASES:
        keras_path = folder / f"{candidate_id}.keras"
        model.save(keras_path)
    tflite_path = folder / f"{candidate_id}_int8.tflite"
    conv = convert_model(model, ctx.search_data, tflite_path, mode="int8")
    # On a phone the energy needs a run long enough for the power sampler (>= 1 s at ~20 Hz).
    min_secs = 1.0 if cfg.target == "android" else 0.0
    options = ProfileOptions(num_threads=cfg.threads, num_runs=cfg.profile_runs, warmup_runs=5, min_secs=min_secs)
    return Prepared(spec, conv, count_macs(model), count_params(model), tflite_path, keras_path, options, dict(
        candidate_id=candidate_id, cycle=cycle, strategy=strategy, seed=seed, choices=choices, phase=phase,
        reference=reference, test_reference=test_reference, extra=extra))


@dataclass(frozen=True)
class Prepared:
    """A network converted and counted, not yet measured (picklable: a Ray task returns it)."""

    spec: object  # ArchSpec
    conv: object  # ConversionResult
    macs: int
    params: int
    tflite_path: Path
    keras_path: Path | None
    options: object  # ProfileOptions
    args: dict

    def queue(self, ctx: Context) -> "Assessment":
        """Queue the measurement on ``ctx``'s target (or phones)."""
        from toolkit.synthesis.screen import CandidateFacts

        a = self.args  # what --predictor's screen decides on (it screens search candidates of a cycle only)
        facts = CandidateFacts(a["candidate_id"], a["phase"] == "search" and a["cycle"] >= 0, self.conv.tflite_top1,
                               a["reference"], self.macs, self.params, self.conv.size_kb)
        measured, others = ctx.measure(self.tflite_path, self.options, facts)
        return Assessment(ctx, self.spec, self.conv, self.macs, self.params, self.tflite_path, self.keras_path,
                          measured, others, self.args)


class Assessment:
    """A network converted, its measurement queued; :meth:`finish` waits for it (raising its error, as
    ``target.profile`` would) and returns (CandidateResult, store rows)."""

    def __init__(self, ctx, spec, conv, macs, params, tflite_path, keras_path, measured, others, args):
        self.ctx, self.spec, self.conv, self.macs, self.params = ctx, spec, conv, macs, params
        self.tflite_path, self.keras_path, self.measured, self.others, self.args = (
            tflite_path, keras_path, measured, others, args)

    def done(self) -> bool:
        return self.measured.done() and all(f.done() for f in self.others)

    def finish(self) -> tuple[CandidateResult, tuple]:
        m = dataclasses.replace(self.measured.result(), macs=self.macs)
        more = []
        for future in self.others:  # the other device models: stored with their provenance, not judged
            try:
                more.append(dataclasses.replace(future.result(), macs=self.macs))
            except ToolkitError as exc:
                log.warning("%s: no measurement on another device model: %s", self.args["candidate_id"], exc)
        result, (record, m) = _score(self.ctx, self.spec, self.conv, self.macs, self.params, self.tflite_path,
                                     self.keras_path, m, **self.args)
        return result, (record, m, *more)


def _score(ctx: Context, spec, conv, macs, params, tflite_path, keras_path, m, *, candidate_id: str, cycle: int,
           strategy: str, seed: int | None, choices: dict, phase: str, reference: float | None,
           test_reference: float | None, extra: dict) -> tuple[CandidateResult, tuple]:
    from toolkit.provenance import file_sha256
    from toolkit.store import ModelRecord
    from toolkit.synthesis.objective import score

    cfg = ctx.config
    energy = m.energy
    test_top1 = report_on_test(ctx, tflite_path) if phase in REPORTED_PHASES else None
    result = CandidateResult(
        candidate_id=candidate_id, cycle=cycle, strategy=strategy, seed=seed, spec_hash=spec.spec_hash(),
        status="ok", failure_reason=None, float_top1=conv.keras_top1, int8_top1=conv.tflite_top1, macs=macs,
        params=params, size_kb=conv.size_kb, latency_ms=m.latency.median_ms, latency_source=m.source,
        energy_mj=energy.energy_per_inference_mj if energy else None,
        energy_source=energy.source if energy else None, keras_path=str(keras_path) if keras_path else None,
        energy_below_resolution=bool(energy and energy.below_resolution),
        energy_resolution_mj=energy.resolution_mj if energy else None,
        tflite_path=str(tflite_path), choices=choices, phase=phase, test_top1=test_top1, **extra)
    # Without a reference the network is its own (the prototype): its drop is 0.
    reference = conv.tflite_top1 if reference is None else reference
    missing = m.unmeasured()  # e.g. an energy below resolution: never meets an energy bound
    ok, reason, violation = check(ctx.requirements, _metrics(conv.tflite_top1, reference, result, ctx.prototype_result),
                                    missing)
    test_ok = None
    if test_top1 is not None:
        test_reference = test_top1 if test_reference is None else test_reference
        test_ok, test_reason, _ = check(ctx.requirements, _metrics(test_top1, test_reference, result,
                                                                 ctx.prototype_result), missing)
        if not test_ok and ok:
            reason = f"on test: {test_reason}"
    u = score(cfg.objective, conv.tflite_top1, params, macs, m.latency.median_ms, result.energy_mj)
    result = dataclasses.replace(result, score=u, feasible=ok, violation=violation, test_feasible=test_ok,
                                 failure_reason=None if ok and test_ok is not False
                                 else f"requirements not met: {reason}")
    record = ModelRecord(model_id=file_sha256(tflite_path), path=str(tflite_path.resolve()), format="tflite",
                         name=f"{strategy}:{candidate_id}", quantization="int8", size_kb=conv.size_kb, macs=macs,
                         params=params, dataset=ctx.test.name, keras_top1=conv.keras_top1,
                         tflite_top1=conv.tflite_top1, accuracy_drop_pt=conv.drop_pt,
                         eval_samples=conv.eval_samples, spec_json=spec.to_json())
    return result, (record, m)


def load_prototype_file(ctx: Context, path: str | Path, spec, *, role: str, fix: str):
    """A saved prototype-architecture network (an earlier run's prototype or reference), refused unless its layers
    are those ``spec`` builds; ``role`` names it and ``fix`` says what to pass instead in the error."""
    from toolkit.arch import build_model
    from toolkit.convert import load_keras_model

    model = load_keras_model(path)
    if [layer.name for layer in model.layers] != [layer.name for layer in build_model(spec).layers]:
        cfg = ctx.config
        raise InvalidArgumentError(f"{str(path)!r} is not a {cfg.prototype} {role} for {cfg.dataset} built by "
                                   f"ferminet (its layers differ); {fix}")
    return model


def report_on_test(ctx: Context, tflite_path: Path) -> float:
    """int8 top-1 on the whole test split: called once per reported network, never during the search."""
    from toolkit.convert.interpreter import evaluate_tflite

    return evaluate_tflite(tflite_path, ctx.test.x_test, ctx.test.y_test, num_threads=ctx.config.threads)


def write_candidate(store, run_id: str, c: CandidateResult, spec_json: str | None, rows: tuple | None) -> None:
    with store.transaction() as conn:
        model_id = None
        if rows:
            record, measurement, *more = rows  # more: the other device models' measurements of a phone farm
            for m in (measurement, *more):
                store._insert_measurement(conn, m, run_id, record)
            model_id = record.model_id
        # float_top1 / int8_top1 / requirements_met are on the validation split (top1_split); test_top1 and
        # test_requirements_met only exist for reported networks (phase prototype, reference, final).
        conn.execute(
            "INSERT INTO candidates(run_id, candidate_id, cycle, strategy, seed, parent, spec_hash, spec_json, status,"
            " failure_reason, float_top1, int8_top1, macs, params, size_kb, latency_ms, energy_mj, energy_source,"
            " latency_source, score, requirements_met, model_id, phase, top1_split, test_top1,"
            " test_requirements_met, proxy_top1, extra_json, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, c.candidate_id, c.cycle, c.strategy, c.seed, c.parent or ("prototype" if c.cycle >= 0 else None),
             c.spec_hash, spec_json, c.status, c.failure_reason, c.float_top1, c.int8_top1, c.macs, c.params,
             c.size_kb, c.latency_ms, c.energy_mj, c.energy_source, c.latency_source, c.score, int(c.feasible),
             model_id, c.phase, "validation", c.test_top1,
             None if c.test_feasible is None else int(c.test_feasible), c.proxy_top1,
             json.dumps({"choices": c.choices, "violation": c.violation, "keras_path": c.keras_path,
                         "tflite_path": c.tflite_path, "energy_below_resolution": c.energy_below_resolution,
                         "energy_resolution_mj": c.energy_resolution_mj}, default=str), time.time()))


def candidate_from_row(row) -> CandidateResult:
    extra = json.loads(row["extra_json"] or "{}")
    return CandidateResult(
        candidate_id=row["candidate_id"], cycle=row["cycle"], strategy=row["strategy"], seed=row["seed"],
        spec_hash=row["spec_hash"], status=row["status"], failure_reason=row["failure_reason"],
        float_top1=row["float_top1"], int8_top1=row["int8_top1"], macs=row["macs"], params=row["params"],
        size_kb=row["size_kb"], latency_ms=row["latency_ms"], latency_source=row["latency_source"],
        energy_mj=row["energy_mj"], energy_source=row["energy_source"], score=row["score"],
        feasible=bool(row["requirements_met"]), violation=float(extra.get("violation", 0.0)),
        keras_path=extra.get("keras_path"), tflite_path=extra.get("tflite_path"), choices=extra.get("choices", {}),
        phase=row["phase"] or "search", test_top1=row["test_top1"],
        test_feasible=None if row["test_requirements_met"] is None else bool(row["test_requirements_met"]),
        parent=row["parent"] if row["phase"] in ("final", "shortlist") else None, proxy_top1=row["proxy_top1"],
        energy_below_resolution=bool(extra.get("energy_below_resolution")),
        energy_resolution_mj=extra.get("energy_resolution_mj"))
