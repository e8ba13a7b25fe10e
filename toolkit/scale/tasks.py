"""Candidate work as Ray tasks: ``synthesize --executor ray``.

The driver keeps the generator, the inquisitor and the only writer of the store. The prototype's and the
supernet's training are Ray tasks (one each, with a GPU when the cluster has one; the supernet checkpoints into the
run folder each epoch, so a retried task resumes); each cycle's candidates (sub-network
extraction from the supernet + batch-norm re-estimation + validated int8 conversion + measurement on the worker's
host target) run as Ray tasks, and the driver stores them in proposal order after the whole population is in, before
the generator's update, so the same seeds give the same candidates as in-process. A task runs what the in-process
loop runs (``evaluator.proxy`` then ``start_assess(...).finish()``) on a worker that rebuilt the run's evaluator from
the run folder once (data split, prototype, channel importance, supernet checkpoint). The finals (final recipe,
int8, validation, test once) are Ray tasks too, all at once; the reference (the prototype retrained) stays on the
driver. The run folder must be at the same path on every
node (one machine, or shared storage such as NFS); results come back to the driver, which stores them.

With a phone target (``--target android``: the phones ``ferminet agent`` registered in the cluster, all of them or
those named with ``--device``) a task only extracts and converts (``assess.prepare``, no target on the worker); as
each task completes, the driver queues its measurement on a :class:`~toolkit.scale.phones.RayPhonePool`, whose
actors run on the phones' own hosts, and scores it when it is in. Finals alike: trained and converted by a task,
measured on a phone, their test top-1 read on the driver.

Ray retries a task whose worker died (``max_retries``); a candidate's own failure comes back as a failed candidate,
as in-process.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from toolkit.scale.cluster import ScaleError, connect

log = logging.getLogger(__name__)

EXECUTORS = ("inprocess", "ray")


@dataclass(frozen=True)
class RunState:
    """What a worker needs besides the run folder: the driver's state at this cycle."""

    config: dict
    out: str
    search_reference: float | None
    prototype_result: object  # CandidateResult (relative bounds divide by its costs)
    final_reference: object = None  # CandidateResult finals are judged against (final tasks only)
    measure: bool = True  # False: phones measure (the driver queues them); the worker only converts


_CONTEXTS: dict = {}  # per worker process: (out, config, checkpoint mtime) -> Context


def _checkpoint_folder(config, out: Path) -> Path:
    if config.supernet_path:
        given = Path(config.supernet_path)
        return given / "supernet" if (given / "supernet").is_dir() else given
    return out / "supernet"


def _new_context(state: RunState):
    """The run's Context rebuilt from its folder on a worker: data split, decision space, and the prototype and
    its channel importance once the driver has saved them. No target unless the worker measures.
    Returns (Context, the prototype's ArchSpec)."""
    import keras
    import numpy as np

    from toolkit.arch import get_prototype
    from toolkit.synthesis.assess import Context
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.requirements import parse_requirements

    config = SynthesisConfig.from_dict(state.config)
    out = Path(state.out)
    ctx = Context(config, out, parse_requirements(config.requirements), connect=state.measure)
    spec = get_prototype(config.prototype, ctx.test.input_shape, ctx.test.num_classes, config.prototype_width)
    ctx.space = config.space(spec)
    if (out / "prototype.keras").exists():
        ctx.prototype_model = keras.models.load_model(out / "prototype.keras", compile=False)
    ctx.space_model = ctx.prototype_model
    if config.space_root is not None:
        from toolkit.synthesis.loop import SPACE_ROOT

        root_path = out / SPACE_ROOT
        ctx.space_model = keras.models.load_model(root_path, compile=False) if root_path.exists() else None
    if (out / "importance.npz").exists():
        with np.load(out / "importance.npz") as npz:
            ctx.importance = {k: npz[k] for k in npz.files}
    return ctx, spec


def worker_context(state: RunState):
    """The run's Context with its evaluator, rebuilt on a worker from its folder (cached per worker process)."""
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.evaluator import PrunedPrototypeEvaluator, SupernetEvaluator
    from toolkit.synthesis.supernet import Supernet, has_checkpoint

    config = SynthesisConfig.from_dict(state.config)
    out = Path(state.out)
    folder = _checkpoint_folder(config, out)
    stamp = max((p.stat().st_mtime_ns for p in folder.glob("*")), default=0) if folder.is_dir() else 0
    key = (str(out), json.dumps(state.config, sort_keys=True, default=str), stamp, state.measure)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx, _ = _new_context(state)
        if config.uses_supernet:
            sn = Supernet.from_prototype(ctx.space_model, ctx.space, ctx.importance)
            if has_checkpoint(folder):
                sn.load(folder)
            ctx.evaluator = SupernetEvaluator(sn, ctx.recal_x)
        else:
            ctx.evaluator = PrunedPrototypeEvaluator(ctx.prototype_model, ctx.space, ctx.importance, ctx.recal_x)
        _CONTEXTS.clear()  # one run per worker at a time: free the previous run's supernet
        _CONTEXTS[key] = ctx
    ctx.search_reference = state.search_reference
    ctx.prototype_result = state.prototype_result
    ctx.final_reference = state.final_reference
    return ctx


