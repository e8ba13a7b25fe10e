"""The synthesis loop: the one module that drives the data path.

    data: train / validation (carved from train, stratified, fixed by the seed) / test
    prototype (trained on train, int8 top-1 on validation) -> inquisitor probe (Taylor importance) -> prior on G
    -> weight-sharing supernet over the decision space (trained once, checkpointed, resumable)
    cycle: G.sample(seed) x population -> extract from the supernet + re-estimate BN (no training)
           -> int8 (validated on validation) -> measure on the target -> U and 1_r -> store -> inquisitor.update(G)
    shortlist (--shortlist N): up to N of them, picked by the finals' rule, fine-tuned briefly and judged again
    finals: the best k by U whose proxy (or shortlist) numbers meet the requirements (else the closest, then
           points spread down the front of violation vs MACs) get the final recipe (the prototype's epochs and data,
           from their supernet weights) -> int8 -> validation and, once, test -> target; so does the prototype
           architecture itself (the reference), so no network wins by having been trained longer.

With a space root (``space_root``, ``--space-root``) the space, supernet, importance and op profile come from the
root (trained after the prototype with its recipe, stored as ``space-root``); the prototype stays the reference.

Every decision (elite, finals, best) is made on the validation split; the test split is read once per reported
network (the prototype, the reference and the finals), never during the search. Every candidate is written to
the store the moment it finishes (candidate, model and measurement rows in one transaction). Candidate ids and
seeds are deterministic (``c<cycle>-<index>``, ``final-<parent id>``), so ``resume=True`` skips the stored ones and rebuilds
the generator by replaying the stored cycles through the same update rule.

Modules along the path: :mod:`~toolkit.synthesis.config` (what defines a run), :mod:`~toolkit.synthesis.assess`
(one network: int8, measurement, U, requirements, store rows), :mod:`~toolkit.synthesis.finals` (final recipe,
reference, finals), :mod:`~toolkit.synthesis.shortlist` (the fine-tuned second look); this module runs the stages
in order and owns the run folder (run.json, lock, phases).

Strategies share the evaluator, the conversion, the measurement and the final recipe:
``gensynth`` (learned generator), ``random`` (the same space, uniform, never updated), ``width`` (uniform
width scaling of the prototype, picked on validation), ``l1prune`` (Li et al. 2017: filters ranked by kernel L1
norm, uniform prune ratios, weights from the prototype instead of the supernet).
"""
from __future__ import annotations

import collections
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
from toolkit.synthesis.assess import (
    CandidateResult,
    Context,
    assess,
    candidate_from_row,
    load_prototype_file,
    start_assess,
    write_candidate,
)
from toolkit.synthesis.config import SynthesisConfig, read_run_file
from toolkit.synthesis.finals import best_final, reused_reference, run_finals, run_reference
from toolkit.synthesis.requirements import parse_requirements
from toolkit.synthesis.screen import make_screen
from toolkit.synthesis.shortlist import run_shortlist

log = logging.getLogger(__name__)

OP_PROFILE = "prototype_op_profile.json"
# Ray workers measure on the host target, the screen would run here: the two cannot share measurements.
RAY_HOST_SCREEN = ("--predictor with --executor ray needs a phone target: on the host target the Ray workers measure, "
                   "and the screen runs in this process. Add --target android (the cluster's phones) or --device, or "
                   "drop --predictor")
SPACE_ROOT = "space_root.keras"


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
    shortlist: tuple[CandidateResult, ...] = ()  # --shortlist: the fine-tuned networks the finals were chosen among

    @property
    def feasible(self) -> tuple[CandidateResult, ...]:
        return tuple(c for c in self.candidates if c.feasible)


def _seed(config: SynthesisConfig, cycle: int, index: int) -> int:
    return config.seed * 1_000_003 + cycle * 1_000 + index


