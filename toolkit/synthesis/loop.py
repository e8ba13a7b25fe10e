"""The synthesis loop: the one module that drives the data path.

    data: train / validation (carved from train, stratified, fixed by the seed) / test
    prototype (trained on train, int8 top-1 on validation) -> inquisitor probe (Taylor importance) -> prior on G
    -> weight-sharing supernet over the decision space (trained once, checkpointed, resumable)
    cycle: G.sample(seed) x population -> extract from the supernet + re-estimate BN (no training)
           -> int8 (validated on validation) -> measure on the target -> U and 1_r -> store -> inquisitor.update(G)
    finals: the best k by U whose proxy meets the requirements (else the closest) get the final recipe (the
           prototype's epochs and data, from their supernet weights) -> int8 -> validation and, once, test ->
           target; so does the prototype architecture itself (the reference), so no network wins by having been
           trained longer.

Every decision (elite, finals, best) is made on the validation split; the test split is read once per reported
network (the prototype, the reference and the finals), never during the search. Every candidate is written to
the store the moment it finishes (candidate, model and measurement rows in one transaction). Candidate ids and
seeds are deterministic (``c<cycle>-<index>``, ``final-<parent id>``), so ``resume=True`` skips the stored ones and rebuilds
the generator by replaying the stored cycles through the same update rule.

Strategies share the evaluator, the conversion, the measurement and the final recipe:
``gensynth`` (learned generator), ``random`` (the same space, uniform, never updated), ``width`` (uniform
width scaling of the prototype, picked on validation), ``l1prune`` (Li et al. 2017: filters ranked by kernel L1
norm, uniform prune ratios, weights from the prototype instead of the supernet).
"""
from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.requirements import Requirement, check, parse_requirements
from toolkit.synthesis.space import DEFAULT_RESOLUTIONS, DEFAULT_WIDTHS, check_fractions

log = logging.getLogger(__name__)