def _train_task(state: RunState, what: str):
    """On a worker: train the prototype or the space root (saved beside the run's, for the driver to load) or the
    supernet (it checkpoints into the run folder each epoch, so a retried task resumes). Returns (path or None, this
    pid)."""
    import os

    from toolkit.synthesis.loop import fit_supernet, train_prototype
    from toolkit.synthesis.supernet import Supernet

    ctx, spec = _new_context(state)
    if what in ("prototype", "space_root"):
        path = ctx.out / f"{what}.trained.keras"
        train_prototype(ctx, spec if what == "prototype" else ctx.space.prototype).save(path)
        return str(path), os.getpid()
    fit_supernet(ctx, Supernet.from_prototype(ctx.space_model, ctx.space, ctx.importance))
    return None, os.getpid()


def _evaluate_task(state: RunState, candidate_id: str, cycle: int, seed, choices: dict):
    """On a worker: extraction + BN re-estimation + int8 conversion, and (``state.measure``) the measurement on the
    worker's host, as the in-process loop does it. Returns (CandidateResult, store rows, ArchSpec), or without
    measurement the :class:`~toolkit.synthesis.assess.Prepared` network. Nothing is stored here."""
    from toolkit.synthesis.assess import prepare

    ctx = worker_context(state)
    cfg = ctx.config
    model, spec = ctx.evaluator.proxy(choices, name=f"{cfg.prototype}_{candidate_id}")
    return _measured_here(state, ctx, prepare(ctx, model, spec, candidate_id=candidate_id, cycle=cycle,
                                              strategy=cfg.strategy, seed=seed, choices=choices, phase="search",
                                              reference=ctx.search_reference))


def _final_task(state: RunState, parent):
    """On a worker: one final (final recipe, int8, validation; with ``state.measure`` also test once and the host
    measurement, as in-process), like :func:`_evaluate_task`."""
    from toolkit.synthesis.finals import prepare_final

    ctx = worker_context(state)
    return _measured_here(state, ctx, prepare_final(ctx, parent))


def _measured_here(state: RunState, ctx, prepared):
    """A task's result: without ``state.measure`` the Prepared network (the driver measures it on a phone), else
    measured on this worker's host and scored: (CandidateResult, store rows, ArchSpec)."""
    if not state.measure:
        return prepared
    c, rows = prepared.queue(ctx).finish()
    return c, rows, prepared.spec


def _get(ray, ref):
    """A task's result; a candidate's own failure (a ToolkitError raised in the task) is raised as itself, to be
    stored as a failed candidate as in-process."""
    from ray.exceptions import RayTaskError

    from toolkit.errors import ToolkitError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, ToolkitError):
            raise cause from None
        raise


class RayPending:
    """A candidate evaluating (and measured) as a Ray task, with the loop's pending-assessment interface:
    ``done()``, ``finish()`` -> (CandidateResult, store rows) raising the candidate's own error as in-process, and
    ``spec``."""

    def __init__(self, ray, ref):
        self._ray = ray
        self._ref = ref
        self.spec = None

    def done(self) -> bool:
        ready, _ = self._ray.wait([self._ref], timeout=0)
        return bool(ready)

    def finish(self):
        c, rows, self.spec = _get(self._ray, self._ref)
        return c, rows


class PhonePending:
    """A candidate converted by a Ray task and measured on the cluster's phones: when its task completes, the
    executor queues the measurement here, on the driver (:meth:`RayExecutor.advance`). Same interface as
    :class:`RayPending`."""

    def __init__(self, executor: "RayExecutor", ref, ctx):
        self._executor, self._ref, self._ctx = executor, ref, ctx
        self._assessment = None
        self._error = None
        self.spec = None

    def queue(self) -> None:
        """The task is done: queue the measurement of what it converted (or keep the task's error)."""
        from toolkit.errors import ToolkitError

        try:
            prepared = _get(self._executor.ray, self._ref)
            self.spec = prepared.spec
            self._assessment = prepared.queue(self._ctx)
        except ToolkitError as exc:
            self._error = exc

    def _settled(self) -> bool:
        return self._error is not None or self._assessment is not None

    def done(self) -> bool:
        self._executor.advance()
        return self._error is not None or (self._assessment is not None and self._assessment.done())

    def finish(self):
        while not self._settled():
            self._executor.advance(timeout=0.2)
        if self._error is not None:
            raise self._error
        return self._assessment.finish()