def _proposals(ctx: Context, generator, cycle: int) -> list[tuple[str, int | None, dict]]:
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
                  resume: bool = False, progress: bool = True, cycles: int | None = None,
                  executor=None) -> SynthesisResult:
    """Run (or resume) a synthesis run into ``out_dir`` and the store ``db``; see the module docstring.

    With ``resume``, the run's own ``run.json`` config and store are used (``db`` overrides the store);
    ``cycles`` then extends a gensynth or random run to that many cycles in total. ``executor``: None evaluates
    search candidates in this process; a :class:`toolkit.scale.tasks.RayExecutor` runs them as Ray tasks (stored
    here, in proposal order, each cycle waiting for its population: the same seeds give the same candidates)."""
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
    return _run_locked(config, out, db, resume, progress, cycles, executor)


def _run_locked(config: SynthesisConfig, out: Path, db, resume: bool, progress: bool,
                cycles: int | None, executor=None) -> SynthesisResult:
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
    if config.screen and executor is not None and not config.phones:
        # On a phone target the driver queues every measurement (RayPhonePool), so it screens them too.
        raise InvalidArgumentError(RAY_HOST_SCREEN)
    screen = make_screen(config, out)  # a bad --predictor file fails now, before any data is loaded
    phones = None
    if executor is not None:
        executor.check(config)
        phones = executor.phone_pool(config)  # the Ray cluster's phones, for a phone target
    try:  # loads data, reaches the target, checks a reused supernet and reference: fails before anything is written
        ctx = Context(config, out, requirements, phones=phones)
        open_space(ctx)
        ctx.reused_reference = reused_reference(config, out)
    except BaseException:
        if phones is not None:
            phones.close()
        raise
    ctx.progress = progress
    ctx.executor = executor
    ctx.screen = screen
    try:
        with RunLock(out), Store(db) as store:
            return _run_stages(ctx, store, run_id, db, started)
    finally:
        if screen is not None:
            screen.close()  # its counters: logged and in screen.json
        ctx.close()  # a phone farm's workers stop


def _run_stages(ctx: Context, store, run_id: str | None, db, started: float) -> SynthesisResult:
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
    _build_evaluator(ctx)
    phases.add("supernet" if config.uses_supernet else "pruning", time.perf_counter() - t0)

    t0 = time.perf_counter()
    searched_before = phases.seconds.get("search", 0.0)
    generator = Generator(ctx.space)
    if config.strategy == "gensynth":
        insights = form_insights(ctx.space, ctx.space_model, ctx.importance, op_profile=ctx.op_profile)
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
        # Candidates on their way, in proposal order. The CPU work (extraction, conversion) runs here one after the
        # other; measurements are queued (on one target: done at once; on a phone farm: in parallel) and each
        # candidate is finished and stored in proposal order, so results never depend on which phone was faster.
        queue: collections.deque[_Queued] = collections.deque()
        inflight: dict[str, _Queued] = {}  # spec hash -> first queued candidate of this cycle with it

        def settle(block: bool) -> None:
            while queue and (block or queue[0].ready()):
                c = queue.popleft().finish(store, run_id)
                if c.status == "ok":
                    ctx.evaluated.setdefault(c.spec_hash, c)
                cycle_results.append(c)
                if bar is not None:
                    bar.update(1)
                    best = _best_search(results + cycle_results)
                    bar.set_postfix(cycle=cycle, best=f"{best.macs:,} MACs {best.int8_top1:.2%}" if best else "none")

        for candidate_id, seed, choices in proposals:
            if candidate_id in done:
                item = _Queued.stored(candidate_from_row(done[candidate_id]))
            else:
                # The budget is the search phase's wall time, resumed runs included (phases.json keeps it).
                if config.budget_s is not None and searched_before + time.perf_counter() - t0 > config.budget_s:
                    stopped = "budget"
                    break
                item = _start_candidate(ctx, candidate_id, cycle, seed, choices, inflight)
            if item.spec_hash:
                inflight.setdefault(item.spec_hash, item)
            queue.append(item)
            settle(block=False)
        settle(block=True)  # the generator's update waits for the whole population
        results += cycle_results
        if stopped == "budget":
            break
        if config.strategy == "gensynth":
            update(generator, [Observation(c.choices, c.score if c.score is not None else 0.0, c.feasible,
                                           c.violation if c.status == "ok" else 10.0,
                                           c.macs if c.status == "ok" else None)
                               for c in cycle_results], elite_rule=config.elite)
            generator.save(out / "generator.json")
    if bar is not None:
        bar.close()
    if config.strategy == "gensynth" and not (out / "generator.json").exists():
        generator.save(out / "generator.json")
    phases.add("search", time.perf_counter() - t0)

    t0 = time.perf_counter()
    proto, reference = run_reference(ctx, store, run_id, done, proto)
    phases.add("reference", time.perf_counter() - t0)
    t0 = time.perf_counter()
    pool = run_shortlist(ctx, store, run_id, done, results, proto)
    if config.shortlist:
        phases.add("shortlist", time.perf_counter() - t0)
    t0 = time.perf_counter()
    finals = run_finals(ctx, store, run_id, done, pool)
    phases.add("final", time.perf_counter() - t0)
    store.finish_run(run_id, status=stopped)
    return SynthesisResult(run_id, str(out), str(db), config.strategy, proto, best_final(finals), tuple(results),
                           tuple(finals), reference, time.perf_counter() - started, stopped, dict(phases.seconds),
                           tuple(pool) if config.shortlist else ())


