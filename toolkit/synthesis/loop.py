"""The synthesis loop: the one module that drives the data path.

    prototype (train, convert int8, measure) -> inquisitor probe -> prior on G
    cycle: G.sample(seed) x population -> build + inherit -> fine-tune -> int8 (validated) -> measure on the target
           -> U and 1_r -> store the candidate -> inquisitor.update(G)

Every candidate is written to the store the moment it finishes (one transaction: candidate, model and
measurement rows). Candidate ids and seeds are deterministic (``c<cycle>-<index>``), so ``resume=True``
skips the stored ones and rebuilds the generator by replaying the stored cycles through the same update rule:
a killed run continues exactly where it stopped, without losing or redoing a finished candidate.

Strategies share the same build, inheritance, fine-tuning, conversion and measurement:
``gensynth`` (learned generator), ``random`` (the same space, uniform, never updated), ``width`` (uniform
width scaling of the prototype), ``l1prune`` (Li et al. 2017: filters ranked by kernel L1 norm, uniform
prune ratios).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.requirements import Requirement, check, parse_requirements

log = logging.getLogger(__name__)

STRATEGIES = ("gensynth", "random", "width", "l1prune")


@dataclass(frozen=True)
class SynthesisConfig:
    """Everything that defines a synthesis run (stored in ``run.json``)."""

    prototype: str = "resnet20"
    dataset: str = "fashion_mnist"
    data_path: str | None = None
    target: str = "host"
    device: str | None = None
    requirements: tuple[str, ...] = ("accuracy_drop<=1.0pt",)
    objective: str = "netscore"
    strategy: str = "gensynth"
    cycles: int = 5
    population: int = 8
    budget_s: float | None = None
    prototype_width: float = 1.0
    prototype_path: str | None = None  # a trained prototype (.keras) to start from instead of training one
    prototype_epochs: int = 3
    finetune_epochs: int = 2
    n_train: int | None = None
    finetune_n_train: int | None = 20_000
    n_eval: int = 2_000
    probe_samples: int = 512
    threads: int = 1
    profile_runs: int = 30
    seed: int = 0
    width_options: tuple[float, ...] = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
    learning_rate: float = 2e-3
    finetune_learning_rate: float = 2e-3

    def __post_init__(self) -> None:
        from toolkit.arch import PROTOTYPES
        from toolkit.synthesis.objective import OBJECTIVES

        if self.strategy not in STRATEGIES:
            raise InvalidArgumentError(f"Unknown strategy {self.strategy!r}. Use one of {', '.join(STRATEGIES)}")
        if self.prototype not in PROTOTYPES:
            raise InvalidArgumentError(f"Unknown prototype {self.prototype!r}. Use one of {', '.join(PROTOTYPES)}")
        if self.objective not in OBJECTIVES:
            raise InvalidArgumentError(f"Unknown objective {self.objective!r}. Use one of {', '.join(OBJECTIVES)}")
        for name in ("cycles", "population", "prototype_epochs", "finetune_epochs", "threads", "profile_runs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        if self.budget_s is not None and not self.budget_s > 0:
            raise InvalidArgumentError(f"The budget must be > 0. Received: budget={self.budget_s!r}; e.g. --budget 60m")
        parse_requirements(self.requirements)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthesisConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for key in ("requirements", "width_options"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


@dataclass(frozen=True)
class CandidateResult:
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


@dataclass(frozen=True)
class SynthesisResult:
    run_id: str
    out_dir: str
    db: str
    strategy: str
    prototype: CandidateResult
    best: CandidateResult | None
    candidates: tuple[CandidateResult, ...]
    wall_s: float
    stopped: str  # "done" | "budget"

    @property
    def feasible(self) -> tuple[CandidateResult, ...]:
        return tuple(c for c in self.candidates if c.feasible)


class _Context:
    """What every candidate evaluation needs: data, target, prototype and its probe."""

    def __init__(self, config: SynthesisConfig, out: Path, requirements: tuple[Requirement, ...]):
        from toolkit.data import load_dataset
        from toolkit.targets import get_target

        self.config = config
        self.out = out
        self.requirements = requirements
        data = load_dataset(config.dataset, path=config.data_path, n_train=config.n_train, seed=config.seed)
        self.data = data
        self.finetune_data = data.subset(n_train=config.finetune_n_train, seed=config.seed) \
            if config.finetune_n_train else data
        self.eval_data = data.subset(n_test=config.n_eval, seed=config.seed) if config.n_eval else data
        kwargs = {"device": config.device} if config.target == "android" else {}
        self.target = get_target(config.target, **kwargs)
        if config.target == "android":
            self.target.device.info()  # an unreachable phone fails now, not after training the prototype
        self.prototype_model = None
        self.importance: dict[str, np.ndarray] = {}
        self.l1: dict[str, np.ndarray] = {}
        self.space = None
        self.proto_int8_top1: float | None = None
        self.evaluated: dict[str, CandidateResult] = {}  # spec_hash -> first result
        self.progress = False


def _seed(config: SynthesisConfig, cycle: int, index: int) -> int:
    return config.seed * 1_000_003 + cycle * 1_000 + index


def _metrics(c: CandidateResult, proto_int8: float | None) -> dict[str, float | None]:
    drop = None if (c.int8_top1 is None or proto_int8 is None) else (proto_int8 - c.int8_top1) * 100.0
    return {"accuracy": c.int8_top1, "accuracy_drop": drop, "latency_ms": c.latency_ms, "energy_mj": c.energy_mj,
            "size_kb": c.size_kb, "macs": c.macs, "params": c.params}


def _evaluate(ctx: _Context, spec, *, candidate_id: str, cycle: int, strategy: str, seed: int | None,
              choices: dict, importance: dict, train_from_scratch: bool = False,
              folder: Path | None = None, model=None) -> tuple[CandidateResult, tuple]:
    """Build, inherit, fine-tune, convert, measure, score. Returns the result and rows for the store."""
    from toolkit.arch import build_model, count_macs, count_params
    from toolkit.convert import convert_model
    from toolkit.provenance import file_sha256
    from toolkit.store import ModelRecord
    from toolkit.synthesis.inherit import inherit_weights
    from toolkit.synthesis.objective import score
    from toolkit.targets import ProfileOptions
    from toolkit.train import TrainBudget, train

    cfg = ctx.config
    folder = folder or ctx.out / "candidates"
    folder.mkdir(parents=True, exist_ok=True)
    if model is not None:
        pass  # an already trained network (a given prototype): evaluate as it is
    elif train_from_scratch:
        model = build_model(spec, seed=seed if seed is not None else cfg.seed)
        train(model, ctx.data, TrainBudget(epochs=cfg.prototype_epochs), learning_rate=cfg.learning_rate,
              seed=cfg.seed, progress=ctx.progress)
    else:
        model = build_model(spec, seed=seed if seed is not None else cfg.seed)
        inherit_weights(ctx.prototype_model, model, ctx.space, spec, importance)
        train(model, ctx.finetune_data, TrainBudget(epochs=cfg.finetune_epochs),
                        learning_rate=cfg.finetune_learning_rate, seed=cfg.seed, progress=False)
    keras_path = folder / f"{candidate_id}.keras"
    model.save(keras_path)
    tflite_path = folder / f"{candidate_id}_int8.tflite"
    conv = convert_model(model, ctx.eval_data, tflite_path, mode="int8")
    macs, params = count_macs(model), count_params(model)
    # On a phone the energy needs a run long enough for the power sampler (>= 1 s at ~20 Hz).
    min_secs = 1.0 if cfg.target == "android" else 0.0
    m = ctx.target.profile(tflite_path, ProfileOptions(num_threads=cfg.threads, num_runs=cfg.profile_runs,
                                                       warmup_runs=5, min_secs=min_secs))
    m = dataclasses.replace(m, macs=macs)
    energy = m.energy
    result = CandidateResult(
        candidate_id=candidate_id, cycle=cycle, strategy=strategy, seed=seed, spec_hash=spec.spec_hash(),
        status="ok", failure_reason=None, float_top1=conv.keras_top1, int8_top1=conv.tflite_top1, macs=macs,
        params=params, size_kb=conv.size_kb, latency_ms=m.latency.median_ms, latency_source=m.source,
        energy_mj=energy.energy_per_inference_mj if energy else None,
        energy_source=energy.source if energy else None, keras_path=str(keras_path),
        tflite_path=str(tflite_path), choices=choices)
    proto = ctx.proto_int8_top1 if ctx.proto_int8_top1 is not None else conv.tflite_top1
    ok, reason, violation = check(ctx.requirements, _metrics(result, proto))
    u = score(cfg.objective, conv.tflite_top1, params, macs, m.latency.median_ms, result.energy_mj)
    result = dataclasses.replace(result, score=u, feasible=ok, violation=violation,
                                 failure_reason=None if ok else f"requirements not met: {reason}")
    record = ModelRecord(model_id=file_sha256(tflite_path), path=str(tflite_path.resolve()), format="tflite",
                         name=f"{strategy}:{candidate_id}", quantization="int8", size_kb=conv.size_kb, macs=macs,
                         params=params, dataset=ctx.data.name, keras_top1=conv.keras_top1,
                         tflite_top1=conv.tflite_top1, accuracy_drop_pt=conv.drop_pt,
                         eval_samples=conv.eval_samples, spec_json=spec.to_json())
    return result, (record, m)


def _write_candidate(store, run_id: str, c: CandidateResult, spec_json: str | None, rows: tuple | None) -> None:
    with store.transaction() as conn:
        model_id = None
        if rows:
            record, measurement = rows
            store._insert_measurement(conn, measurement, run_id, record)
            model_id = record.model_id
        conn.execute(
            "INSERT INTO candidates(run_id, candidate_id, cycle, strategy, seed, parent, spec_hash, spec_json, status,"
            " failure_reason, float_top1, int8_top1, macs, params, size_kb, latency_ms, energy_mj, energy_source,"
            " latency_source, score, requirements_met, model_id, extra_json, created_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, c.candidate_id, c.cycle, c.strategy, c.seed, "prototype" if c.cycle >= 0 else None,
             c.spec_hash, spec_json, c.status, c.failure_reason, c.float_top1, c.int8_top1, c.macs, c.params,
             c.size_kb, c.latency_ms, c.energy_mj, c.energy_source, c.latency_source, c.score, int(c.feasible),
             model_id, json.dumps({"choices": c.choices, "violation": c.violation, "keras_path": c.keras_path,
                                   "tflite_path": c.tflite_path}, default=str), time.time()))


def _from_row(row) -> CandidateResult:
    extra = json.loads(row["extra_json"] or "{}")
    return CandidateResult(
        candidate_id=row["candidate_id"], cycle=row["cycle"], strategy=row["strategy"], seed=row["seed"],
        spec_hash=row["spec_hash"], status=row["status"], failure_reason=row["failure_reason"],
        float_top1=row["float_top1"], int8_top1=row["int8_top1"], macs=row["macs"], params=row["params"],
        size_kb=row["size_kb"], latency_ms=row["latency_ms"], latency_source=row["latency_source"],
        energy_mj=row["energy_mj"], energy_source=row["energy_source"], score=row["score"],
        feasible=bool(row["requirements_met"]), violation=float(extra.get("violation", 0.0)),
        keras_path=extra.get("keras_path"), tflite_path=extra.get("tflite_path"), choices=extra.get("choices", {}))


def _proposals(ctx: _Context, generator, cycle: int) -> list[tuple[str, int | None, dict]]:
    """(candidate id, seed, choices) for one cycle of the configured strategy."""
    cfg = ctx.config
    if cfg.strategy in ("width", "l1prune"):
        if cycle > 0:
            return []
        widths = sorted((w for w in cfg.width_options if w < 1.0), reverse=True)
        return [(f"c{cycle:03d}-{i:02d}", None, ctx.space.uniform_width(w)) for i, w in enumerate(widths)]
    out = []
    for i in range(cfg.population):
        seed = _seed(cfg, cycle, i)
        out.append((f"c{cycle:03d}-{i:02d}", seed, generator.sample(seed).choices))
    return out


def _write_run_file(run_file: Path, run_id: str, config: SynthesisConfig, db) -> None:
    tmp = run_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"run_id": run_id, "config": config.to_dict(), "db": str(db)}, indent=2))
    tmp.replace(run_file)  # atomic: a kill never leaves a half-written run.json


def run_synthesis(config: SynthesisConfig, out_dir: str | Path, db: str | Path = "ferminet.db", *,
                  resume: bool = False, progress: bool = True, cycles: int | None = None) -> SynthesisResult:
    """Run (or resume) a synthesis run into ``out_dir`` and the store ``db``; see the module docstring.

    With ``resume``, the run's own ``run.json`` config is used; ``cycles`` then extends a gensynth or random run
    to that many cycles in total (stored back into ``run.json``)."""
    from toolkit.arch import get_prototype
    from toolkit.store import Store, check_store_path
    from toolkit.synthesis.generator import Generator
    from toolkit.synthesis.inherit import l1_importance
    from toolkit.synthesis.inquisitor import Observation, apply_prior, form_insights, taylor_importance, update
    from toolkit.synthesis.space import DecisionSpace

    started = time.perf_counter()
    out = Path(out_dir)
    check_store_path(db)
    run_file = out / "run.json"
    if run_file.exists() and not resume:
        raise InvalidArgumentError(f"{str(out)!r} already holds a synthesis run. Pass --resume to continue it, "
                                   f"or choose another --out")
    if resume:
        if not run_file.exists():
            raise InvalidArgumentError(f"Nothing to resume in {str(out)!r}: it has no run.json. Drop --resume")
        saved = json.loads(run_file.read_text())
        config = SynthesisConfig.from_dict(saved["config"])
        run_id = saved["run_id"]
        if cycles is not None and cycles != config.cycles:
            if config.strategy not in ("gensynth", "random"):
                raise InvalidArgumentError(f"--cycles only extends gensynth and random runs; {str(out)!r} is a "
                                           f"{config.strategy} run. Drop --cycles")
            if cycles < config.cycles:
                raise InvalidArgumentError(f"{str(out)!r} already runs {config.cycles} cycles; --cycles can only "
                                           f"extend it. Received: {cycles}")
            config = dataclasses.replace(config, cycles=cycles)
            _write_run_file(run_file, run_id, config, db)
    else:
        run_id = None
    requirements = parse_requirements(config.requirements)
    ctx = _Context(config, out, requirements)  # loads data, reaches the target: fails before anything is written
    ctx.progress = progress

    out.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    try:
        if run_id is None:
            run_id = store.start_run("synthesis", command=f"synthesize --strategy {config.strategy}",
                                     options=config.to_dict(), name=str(out))
            _write_run_file(run_file, run_id, config, db)
        else:
            store.get_run(run_id)
        done = {r["candidate_id"]: r for r in store.query(
            "SELECT * FROM candidates WHERE run_id=? ORDER BY cycle, candidate_id", (run_id,))}

        # -- the prototype: trained, converted, measured, probed ----------------------------------------
        import keras

        spec = get_prototype(config.prototype, ctx.data.input_shape, ctx.data.num_classes, config.prototype_width)
        ctx.space = DecisionSpace.from_prototype(spec, config.width_options)
        proto_path = out / "prototype.keras"
        if "prototype" in done and proto_path.exists():
            proto = _from_row(done["prototype"])
            ctx.prototype_model = keras.models.load_model(proto_path, compile=False)
        else:
            given = None
            if config.prototype_path:
                from toolkit.arch import build_model
                from toolkit.convert import load_keras_model

                given = load_keras_model(config.prototype_path)
                expected = [layer.name for layer in build_model(spec).layers]
                if [layer.name for layer in given.layers] != expected:
                    raise InvalidArgumentError(
                        f"{config.prototype_path!r} is not a {config.prototype} prototype for {config.dataset} "
                        f"built by ferminet (its layers differ); pass the prototype.keras of an earlier run")
            proto, rows = _evaluate(ctx, spec, candidate_id="prototype", cycle=-1, strategy="prototype",
                                    seed=config.seed, choices=ctx.space.prototype_choices(), importance={},
                                    train_from_scratch=True, model=given)
            ctx.prototype_model = keras.models.load_model(proto.keras_path, compile=False)
            ctx.prototype_model.save(proto_path)
            _write_candidate(store, run_id, proto, spec.to_json(), rows)
        ctx.proto_int8_top1 = proto.int8_top1
        ctx.evaluated[proto.spec_hash] = proto
        probe = ctx.data.subset(n_train=config.probe_samples, seed=config.seed)
        ctx.importance = taylor_importance(ctx.prototype_model, probe.x_train, probe.y_train)
        ctx.l1 = l1_importance(ctx.prototype_model)
        np.savez(out / "importance.npz", **ctx.importance)

        generator = Generator(ctx.space)
        if config.strategy == "gensynth":
            apply_prior(generator, form_insights(ctx.space, ctx.prototype_model, ctx.importance))
        importance = ctx.l1 if config.strategy == "l1prune" else ctx.importance

        results: list[CandidateResult] = []
        total = config.cycles * config.population if config.strategy in ("gensynth", "random") else \
            len([w for w in config.width_options if w < 1.0])
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"synthesize[{config.strategy}]", unit="cand")
        stopped = "done"
        for cycle in range(config.cycles):
            proposals = _proposals(ctx, generator, cycle)
            if not proposals:
                break
            cycle_results = []
            for candidate_id, seed, choices in proposals:
                if candidate_id in done:
                    c = _from_row(done[candidate_id])
                else:
                    if config.budget_s is not None and time.perf_counter() - started > config.budget_s:
                        stopped = "budget"
                        break
                    child = ctx.space.apply(choices, name=f"{config.prototype}_{candidate_id}")
                    c = _run_candidate(ctx, store, run_id, child, candidate_id, cycle, seed, choices, importance)
                ctx.evaluated.setdefault(c.spec_hash, c)
                cycle_results.append(c)
                if bar is not None:
                    bar.update(1)
                    best = _best(results + cycle_results)
                    bar.set_postfix(cycle=cycle, best=f"{best.macs:,} MACs {best.int8_top1:.2%}" if best else "none")
            results += cycle_results
            if stopped == "budget":
                break
            if config.strategy == "gensynth":
                update(generator, [Observation(c.choices, c.score if c.score is not None else 0.0, c.feasible,
                                               c.violation if c.status == "ok" else 10.0)
                                   for c in cycle_results])
                generator.save(out / "generator.json")
        if bar is not None:
            bar.close()
        if config.strategy == "gensynth" and not (out / "generator.json").exists():
            generator.save(out / "generator.json")
        store.finish_run(run_id, status=stopped)
    finally:
        store.close()
    return SynthesisResult(run_id, str(out), str(db), config.strategy, proto, _best(results), tuple(results),
                           time.perf_counter() - started, stopped)


def _run_candidate(ctx: _Context, store, run_id: str, child, candidate_id: str, cycle: int, seed: int | None,
                   choices: dict, importance: dict) -> CandidateResult:
    """Evaluate one candidate (or reuse an identical architecture's result) and store it at once."""
    strategy = ctx.config.strategy
    twin = ctx.evaluated.get(child.spec_hash())
    if twin is not None:
        # Same architecture as an earlier candidate of this run: same numbers, no second training.
        c = dataclasses.replace(twin, candidate_id=candidate_id, cycle=cycle, seed=seed, strategy=strategy,
                                choices=choices)
        _write_candidate(store, run_id, c, child.to_json(), None)
        return c
    try:
        c, rows = _evaluate(ctx, child, candidate_id=candidate_id, cycle=cycle, strategy=strategy, seed=seed,
                            choices=choices, importance=importance)
    except ToolkitError as exc:
        log.warning("candidate %s failed: %s", candidate_id, exc)
        c, rows = CandidateResult(candidate_id, cycle, strategy, seed, child.spec_hash(), "failed",
                                  f"{type(exc).__name__}: {exc}", choices=choices, violation=10.0), None
    _write_candidate(store, run_id, c, child.to_json(), rows)
    return c


def _best(results) -> CandidateResult | None:
    feasible = [c for c in results if c.feasible and c.score is not None]
    return max(feasible, key=lambda c: c.score) if feasible else None