class RayExecutor:
    """Evaluate search candidates (and train finals) as Ray tasks on the cluster at ``address`` (``auto``: this
    machine's). A phone target's measurements run on the phones the cluster's agents serve (:meth:`phone_pool`).

    ``num_gpus`` per task: default 1 when the cluster has GPUs (extraction and BN re-estimation use one), else 0.
    ``max_retries``: Ray re-runs a task whose worker process or node died this often.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: float = 1, num_gpus: float | None = None,
                 max_retries: int = 3):
        self.address = address
        self.ray = connect(address)
        if num_gpus is None:
            num_gpus = 1 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0
        options = dict(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)
        self._task = self.ray.remote(**options)(_evaluate_task)
        self._final = self.ray.remote(**options)(_final_task)
        self._train = self.ray.remote(**options)(_train_task)
        self.trained_by: dict[str, int] = {}  # "prototype" / "supernet" -> the worker process that trained it
        self._state = None
        self._state_key = None
        self._waiting: dict = {}  # task ref -> PhonePending whose measurement is not queued yet

    def check(self, config) -> None:
        """Refuse a run this executor cannot serve, before anything is trained."""
        if config.target not in ("host", "android"):
            raise ScaleError(f"--executor ray measures on the workers' host or on the cluster's phones; this run's "
                             f"target is {config.target!r}. Use --target host or --target android")

    def phone_serials(self) -> list[str]:
        """Every phone registered in the cluster (by ``ferminet agent``), by serial."""
        from toolkit.scale.phones import list_phone_actors

        serials = list_phone_actors()
        if not serials:
            raise ScaleError("No phones are registered in the Ray cluster. Run `ferminet agent --ray-address ADDR` "
                             "on the hosts the phones are plugged into, or use --target host")
        return serials

    def phone_pool(self, config):
        """A phone target's measurements: a RayPhonePool over the run's phones (None for the host target)."""
        if config.target != "android":
            return None
        from toolkit.scale.phones import RayPhonePool

        return RayPhonePool(self.address, serials=config.phones or None)

    def _run_state(self, ctx, final: bool = False, measure: bool | None = None):
        measure = ctx.farm is None if measure is None else measure
        if final:
            return RunState(ctx.config.to_dict(), str(Path(ctx.out).resolve()), ctx.search_reference,
                            ctx.prototype_result, ctx.final_reference, measure)
        key = (ctx.search_reference, id(ctx.prototype_result), measure)
        if key != self._state_key:
            self._state = self.ray.put(RunState(ctx.config.to_dict(), str(Path(ctx.out).resolve()),
                                                ctx.search_reference, ctx.prototype_result, measure=measure))
            self._state_key = key
        return self._state

    def _pending(self, ctx, ref):
        if ctx.farm is None:
            return RayPending(self.ray, ref)
        pending = PhonePending(self, ref, ctx)
        self._waiting[ref] = pending
        return pending

    def start(self, ctx, candidate_id: str, cycle: int, seed, choices: dict):
        """Submit one candidate's evaluation; the loop goes on to the next and collects in proposal order."""
        ref = self._task.remote(self._run_state(ctx), candidate_id, cycle, seed, choices)
        return self._pending(ctx, ref)

    def start_final(self, ctx, parent):
        """Submit one final's training and assessment (finals.run_final) as a Ray task."""
        return self._pending(ctx, self._final.remote(self._run_state(ctx, final=True), parent))

    def train_prototype(self, ctx, what: str = "prototype"):
        """The prototype (or, ``what="space_root"``, the space root) trained by a Ray task (1 GPU when the cluster
        has one); the loaded Keras model."""
        import keras

        path, self.trained_by[what] = _get(self.ray, self._train.remote(
            self._run_state(ctx, final=True, measure=False), what))
        model = keras.models.load_model(path, compile=False)
        Path(path).unlink()
        return model

    def train_supernet(self, ctx) -> None:
        """The supernet trained by a Ray task into the run folder (``supernet/``); the driver then loads it."""
        _, self.trained_by["supernet"] = _get(self.ray, self._train.remote(
            self._run_state(ctx, final=True, measure=False), "supernet"))

    def advance(self, timeout: float = 0) -> None:
        """Queue the measurement of every phone-target task that has completed (waiting up to ``timeout`` s for
        one), in the order they complete: phones start on a network as soon as it is converted."""
        if not self._waiting:
            return
        ready, _ = self.ray.wait(list(self._waiting), num_returns=len(self._waiting), timeout=timeout)
        for ref in ready:
            self._waiting.pop(ref).queue()


def get_executor(name: str = "inprocess", address: str | None = None):
    """None for in-process (the loop evaluates candidates itself), or a :class:`RayExecutor`."""
    if name == "inprocess":
        return None
    if name == "ray":
        return RayExecutor(address)
    from toolkit.errors import InvalidArgumentError

    raise InvalidArgumentError(f"Unknown executor {name!r}. Use one of {', '.join(EXECUTORS)}")