def _prototype(ctx: Context, store, run_id: str, done: dict) -> CandidateResult:
    """Train (or load) the prototype, convert and measure it; the same for the space root when the run has one;
    probe the space's network (the root, else the prototype) for its per-op profile and channel importance."""
    import keras

    from toolkit.synthesis.inherit import l1_importance
    from toolkit.synthesis.inquisitor import taylor_importance

    cfg, out = ctx.config, ctx.out
    spec = ctx.prototype_spec()
    proto_path = out / "prototype.keras"
    if "prototype" in done and proto_path.exists():
        proto = candidate_from_row(done["prototype"])
        ctx.prototype_model = keras.models.load_model(proto_path, compile=False)
    else:
        if cfg.prototype_path:
            _check_same_split(cfg, Path(cfg.prototype_path).parent / "run.json")
            model = load_prototype_file(ctx, cfg.prototype_path, spec, role="prototype",
                                        fix="pass the prototype.keras of an earlier run")
        elif ctx.executor is not None:
            model = ctx.executor.train_prototype(ctx)  # a Ray task: on a GPU node when the cluster has one
        else:
            model = train_prototype(ctx, spec)
        proto, rows = assess(ctx, model, spec, candidate_id="prototype", cycle=-1, strategy="prototype",
                             seed=cfg.seed, choices=ctx.prototype_choices(), phase="prototype",
                             reference=None, folder=out)
        model.save(proto_path)
        ctx.prototype_model = model
        write_candidate(store, run_id, proto, spec.to_json(), rows)
    ctx.prototype_result = proto
    ctx.space_model, ctx.space_result = ctx.prototype_model, proto
    if cfg.space_root is not None:
        ctx.space_model, ctx.space_result = _space_root(ctx, store, run_id, done)
    from toolkit.targets.base import OpStat

    profile_file = out / OP_PROFILE
    if not profile_file.exists():
        # The target's per-op profile of the space's network (where its time goes) for the inquisitor's insights: a
        # run of its own, so profiling overhead never reaches its stored latency.
        from toolkit.targets import ProfileOptions

        op = ctx.target.profile(Path(ctx.space_result.tflite_path), ProfileOptions(
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
        ctx.importance = l1_importance(ctx.space_model)
    else:
        probe = ctx.test.subset(n_train=cfg.probe_samples, seed=cfg.split_seed)
        ctx.importance = taylor_importance(ctx.space_model, probe.x_train, probe.y_train)
    np.savez(importance_file, **ctx.importance)
    return proto


def _space_root(ctx: Context, store, run_id: str, done: dict):
    """Train (or load) the space root with the prototype's recipe (epochs, data, learning rate), convert and measure
    it; a run that reuses a supernet takes that run's root. Stored as the search candidate ``space-root`` (cycle -1)
    with its accuracy drop against the prototype. Returns (model, result)."""
    import keras

    cfg, out = ctx.config, ctx.out
    spec = ctx.space.prototype
    path = out / SPACE_ROOT
    if "space-root" in done and path.exists():
        return keras.models.load_model(path, compile=False), candidate_from_row(done["space-root"])
    reused = ctx.reused_supernet
    if reused is not None and (reused.parent / SPACE_ROOT).is_file():
        model = keras.models.load_model(reused.parent / SPACE_ROOT, compile=False)
    elif ctx.executor is not None:
        model = ctx.executor.train_prototype(ctx, "space_root")  # a Ray task, as the prototype's
    else:
        model = train_prototype(ctx, spec)
    c, rows = assess(ctx, model, spec, candidate_id="space-root", cycle=-1, strategy=cfg.strategy, seed=cfg.seed,
                     choices=ctx.space.prototype_choices(), phase="search", reference=ctx.prototype_result.int8_top1)
    model.save(path)
    write_candidate(store, run_id, c, spec.to_json(), rows)
    log.info("space root %s: %s MACs, validation top-1 %.2f%% (prototype %.2f%%)", cfg.space_root, f"{c.macs:,}",
             100 * c.int8_top1, 100 * ctx.prototype_result.int8_top1)
    return model, c


def train_prototype(ctx: Context, spec):
    """The prototype from scratch: its epochs on the training split (in this process or a Ray task's)."""
    from toolkit.arch import build_model
    from toolkit.train import TrainBudget, train

    cfg = ctx.config
    model = build_model(spec, seed=cfg.seed)
    train(model, ctx.train_data, TrainBudget(epochs=cfg.prototype_epochs), learning_rate=cfg.learning_rate,
          seed=cfg.seed, progress=ctx.progress)
    return model


def fit_supernet(ctx: Context, sn) -> None:
    """Weight-sharing training of ``sn`` into the run's supernet folder (resumes from its checkpoint)."""
    from toolkit.synthesis.supernet import train_supernet

    cfg = ctx.config
    train_supernet(sn, ctx.train_data.x_train, ctx.train_data.y_train, cfg.supernet_epochs, ctx.out / "supernet",
                   learning_rate=cfg.supernet_learning_rate, seed=cfg.split_seed, progress=ctx.progress,
                   data=cfg.data_fingerprint())


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


def open_space(ctx: Context) -> None:
    """Set the run's decision space and the supernet it reuses (``ctx.reused_supernet``), refusing a mismatched one:
    done once, before anything is trained or written."""
    ctx.space = ctx.config.space(ctx.prototype_spec())
    ctx.reused_supernet = _reused_supernet(ctx)


def _reused_supernet(ctx: Context) -> Path | None:
    """The checkpoint folder of the supernet this run reuses (``supernet_path``), or None. Refuses one trained over
    another space (separable or not, another root) or on other images, with the fix."""
    from toolkit.synthesis.supernet import has_checkpoint, read_state

    cfg = ctx.config
    if not (cfg.supernet_path and cfg.uses_supernet):
        return None
    given = Path(cfg.supernet_path)
    given = given / "supernet" if (given / "supernet").is_dir() else given
    if not has_checkpoint(given):
        raise InvalidArgumentError(f"No trained supernet in {cfg.supernet_path!r}; pass the --out folder of a "
                                   f"finished synthesis run with the same prototype and data")
    state = read_state(given)
    if bool(state.get("separable", False)) != ctx.space.separable:
        raise InvalidArgumentError(
            f"The supernet in {cfg.supernet_path!r} was trained {'with' if not cfg.separable else 'without'} "
            f"separable blocks and this run searches {'with' if cfg.separable else 'without'} them; give "
            f"--separable as that run did, or train a supernet for this run")
    root = state.get("root")  # absent in checkpoints written before a space could have a root
    if root != ctx.space.prototype.spec_hash() and (root is not None or cfg.space_root is not None):
        raise InvalidArgumentError(
            f"The supernet in {cfg.supernet_path!r} was trained over another architecture than this run's space "
            f"root ({ctx.space.prototype.name}); give the same --space-root and --prototype-width as that run "
            f"did, or train a supernet for this run")
    if state.get("data") != cfg.data_fingerprint():
        raise InvalidArgumentError(
            f"The supernet in {cfg.supernet_path!r} was trained on other images ({state.get('data')}) than this run "
            f"splits ({cfg.data_fingerprint()}): its training images could be in this run's validation split. "
            f"Use the same data options and data seed, or train a supernet for this run")
    return given


def _build_evaluator(ctx: Context) -> None:
    from toolkit.synthesis.evaluator import PrunedPrototypeEvaluator, SupernetEvaluator
    from toolkit.synthesis.supernet import Supernet

    cfg = ctx.config
    if not cfg.uses_supernet:
        ctx.evaluator = PrunedPrototypeEvaluator(ctx.prototype_model, ctx.space, ctx.importance, ctx.recal_x)
        return
    sn = Supernet.from_prototype(ctx.space_model, ctx.space, ctx.importance)
    folder = ctx.out / "supernet"
    given = ctx.reused_supernet
    if given is not None:
        importance_file = given.parent / "importance.npz"
        if importance_file.is_file():  # channel order is the supernet's: take its importance too
            with np.load(importance_file) as npz:
                ctx.importance = {k: npz[k] for k in npz.files}
            sn = Supernet.from_prototype(ctx.space_model, ctx.space, ctx.importance)
            np.savez(ctx.out / "importance.npz", **ctx.importance)
        sn.load(given)
    elif ctx.executor is not None:
        ctx.executor.train_supernet(ctx)  # a Ray task; it checkpoints into the run folder, read here
        sn.load(folder)
    else:
        fit_supernet(ctx, sn)
    ctx.evaluator = SupernetEvaluator(sn, ctx.recal_x)


def _search_reference(ctx: Context, store, run_id: str, done: dict, proto: CandidateResult) -> None:
    """The prototype architecture as the search's evaluator sees it: accuracy_drop during the search is
    measured against it (same evaluator, same split), so the drop compares like with like."""
    cfg = ctx.config
    if not cfg.uses_supernet:
        ctx.search_reference = proto.int8_top1  # the pruning baseline's weights are the prototype's own
        return
    cid = "supernet-max"
    if cid in done:
        c = candidate_from_row(done[cid])
    else:
        model, spec = ctx.evaluator.proxy(ctx.space.prototype_choices(), name=f"{cfg.prototype}_{cid}")
        c, rows = assess(ctx, model, spec, candidate_id=cid, cycle=-1, strategy=cfg.strategy, seed=None,
                         choices=ctx.space.prototype_choices(), phase="search", reference=None)
        write_candidate(store, run_id, c, spec.to_json(), rows)
    ctx.evaluated.setdefault(c.spec_hash, c)
    # With a space root, the search's drop is against the prototype: the candidate's loss against the root (both
    # proxies) plus the root's own gap to the prototype (both trained with the prototype's recipe).
    ctx.search_reference = c.int8_top1 + (proto.int8_top1 - ctx.space_result.int8_top1)


class _Queued:
    """One search candidate on its way (see the cycle loop): ``ready()`` when its measurement is in; ``finish``
    (once, in proposal order) scores it, stores it and returns it."""

    def __init__(self, spec_hash: str | None, ready, finish):
        self.spec_hash = spec_hash
        self._ready = ready
        self._finish = finish
        self.result: CandidateResult | None = None

    @classmethod
    def stored(cls, c: CandidateResult) -> "_Queued":
        item = cls(c.spec_hash if c.status == "ok" else None, lambda: True, None)
        item.result = c
        return item

    def ready(self) -> bool:
        return self.result is not None or self._ready()

    def finish(self, store, run_id: str) -> CandidateResult:
        if self.result is None:
            c, spec_json, rows = self._finish()
            write_candidate(store, run_id, c, spec_json, rows)
            self.result = c
        return self.result


def _start_candidate(ctx: Context, candidate_id: str, cycle: int, seed: int | None, choices: dict,
                     inflight: dict[str, _Queued]) -> _Queued:
    """Start one search candidate: an architecture evaluated before (this run, or earlier in this cycle) is copied,
    never evaluated twice; otherwise extract and convert it now and queue its measurement."""
    cfg = ctx.config
    spec = ctx.space.apply(choices, name=f"{cfg.prototype}_{candidate_id}")
    spec_hash = spec.spec_hash()

    def copy_of(twin: CandidateResult):
        # Same architecture as an earlier candidate of this run: same numbers, no second evaluation.
        c = dataclasses.replace(twin, candidate_id=candidate_id, cycle=cycle, seed=seed, strategy=cfg.strategy,
                                choices=choices, phase="search", test_top1=None, test_feasible=None)
        return c, spec.to_json(), None

    twin = ctx.evaluated.get(spec_hash)
    if twin is not None:
        return _Queued(spec_hash, lambda: True, lambda: copy_of(twin))
    source = inflight.get(spec_hash)
    if source is not None:
        def after_source():
            # Finished after its source (proposal order); a failure is never copied: then it is evaluated itself.
            if source.result is not None and source.result.status == "ok":
                return copy_of(source.result)
            return _finish_candidate(ctx, candidate_id, cycle, seed, choices, spec, None)
        return _Queued(spec_hash, source.ready, after_source)
    pending = _start_assess(ctx, candidate_id, cycle, seed, choices)
    return _Queued(spec_hash, lambda: isinstance(pending, ToolkitError) or pending.done(),
                   lambda: _finish_candidate(ctx, candidate_id, cycle, seed, choices, spec, pending))


def _start_assess(ctx: Context, candidate_id: str, cycle: int, seed: int | None, choices: dict):
    """Extraction + int8 conversion now, the measurement queued: an Assessment, or the ToolkitError it raised.
    With a Ray executor all of it is a Ray task: its pending result has the same done()/finish()/spec."""
    cfg = ctx.config
    if ctx.executor is not None:
        return ctx.executor.start(ctx, candidate_id, cycle, seed, choices)
    try:
        model, spec = ctx.evaluator.proxy(choices, name=f"{cfg.prototype}_{candidate_id}")
        return start_assess(ctx, model, spec, candidate_id=candidate_id, cycle=cycle, strategy=cfg.strategy,
                            seed=seed, choices=choices, phase="search", reference=ctx.search_reference)
    except ToolkitError as exc:
        return exc


def _finish_candidate(ctx: Context, candidate_id: str, cycle: int, seed: int | None, choices: dict, spec,
                      pending) -> tuple[CandidateResult, str, tuple | None]:
    """Wait for the candidate's measurement and score it (``pending`` None: evaluate it now).

    A failure is a stored candidate, not a crash; a transient one (a lost phone, a timeout) is retried once."""
    cfg = ctx.config
    for attempt in (1, 2):
        if pending is None:
            pending = _start_assess(ctx, candidate_id, cycle, seed, choices)
        try:
            if isinstance(pending, ToolkitError):
                raise pending
            c, rows = pending.finish()
            spec = pending.spec  # the evaluated network's own description (as stored before the farm)
            break
        except ToolkitError as exc:
            pending = None
            if attempt == 1 and getattr(exc, "transient", False):
                log.warning("candidate %s: %s; retrying once", candidate_id, exc)
                continue
            log.warning("candidate %s failed: %s", candidate_id, exc)
            c, rows = CandidateResult(candidate_id, cycle, cfg.strategy, seed, spec.spec_hash(), "failed",
                                      f"{type(exc).__name__}: {exc}", choices=choices, violation=10.0), None
            break
    return c, spec.to_json(), rows


def _best_search(results) -> CandidateResult | None:
    feasible = [c for c in results if c.feasible and c.score is not None]
    return max(feasible, key=lambda c: c.score) if feasible else None