STRATEGIES = ("gensynth", "random", "width", "l1prune")
OP_PROFILE = "prototype_op_profile.json"
PHASES = ("prototype", "search", "final", "reference")


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
    budget_s: float | None = None  # wall time of the search phase
    prototype_width: float = 1.0
    prototype_path: str | None = None  # a trained prototype (.keras) to start from instead of training one
    supernet_path: str | None = None  # a run folder whose trained supernet to reuse (same prototype and data)
    prototype_epochs: int = 3
    supernet_epochs: int = 2
    final_k: int = 3
    final_epochs: int | None = None  # default: the prototype's epochs (the same budget as the prototype)
    distill: bool = False  # final training also learns the prototype's soft predictions
    retrain_reference: bool = True  # the prototype architecture gets the finals' extra training too
    n_train: int | None = None
    n_val: int = 5_000
    n_eval: int | None = None  # validation images the search evaluates on (default: all of them)
    recal_samples: int = 1_024
    probe_samples: int = 512
    threads: int = 1
    profile_runs: int = 30
    seed: int = 0  # the generator's samples
    data_seed: int | None = None  # which images are train / validation (default: seed); runs sharing a
    # prototype or a supernet must share it, so no image trained on is validated on
    width_options: tuple[float, ...] = DEFAULT_WIDTHS
    # input resolutions the search may choose, as fractions of the input side ((1.0,): the input's own only)
    resolution_options: tuple[float, ...] = DEFAULT_RESOLUTIONS
    learning_rate: float = 2e-3
    supernet_learning_rate: float = 1e-3
    # The final recipe's peak learning rate (the reference gets the same recipe). Chosen on validation: a 13x
    # smaller resnet20 child, 3 epochs on 25k images from supernet weights, reached 84.0 / 87.4 / 88.6 % at
    # 5e-4 / 2e-3 / 4e-3 (notes in the issue 10 closing note).
    final_learning_rate: float = 4e-3

    def __post_init__(self) -> None:
        from toolkit.arch import PROTOTYPES
        from toolkit.synthesis.objective import OBJECTIVES

        if self.strategy not in STRATEGIES:
            raise InvalidArgumentError(f"Unknown strategy {self.strategy!r}. Use one of {', '.join(STRATEGIES)}")
        if self.prototype not in PROTOTYPES:
            raise InvalidArgumentError(f"Unknown prototype {self.prototype!r}. Use one of {', '.join(PROTOTYPES)}")
        if self.objective not in OBJECTIVES:
            raise InvalidArgumentError(f"Unknown objective {self.objective!r}. Use one of {', '.join(OBJECTIVES)}")
        for name in ("cycles", "population", "prototype_epochs", "final_k", "threads", "profile_runs", "n_val",
                     "recal_samples", "probe_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an integer >= 1. Received: {name}={value!r}")
        for name in ("final_epochs", "n_eval", "n_train"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InvalidArgumentError(f"{name} must be an integer >= 1 or None. Received: {name}={value!r}")
        if isinstance(self.supernet_epochs, bool) or not isinstance(self.supernet_epochs, int) \
                or self.supernet_epochs < 0:
            raise InvalidArgumentError(f"supernet_epochs must be an integer >= 0. "
                                       f"Received: supernet_epochs={self.supernet_epochs!r}")
        for name in ("learning_rate", "supernet_learning_rate", "final_learning_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgumentError(f"{name} must be a number > 0. Received: {name}={value!r}")
        check_fractions("width_options", self.width_options)
        check_fractions("resolution_options", self.resolution_options)
        if self.budget_s is not None and not self.budget_s > 0:
            raise InvalidArgumentError(f"The budget must be > 0. Received: budget={self.budget_s!r}; e.g. --budget 60m")
        parse_requirements(self.requirements)

    @property
    def split_seed(self) -> int:
        return self.seed if self.data_seed is None else self.data_seed

    def data_fingerprint(self) -> dict:
        """What fixes the training images: a prototype or supernet is reusable only under the same one."""
        return {"dataset": self.dataset, "data_path": self.data_path, "n_train": self.n_train, "n_val": self.n_val,
                "data_seed": self.split_seed}

    @property
    def uses_supernet(self) -> bool:
        return self.strategy != "l1prune"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthesisConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d.setdefault("resolution_options", (1.0,))  # a run saved before resolution was a decision searched none
        d.setdefault("final_learning_rate", d.get("learning_rate", cls.learning_rate))  # ... and had one rate
        for key in ("requirements", "width_options", "resolution_options"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


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
    parent: str | None = None  # a final's search candidate
    proxy_top1: float | None = None  # a final's search-time (proxy) validation top-1
    energy_below_resolution: bool = False  # energy_mj is None: the net energy was under the measurement's floor
    energy_resolution_mj: float | None = None


@dataclass(frozen=True)
class SynthesisResult:
    run_id: str
    out_dir: str
    db: str
    strategy: str
    prototype: CandidateResult
    best: CandidateResult | None  # the final with the best validation U among those meeting the requirements
    candidates: tuple[CandidateResult, ...]  # the search
    finals: tuple[CandidateResult, ...]
    reference: CandidateResult | None  # the prototype architecture given the finals' training
    wall_s: float
    stopped: str  # "done" | "budget"
    phase_seconds: dict = field(default_factory=dict)

    @property
    def feasible(self) -> tuple[CandidateResult, ...]:
        return tuple(c for c in self.candidates if c.feasible)


class _Context:
    """What every evaluation needs: the three splits, the target, the prototype, the evaluator."""

    def __init__(self, config: SynthesisConfig, out: Path, requirements: tuple[Requirement, ...]):
        from toolkit.data import load_dataset
        from toolkit.targets import get_target

        self.config = config
        self.out = out
        self.requirements = requirements
        data = load_dataset(config.dataset, path=config.data_path, n_train=config.n_train, seed=config.split_seed)
        data = data.holdout(min(config.n_val, len(data.x_train) // 5), seed=config.split_seed)
        self.test = data  # the test split: read only by _report_on_test
        # Training sees train; anything a trainer evaluates on the side is the validation split, never test.
        self.train_data = data.validation_as_test()
        self.search_data = data.validation_as_test(config.n_eval)
        rng = np.random.default_rng(config.split_seed)
        self.recal_x = data.x_train[rng.choice(len(data.x_train), min(config.recal_samples, len(data.x_train)),
                                               replace=False)]
        kwargs = {"device": config.device} if config.target == "android" else {}
        self.target = get_target(config.target, **kwargs)
        if config.target == "android":
            self.target.device.info()  # an unreachable phone fails now, not after training the prototype
        self.prototype_model = None
        self.importance: dict[str, np.ndarray] = {}
        self.space = None
        self.evaluator = None
        self.op_profile: tuple = ()  # the target's per-op profile of the prototype (empty: cost from MACs)
        self.search_reference: float | None = None  # proxy top-1 of the prototype architecture (validation)
        self.final_reference: CandidateResult | None = None
        self.evaluated: dict[str, CandidateResult] = {}  # spec_hash -> first successful result
        self.progress = False


def _seed(config: SynthesisConfig, cycle: int, index: int) -> int:
    return config.seed * 1_000_003 + cycle * 1_000 + index


def _metrics(top1: float | None, reference: float | None, c: CandidateResult) -> dict[str, float | None]:
    drop = None if (top1 is None or reference is None) else (reference - top1) * 100.0
    return {"accuracy": top1, "accuracy_drop": drop, "latency_ms": c.latency_ms, "energy_mj": c.energy_mj,
            "size_kb": c.size_kb, "macs": c.macs, "params": c.params}


def _assess(ctx: _Context, model, spec, *, candidate_id: str, cycle: int, strategy: str, seed: int | None,
            choices: dict, phase: str, reference: float | None, test_reference: float | None = None,
            folder: Path | None = None, **extra) -> tuple[CandidateResult, tuple]:
    """Convert (int8, validated on validation), measure, score; for reported phases also top-1 on test, once."""
    from toolkit.arch import count_macs, count_params
    from toolkit.convert import convert_model
    from toolkit.provenance import file_sha256
    from toolkit.store import ModelRecord
    from toolkit.synthesis.objective import score
    from toolkit.targets import ProfileOptions

    cfg = ctx.config
    folder = folder or ctx.out / ("candidates" if phase == "search" else "finals")
    folder.mkdir(parents=True, exist_ok=True)
    keras_path = None
    if phase != "search":
        keras_path = folder / f"{candidate_id}.keras"
        model.save(keras_path)
    tflite_path = folder / f"{candidate_id}_int8.tflite"
    conv = convert_model(model, ctx.search_data, tflite_path, mode="int8")
    macs, params = count_macs(model), count_params(model)
    # On a phone the energy needs a run long enough for the power sampler (>= 1 s at ~20 Hz).
    min_secs = 1.0 if cfg.target == "android" else 0.0
    m = ctx.target.profile(tflite_path, ProfileOptions(num_threads=cfg.threads, num_runs=cfg.profile_runs,
                                                       warmup_runs=5, min_secs=min_secs))
    m = dataclasses.replace(m, macs=macs)
    energy = m.energy
    test_top1 = _report_on_test(ctx, tflite_path) if phase != "search" else None
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
    ok, reason, violation = check(ctx.requirements, _metrics(conv.tflite_top1, reference, result), missing)
    test_ok = None
    if test_top1 is not None:
        test_reference = test_top1 if test_reference is None else test_reference
        test_ok, test_reason, _ = check(ctx.requirements, _metrics(test_top1, test_reference, result), missing)
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


def _report_on_test(ctx: _Context, tflite_path: Path) -> float:
    """int8 top-1 on the whole test split: called once per reported network, never during the search."""
    from toolkit.convert.interpreter import evaluate_tflite

    return evaluate_tflite(tflite_path, ctx.test.x_test, ctx.test.y_test, num_threads=ctx.config.threads)


def _write_candidate(store, run_id: str, c: CandidateResult, spec_json: str | None, rows: tuple | None) -> None:
    with store.transaction() as conn:
        model_id = None
        if rows:
            record, measurement = rows
            store._insert_measurement(conn, measurement, run_id, record)
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


def _from_row(row) -> CandidateResult:
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
        parent=row["parent"] if row["phase"] == "final" else None, proxy_top1=row["proxy_top1"],
        energy_below_resolution=bool(extra.get("energy_below_resolution")),
        energy_resolution_mj=extra.get("energy_resolution_mj"))


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


def read_run_file(out: Path) -> dict:
    """The ``run.json`` of a run folder, or one error naming what is wrong with it."""
    run_file = out / "run.json"
    if not run_file.is_file():
        raise InvalidArgumentError(f"{str(out)!r} is not a synthesis run folder (no run.json). "
                                   f"Pass the --out folder of `ferminet synthesize`")
    try:
        saved = json.loads(run_file.read_text())
        SynthesisConfig.from_dict(saved["config"])
        str(saved["run_id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"{str(run_file)!r} is damaged ({type(exc).__name__}: {exc}); it cannot be "
                                   f"resumed. Start a new run with another --out") from None
    return saved


class RunLock:
    """An exclusive lock on a run folder (``.lock``, flock): a second process on the same run refuses at once.
    The lock goes with the process, so a killed run never leaves the folder locked."""

    def __init__(self, out: Path):
        self.path = out / ".lock"
        self.fd: int | None = None
        self.created = False

    def __enter__(self) -> "RunLock":
        self.created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            raise ToolkitError(f"Another ferminet process is working on the run in {str(self.path.parent)!r}; "
                               f"wait for it to finish (or stop it) before resuming") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        folder = self.path.parent
        if self.created and {p.name for p in folder.iterdir()} <= {".lock", "phases.json"}:
            # A run that failed before writing anything leaves no folder behind (we made it, it holds nothing).
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()


class _Phases:
    """Wall seconds per phase, accumulated across resumes in ``phases.json``."""

    def __init__(self, out: Path):
        self.path = out / "phases.json"
        try:
            self.seconds: dict[str, float] = json.loads(self.path.read_text()) if self.path.exists() else {}
        except ValueError:
            self.seconds = {}

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.seconds, indent=2))
        tmp.replace(self.path)


def run_synthesis(config: SynthesisConfig, out_dir: str | Path, db: str | Path | None = None, *,
                  resume: bool = False, progress: bool = True, cycles: int | None = None) -> SynthesisResult:
    """Run (or resume) a synthesis run into ``out_dir`` and the store ``db``; see the module docstring.

    With ``resume``, the run's own ``run.json`` config and store are used (``db`` overrides the store);
    ``cycles`` then extends a gensynth or random run to that many cycles in total."""
    out = Path(out_dir)
    if resume:
        saved = read_run_file(out)
        db = db if db is not None else saved.get("db", "ferminet.db")
    elif (out / "run.json").exists():
        raise InvalidArgumentError(f"{str(out)!r} already holds a synthesis run. Pass --resume to continue it, "
                                   f"or choose another --out")
    db = db if db is not None else "ferminet.db"
    from toolkit.store import check_store_path

    check_store_path(db)
    return _run_locked(config, out, db, resume, progress, cycles)


def _run_locked(config: SynthesisConfig, out: Path, db, resume: bool, progress: bool,
                cycles: int | None) -> SynthesisResult:
    from toolkit.store import Store

    started = time.perf_counter()
    run_id = None
    if resume:
        saved = read_run_file(out)
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
    requirements = parse_requirements(config.requirements)
    ctx = _Context(config, out, requirements)  # loads data, reaches the target: fails before anything is written
    ctx.progress = progress
    with RunLock(out), Store(db) as store:
        return _run_stages(ctx, store, run_id, db, started)


def _run_stages(ctx: _Context, store, run_id: str | None, db, started: float) -> SynthesisResult:
    from toolkit.synthesis.generator import Generator
    from toolkit.synthesis.inquisitor import Observation, apply_prior, form_insights, update

    config, out = ctx.config, ctx.out
    run_file = out / "run.json"
    phases = _Phases(out)
    if run_id is None:
        run_id = store.start_run("synthesis", command=f"synthesize --strategy {config.strategy}",
                                 options=config.to_dict(), name=str(out))
        _write_run_file(run_file, run_id, config, db)
    else:
        store.get_run(run_id)
        _write_run_file(run_file, run_id, config, db)
    done = {r["candidate_id"]: r for r in store.query(
        "SELECT * FROM candidates WHERE run_id=? ORDER BY cycle, candidate_id", (run_id,))}

    t0 = time.perf_counter()
    proto = _prototype(ctx, store, run_id, done)
    phases.add("prototype", time.perf_counter() - t0)
    t0 = time.perf_counter()
    _build_evaluator(ctx, ctx.progress)
    phases.add("supernet" if config.uses_supernet else "pruning", time.perf_counter() - t0)

    t0 = time.perf_counter()
    searched_before = phases.seconds.get("search", 0.0)
    generator = Generator(ctx.space)
    if config.strategy == "gensynth":
        insights = form_insights(ctx.space, ctx.prototype_model, ctx.importance, op_profile=ctx.op_profile)
        log.info("inquisitor: cost shares from %s: %s", insights.cost_basis, insights.cost_share)
        (out / "insights.json").write_text(json.dumps(dataclasses.asdict(insights), indent=1))
        apply_prior(generator, insights)
    _search_reference(ctx, store, run_id, done, proto)
    results: list[CandidateResult] = []
    total = config.cycles * config.population if config.strategy in ("gensynth", "random") else \
        len([w for w in config.width_options if w < 1.0])
    bar = None
    if ctx.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"search[{config.strategy}]", unit="cand")
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
                # The budget is the search phase's wall time, resumed runs included (phases.json keeps it).
                if config.budget_s is not None and searched_before + time.perf_counter() - t0 > config.budget_s:
                    stopped = "budget"
                    break
                c = _run_candidate(ctx, store, run_id, candidate_id, cycle, seed, choices)
            if c.status == "ok":
                ctx.evaluated.setdefault(c.spec_hash, c)
            cycle_results.append(c)
            if bar is not None:
                bar.update(1)
                best = _best_search(results + cycle_results)
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
    phases.add("search", time.perf_counter() - t0)

    t0 = time.perf_counter()
    proto, reference = _reference(ctx, store, run_id, done, proto)
    finals = _finals(ctx, store, run_id, done, results)
    phases.add("final", time.perf_counter() - t0)
    store.finish_run(run_id, status=stopped)
    return SynthesisResult(run_id, str(out), str(db), config.strategy, proto, best_final(finals), tuple(results),
                           tuple(finals), reference, time.perf_counter() - started, stopped, dict(phases.seconds))


def _prototype(ctx: _Context, store, run_id: str, done: dict) -> CandidateResult:
    """Train (or load) the prototype, convert and measure it, probe it for channel importance."""
    import keras

    from toolkit.arch import build_model, get_prototype
    from toolkit.synthesis.inherit import l1_importance
    from toolkit.synthesis.inquisitor import taylor_importance
    from toolkit.synthesis.space import DecisionSpace
    from toolkit.train import TrainBudget, train

    cfg, out = ctx.config, ctx.out
    spec = get_prototype(cfg.prototype, ctx.test.input_shape, ctx.test.num_classes, cfg.prototype_width)
    ctx.space = DecisionSpace.from_prototype(spec, cfg.width_options, cfg.resolution_options)
    proto_path = out / "prototype.keras"
    if "prototype" in done and proto_path.exists():
        proto = _from_row(done["prototype"])
        ctx.prototype_model = keras.models.load_model(proto_path, compile=False)
    else:
        if cfg.prototype_path:
            from toolkit.convert import load_keras_model

            _check_same_split(cfg, Path(cfg.prototype_path).parent / "run.json")
            model = load_keras_model(cfg.prototype_path)
            expected = [layer.name for layer in build_model(spec).layers]
            if [layer.name for layer in model.layers] != expected:
                raise InvalidArgumentError(
                    f"{cfg.prototype_path!r} is not a {cfg.prototype} prototype for {cfg.dataset} "
                    f"built by ferminet (its layers differ); pass the prototype.keras of an earlier run")
        else:
            model = build_model(spec, seed=cfg.seed)
            train(model, ctx.train_data, TrainBudget(epochs=cfg.prototype_epochs), learning_rate=cfg.learning_rate,
                  seed=cfg.seed, progress=ctx.progress)
        proto, rows = _assess(ctx, model, spec, candidate_id="prototype", cycle=-1, strategy="prototype",
                              seed=cfg.seed, choices=ctx.space.prototype_choices(), phase="prototype",
                              reference=None, folder=out)
        model.save(proto_path)
        ctx.prototype_model = model
        _write_candidate(store, run_id, proto, spec.to_json(), rows)
    from toolkit.targets.base import OpStat

    profile_file = out / OP_PROFILE
    if not profile_file.exists():
        # The target's per-op profile of the prototype (where its time goes) for the inquisitor's insights: a run of
        # its own, so profiling overhead never reaches the prototype's stored latency.
        from toolkit.targets import ProfileOptions

        op = ctx.target.profile(Path(proto.tflite_path), ProfileOptions(
            num_threads=cfg.threads, num_runs=10, warmup_runs=2, op_profiling=True, measure_energy=False))
        tmp = profile_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([dataclasses.asdict(o) for o in op.op_profile], indent=1))
        tmp.replace(profile_file)
    ctx.op_profile = tuple(OpStat(**o) for o in json.loads(profile_file.read_text()))
    importance_file = out / "importance.npz"
    if importance_file.exists():
        # A resumed run keeps the channel order its supernet checkpoint was trained with: read, never recompute.
        with np.load(importance_file) as npz:
            ctx.importance = {k: npz[k] for k in npz.files}
        return proto
    if cfg.strategy == "l1prune":
        ctx.importance = l1_importance(ctx.prototype_model)
    else:
        probe = ctx.test.subset(n_train=cfg.probe_samples, seed=cfg.split_seed)
        ctx.importance = taylor_importance(ctx.prototype_model, probe.x_train, probe.y_train)
    np.savez(importance_file, **ctx.importance)
    return proto


def _check_same_split(cfg: SynthesisConfig, run_file: Path) -> None:
    """A prototype from another run was trained on that run's training split: refuse it when this run would
    validate on some of those images."""
    if not run_file.is_file():
        log.warning("cannot check which images %s was trained on (no run.json beside it)", run_file.parent)
        return
    other = SynthesisConfig.from_dict(read_run_file(run_file.parent)["config"]).data_fingerprint()
    if other != cfg.data_fingerprint():
        raise InvalidArgumentError(
            f"The prototype in {str(run_file.parent)!r} was trained on other images ({other}) than this run splits "
            f"({cfg.data_fingerprint()}); use the same data options and data seed")


def _build_evaluator(ctx: _Context, progress: bool) -> None:
    from toolkit.synthesis.evaluator import PrunedPrototypeEvaluator, SupernetEvaluator
    from toolkit.synthesis.supernet import Supernet, has_checkpoint, read_state, train_supernet

    cfg = ctx.config
    if not cfg.uses_supernet:
        ctx.evaluator = PrunedPrototypeEvaluator(ctx.prototype_model, ctx.space, ctx.importance, ctx.recal_x)
        return
    sn = Supernet.from_prototype(ctx.prototype_model, ctx.space, ctx.importance)
    folder = ctx.out / "supernet"
    if cfg.supernet_path:
        given = Path(cfg.supernet_path)
        given = given / "supernet" if (given / "supernet").is_dir() else given
        if not has_checkpoint(given):
            raise InvalidArgumentError(f"No trained supernet in {cfg.supernet_path!r}; pass the --out folder of a "
                                       f"finished synthesis run with the same prototype and data")
        trained_on = read_state(given).get("data")
        if trained_on != cfg.data_fingerprint():
            raise InvalidArgumentError(
                f"The supernet in {cfg.supernet_path!r} was trained on other images ({trained_on}) than this run "
                f"splits ({cfg.data_fingerprint()}): its training images could be in this run's validation split. "
                f"Use the same data options and data seed, or train a supernet for this run")
        importance_file = given.parent / "importance.npz"
        if importance_file.is_file():  # channel order is the supernet's: take its importance too
            with np.load(importance_file) as npz:
                ctx.importance = {k: npz[k] for k in npz.files}
            sn = Supernet.from_prototype(ctx.prototype_model, ctx.space, ctx.importance)
            np.savez(ctx.out / "importance.npz", **ctx.importance)
        sn.load(given)
    else:
        train_supernet(sn, ctx.train_data.x_train, ctx.train_data.y_train, cfg.supernet_epochs, folder,
                       learning_rate=cfg.supernet_learning_rate, seed=cfg.split_seed, progress=progress,
                       data=cfg.data_fingerprint())
    ctx.evaluator = SupernetEvaluator(sn, ctx.recal_x)


def _search_reference(ctx: _Context, store, run_id: str, done: dict, proto: CandidateResult) -> None:
    """The prototype architecture as the search's evaluator sees it: accuracy_drop during the search is
    measured against it (same evaluator, same split), so the drop compares like with like."""
    cfg = ctx.config
    if not cfg.uses_supernet:
        ctx.search_reference = proto.int8_top1  # the pruning baseline's weights are the prototype's own
        return
    cid = "supernet-max"
    if cid in done:
        c = _from_row(done[cid])
    else:
        model, spec = ctx.evaluator.proxy(ctx.space.prototype_choices(), name=f"{cfg.prototype}_{cid}")
        c, rows = _assess(ctx, model, spec, candidate_id=cid, cycle=-1, strategy=cfg.strategy, seed=None,
                          choices=ctx.space.prototype_choices(), phase="search", reference=None)
        _write_candidate(store, run_id, c, spec.to_json(), rows)
    ctx.evaluated.setdefault(c.spec_hash, c)
    ctx.search_reference = c.int8_top1


def _run_candidate(ctx: _Context, store, run_id: str, candidate_id: str, cycle: int, seed: int | None,
                   choices: dict) -> CandidateResult:
    """Evaluate one search candidate (or reuse an identical architecture's result) and store it at once.

    A failure is a stored candidate, not a crash; a transient one (a lost phone, a timeout) is retried once,
    and a failure is never copied to a later sample of the same architecture."""
    cfg = ctx.config
    spec = ctx.space.apply(choices, name=f"{cfg.prototype}_{candidate_id}")
    twin = ctx.evaluated.get(spec.spec_hash())
    if twin is not None:
        # Same architecture as an earlier candidate of this run: same numbers, no second evaluation.
        c = dataclasses.replace(twin, candidate_id=candidate_id, cycle=cycle, seed=seed, strategy=cfg.strategy,
                                choices=choices, phase="search", test_top1=None, test_feasible=None)
        _write_candidate(store, run_id, c, spec.to_json(), None)
        return c
    for attempt in (1, 2):
        try:
            model, spec = ctx.evaluator.proxy(choices, name=f"{cfg.prototype}_{candidate_id}")
            c, rows = _assess(ctx, model, spec, candidate_id=candidate_id, cycle=cycle, strategy=cfg.strategy,
                              seed=seed, choices=choices, phase="search", reference=ctx.search_reference)
            break
        except ToolkitError as exc:
            if attempt == 1 and getattr(exc, "transient", False):
                log.warning("candidate %s: %s; retrying once", candidate_id, exc)
                continue
            log.warning("candidate %s failed: %s", candidate_id, exc)
            c, rows = CandidateResult(candidate_id, cycle, cfg.strategy, seed, spec.spec_hash(), "failed",
                                      f"{type(exc).__name__}: {exc}", choices=choices, violation=10.0), None
            break
    _write_candidate(store, run_id, c, spec.to_json(), rows)
    return c


def _best_search(results) -> CandidateResult | None:
    feasible = [c for c in results if c.feasible and c.score is not None]
    return max(feasible, key=lambda c: c.score) if feasible else None


def choose_finals(results, k: int) -> list[CandidateResult]:
    """Up to ``k`` distinct architectures: the best U among those whose proxy meets the requirements, then the
    closest to meeting them (least total violation, then best U). Validation numbers only."""
    ok = [c for c in results if c.status == "ok" and c.score is not None]
    ranked = sorted((c for c in ok if c.feasible), key=lambda c: -c.score) + \
        sorted((c for c in ok if not c.feasible), key=lambda c: (c.violation, -c.score))
    chosen, seen = [], set()
    for c in ranked:
        if c.spec_hash not in seen:
            chosen.append(c)
            seen.add(c.spec_hash)
        if len(chosen) == k:
            break
    return chosen


def best_final(finals) -> CandidateResult | None:
    """The final with the best validation U among those meeting the requirements on validation."""
    ok = [c for c in finals if c.status == "ok" and c.feasible and c.score is not None]
    return max(ok, key=lambda c: c.score) if ok else None


def _train_final(ctx: _Context, choices: dict, name: str):
    """The final recipe: the evaluator's weights for ``choices``, then the prototype's epochs (or
    ``final_epochs``) on its data at ``final_learning_rate``."""
    from toolkit.train import TrainBudget, train

    cfg = ctx.config
    model, spec = ctx.evaluator.start(choices, name=name)
    teacher = ctx.prototype_model if cfg.distill else None
    train(model, ctx.train_data, TrainBudget(epochs=cfg.final_epochs or cfg.prototype_epochs),
          learning_rate=cfg.final_learning_rate, seed=cfg.seed, progress=ctx.progress, teacher=teacher)
    return model, spec


def _reference(ctx: _Context, store, run_id: str, done: dict,
               proto: CandidateResult) -> tuple[CandidateResult, CandidateResult | None]:
    """Set the accuracy finals are judged against: the stronger (on validation) of the prototype as trained and
    the prototype architecture given the finals' extra training (``retrain_reference``). Reads the prototype's
    test top-1 (once). Returns (prototype with its test top-1, the retrained reference or None)."""
    cfg = ctx.config
    if proto.test_top1 is None:
        proto = dataclasses.replace(proto, test_top1=_report_on_test(ctx, Path(proto.tflite_path)))
        with store.transaction() as conn:
            conn.execute("UPDATE candidates SET test_top1=? WHERE run_id=? AND candidate_id=?",
                         (proto.test_top1, run_id, "prototype"))
    reference = None
    if cfg.retrain_reference:
        cid = "reference"
        if cid in done:
            reference = _from_row(done[cid])
        else:
            choices = ctx.space.prototype_choices()
            model, spec = _train_final(ctx, choices, f"{cfg.prototype}_{cid}")
            try:
                reference, rows = _assess(ctx, model, spec, candidate_id=cid, cycle=-1, strategy=cfg.strategy,
                                          seed=None, choices=choices, phase="reference", reference=None)
            except ToolkitError as exc:  # e.g. the phone went away: judge against the prototype as trained
                log.warning("the reference could not be evaluated (%s); finals are judged against the prototype", exc)
                reference, rows = CandidateResult(cid, -1, cfg.strategy, None, spec.spec_hash(), "failed",
                                                  f"{type(exc).__name__}: {exc}", choices=choices,
                                                  phase="reference"), None
            _write_candidate(store, run_id, reference, spec.to_json(), rows)
    usable = reference is not None and reference.status == "ok"
    stronger = reference if usable and reference.int8_top1 > proto.int8_top1 else proto
    ctx.final_reference = stronger
    return proto, reference


def _finals(ctx: _Context, store, run_id: str, done: dict, results) -> list[CandidateResult]:
    cfg = ctx.config
    ref = ctx.final_reference
    finals = []
    for parent in choose_finals(results, cfg.final_k):
        cid = f"final-{parent.candidate_id}"  # a resumed or extended run reuses a final only for the same parent
        if cid in done:
            finals.append(_from_row(done[cid]))
            continue
        try:
            model, spec = _train_final(ctx, parent.choices, f"{cfg.prototype}_{cid}")
            c, rows = _assess(ctx, model, spec, candidate_id=cid, cycle=parent.cycle, strategy=cfg.strategy,
                              seed=parent.seed, choices=parent.choices, phase="final", reference=ref.int8_top1,
                              test_reference=ref.test_top1, parent=parent.candidate_id, proxy_top1=parent.int8_top1)
        except ToolkitError as exc:
            log.warning("final %s failed: %s", cid, exc)
            c, rows = CandidateResult(cid, parent.cycle, cfg.strategy, parent.seed, parent.spec_hash, "failed",
                                      f"{type(exc).__name__}: {exc}", choices=parent.choices, phase="final",
                                      parent=parent.candidate_id, proxy_top1=parent.int8_top1), None
        _write_candidate(store, run_id, c, ctx.space.apply(parent.choices).to_json(), rows)
        finals.append(c)
    return finals
