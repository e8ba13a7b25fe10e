"""Candidate work as Ray tasks: ``synthesize --executor ray``.

The driver keeps the generator, the inquisitor and the only writer of the store; each cycle's candidates (sub-network
extraction from the supernet + batch-norm re-estimation + validated int8 conversion + measurement on the worker's
host target) run as Ray tasks, and the driver stores them in proposal order after the whole population is in, before
the generator's update, so the same seeds give the same candidates as in-process. A task runs what the in-process
loop runs (``evaluator.proxy`` then ``start_assess(...).finish()``) on a worker that rebuilt the run's evaluator from
the run folder once (data split, prototype, channel importance, supernet checkpoint). The finals (final recipe,
int8, validation, test once) are Ray tasks too, all at once; the reference (the prototype retrained) stays on the
driver. The run folder must be at the same path on every
node (one machine, or shared storage such as NFS); results come back to the driver, which stores them.

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


_CONTEXTS: dict = {}  # per worker process: (out, config, checkpoint mtime) -> Context


def _checkpoint_folder(config, out: Path) -> Path:
    if config.supernet_path:
        given = Path(config.supernet_path)
        return given / "supernet" if (given / "supernet").is_dir() else given
    return out / "supernet"


def worker_context(state: RunState):
    """The run's Context rebuilt on a worker from its folder (cached per worker process)."""
    import keras
    import numpy as np

    from toolkit.arch import get_prototype
    from toolkit.synthesis.assess import Context
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.evaluator import PrunedPrototypeEvaluator, SupernetEvaluator
    from toolkit.synthesis.requirements import parse_requirements
    from toolkit.synthesis.space import DecisionSpace
    from toolkit.synthesis.supernet import Supernet, has_checkpoint

    config = SynthesisConfig.from_dict(state.config)
    out = Path(state.out)
    folder = _checkpoint_folder(config, out)
    stamp = max((p.stat().st_mtime_ns for p in folder.glob("*")), default=0) if folder.is_dir() else 0
    key = (str(out), json.dumps(state.config, sort_keys=True, default=str), stamp)
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        ctx = Context(config, out, parse_requirements(config.requirements))
        spec = get_prototype(config.prototype, ctx.test.input_shape, ctx.test.num_classes, config.prototype_width)
        ctx.space = DecisionSpace.from_prototype(spec, config.width_options, config.resolution_options)
        ctx.prototype_model = keras.models.load_model(out / "prototype.keras", compile=False)
        with np.load(out / "importance.npz") as npz:
            ctx.importance = {k: npz[k] for k in npz.files}
        if config.uses_supernet:
            sn = Supernet.from_prototype(ctx.prototype_model, ctx.space, ctx.importance)
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


def _evaluate_task(state: RunState, candidate_id: str, cycle: int, seed, choices: dict):
    """On a worker: extraction + BN re-estimation + int8 conversion + measurement, as the in-process loop does it
    (``start_assess(...).finish()``); returns (CandidateResult, store rows, ArchSpec). Nothing is stored here."""
    from toolkit.synthesis.assess import start_assess

    ctx = worker_context(state)
    cfg = ctx.config
    model, spec = ctx.evaluator.proxy(choices, name=f"{cfg.prototype}_{candidate_id}")
    pending = start_assess(ctx, model, spec, candidate_id=candidate_id, cycle=cycle, strategy=cfg.strategy,
                           seed=seed, choices=choices, phase="search", reference=ctx.search_reference)
    c, rows = pending.finish()
    return c, rows, pending.spec


def _final_task(state: RunState, parent):
    """On a worker: one final (final recipe, int8, validation, test once, host measurement), as in-process."""
    from toolkit.synthesis.finals import run_final

    c, rows = run_final(worker_context(state), parent)
    return c, rows, None


class RayPending:
    """A candidate evaluating as a Ray task, with the loop's pending-assessment interface: ``done()``, ``finish()``
    -> (CandidateResult, store rows) raising the candidate's own error as in-process, and ``spec``."""

    def __init__(self, ray, ref):
        self._ray = ray
        self._ref = ref
        self.spec = None

    def done(self) -> bool:
        ready, _ = self._ray.wait([self._ref], timeout=0)
        return bool(ready)

    def finish(self):
        from ray.exceptions import RayTaskError

        from toolkit.errors import ToolkitError

        try:
            c, rows, self.spec = self._ray.get(self._ref)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, ToolkitError):
                raise cause from None  # the candidate's own failure: stored as a failed candidate
            raise
        return c, rows


class RayExecutor:
    """Evaluate search candidates as Ray tasks on the cluster at ``address`` (``auto``: this machine's).

    ``num_gpus`` per task: default 1 when the cluster has GPUs (extraction and BN re-estimation use one), else 0.
    ``max_retries``: Ray re-runs a task whose worker process or node died this often.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: float = 1, num_gpus: float | None = None,
                 max_retries: int = 3):
        self.ray = connect(address)
        if num_gpus is None:
            num_gpus = 1 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0
        options = dict(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)
        self._task = self.ray.remote(**options)(_evaluate_task)
        self._final = self.ray.remote(**options)(_final_task)
        self._state = None
        self._state_key = None

    def check(self, config) -> None:
        """Refuse a run this executor cannot serve, before anything is trained."""
        if config.target != "host":
            raise ScaleError(f"--executor ray measures candidates on the workers' host target; this run's target is "
                             f"{config.target!r}. Use --target host, or the in-process executor for phones")

    def start(self, ctx, candidate_id: str, cycle: int, seed, choices: dict) -> RayPending:
        """Submit one candidate's evaluation; the loop goes on to the next and collects in proposal order."""
        key = (ctx.search_reference, id(ctx.prototype_result))
        if key != self._state_key:
            self._state = self.ray.put(RunState(ctx.config.to_dict(), str(Path(ctx.out).resolve()),
                                                ctx.search_reference, ctx.prototype_result))
            self._state_key = key
        return RayPending(self.ray, self._task.remote(self._state, candidate_id, cycle, seed, choices))

    def start_final(self, ctx, parent) -> RayPending:
        """Submit one final's training and assessment (finals.run_final) as a Ray task."""
        state = RunState(ctx.config.to_dict(), str(Path(ctx.out).resolve()), ctx.search_reference,
                         ctx.prototype_result, ctx.final_reference)
        return RayPending(self.ray, self._final.remote(state, parent))


def get_executor(name: str = "inprocess", address: str | None = None):
    """None for in-process (the loop evaluates candidates itself), or a :class:`RayExecutor`."""
    if name == "inprocess":
        return None
    if name == "ray":
        return RayExecutor(address)
    from toolkit.errors import InvalidArgumentError

    raise InvalidArgumentError(f"Unknown executor {name!r}. Use one of {', '.join(EXECUTORS)}")
