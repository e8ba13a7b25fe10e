"""Final training: the networks the search chose get the final recipe, and so does the prototype architecture
(the reference), so no network wins by having been trained longer. Only finals are "synthesized networks";
requirements are judged on them, on validation and, once, on test."""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.assess import CandidateResult, Context, Prepared, assess, candidate_from_row, \
    load_prototype_file, prepare, report_on_test, write_candidate
from toolkit.synthesis.inquisitor import non_dominated

log = logging.getLogger(__name__)


FINAL_SPAN = 2.0  # the closest finals spread from the closest network down to 1/FINAL_SPAN of its MACs


def choose_finals(results, k: int) -> list[CandidateResult]:
    """Up to ``k`` distinct architectures, on validation numbers only.

    First the best U among those whose proxy meets the requirements. If fewer than ``k`` do, the others come from
    the Pareto front of the rest over (violation, MACs): a network that another matches or beats on both is left
    out, so a twin the proxy cannot tell apart (a zero-padded larger kernel scores what the smaller one scores)
    never takes a final from the network it copies. From that front: the closest to meeting the requirements
    (least violation), then points spread evenly in log MACs between its MACs and ``1 / FINAL_SPAN`` of them, so
    the final-training budget brackets where the requirement is met instead of retraining one network's twins.
    If the front runs short, the closest of the rest fill the places (least violation, then best U)."""
    if k <= 0:
        return []
    ok = [c for c in results if c.status == "ok" and c.score is not None]
    chosen, seen = [], set()

    def take(c) -> None:
        if c.spec_hash not in seen and len(chosen) < k:
            chosen.append(c)
            seen.add(c.spec_hash)

    for c in sorted((c for c in ok if c.feasible), key=lambda c: -c.score):
        take(c)
    rest = sorted((c for c in ok if not c.feasible and c.spec_hash not in seen), key=lambda c: (c.violation, -c.score))
    front = [rest[i] for i in non_dominated([(c.violation, c.macs) for c in rest])]
    if front and len(chosen) < k:
        closest = front[0]
        take(closest)
        below = [c for c in front if c.macs < closest.macs]
        places = k - len(chosen)
        for i in range(1, places + 1):
            target = math.log(closest.macs) - math.log(FINAL_SPAN) * i / places
            free = [c for c in below if c.spec_hash not in seen]
            if free:
                take(min(free, key=lambda c: abs(math.log(c.macs) - target)))
    for c in front + rest:
        take(c)
    return chosen


def best_final(finals) -> CandidateResult | None:
    """The final with the best validation U among those meeting the requirements on validation."""
    ok = [c for c in finals if c.status == "ok" and c.feasible and c.score is not None]
    return max(ok, key=lambda c: c.score) if ok else None


def train_final(ctx: Context, choices: dict, name: str, *, teacher=None):
    """The final recipe: the evaluator's weights for ``choices``, then the prototype's epochs (or
    ``final_epochs``) on its data at ``final_learning_rate``; distilled from ``teacher`` when given, else, under
    ``distill``, from :func:`final_teacher`."""
    model, spec = ctx.evaluator.start(choices, name=name)
    if teacher is None and ctx.config.distill:
        teacher = final_teacher(ctx)
    _final_recipe(ctx, model, teacher)
    return model, spec


def final_teacher(ctx: Context):
    """The network finals distill from under ``distill``: the reference they are judged against (the stronger on
    validation of the prototype as trained and the prototype given the finals' extra training), loaded once."""
    import keras

    ref = ctx.final_reference
    if ref is None or ref.candidate_id != "reference" or not ref.keras_path:
        return ctx.prototype_model
    if ctx.teacher is None or ctx.teacher[0] != ref.keras_path:
        ctx.teacher = (ref.keras_path, keras.models.load_model(ref.keras_path, compile=False))
    return ctx.teacher[1]


def _final_recipe(ctx: Context, model, teacher) -> None:
    from toolkit.train import TrainBudget, train

    cfg = ctx.config
    train(model, ctx.train_data, TrainBudget(epochs=cfg.final_epochs or cfg.prototype_epochs),
          learning_rate=cfg.final_learning_rate, seed=cfg.seed, progress=ctx.progress, teacher=teacher)


def train_reference(ctx: Context, name: str):
    """The prototype architecture given the finals' extra training. Over the prototype's own space: the final
    recipe from the supernet's largest sub-network (the prototype after its share of the supernet epochs). Over a
    space root the supernet holds no prototype, so the trained prototype gets the supernet's epochs (at the
    supernet's learning rate) first, then the final recipe. Never distilled: under ``distill`` the reference is what
    the finals learn from. Returns (model, spec)."""
    from toolkit.arch import build_model
    from toolkit.train import TrainBudget, train

    cfg = ctx.config
    if cfg.space_root is None:
        model, spec = ctx.evaluator.start(ctx.space.prototype_choices(), name=name)
        _final_recipe(ctx, model, None)
        return model, spec
    spec = dataclasses.replace(ctx.prototype_spec(), name=name)
    model = build_model(spec, seed=cfg.seed)
    model.set_weights(ctx.prototype_model.get_weights())
    if cfg.supernet_epochs:
        train(model, ctx.train_data, TrainBudget(epochs=cfg.supernet_epochs),
              learning_rate=cfg.supernet_learning_rate, seed=cfg.seed, progress=ctx.progress)
    _final_recipe(ctx, model, None)
    return model, spec


def reused_reference(config, out: Path) -> Path | None:
    """The ``reference.keras`` of the run ``config.reference_path`` names, or None without one. Refuses a folder
    without a trained reference, or one whose reference was trained on other images or with another recipe (the
    finals would be judged against, and learn from, a network not given their training), with the fix. Called
    before anything is written; a resumed run that already holds its copy (``out``/finals) takes that one."""
    from toolkit.synthesis.config import SynthesisConfig, read_run_file

    if not config.reference_path or config.final_k == 0:
        return None
    if (out / "finals" / "reference.keras").is_file():
        return out / "finals" / "reference.keras"
    folder = Path(config.reference_path)
    other = SynthesisConfig.from_dict(read_run_file(folder)["config"])
    path = folder / "finals" / "reference.keras"
    if not path.is_file():
        raise InvalidArgumentError(f"{str(folder)!r} holds no trained reference (no finals/reference.keras); pass the "
                                   f"--out folder of a run that trained one (--final-k > 0, without "
                                   f"--no-reference-retrain)")
    if other.data_fingerprint() != config.data_fingerprint():
        raise InvalidArgumentError(f"The reference in {str(folder)!r} was trained on other images "
                                   f"({other.data_fingerprint()}) than this run splits ({config.data_fingerprint()}); "
                                   f"use the same data options and data seed")
    mine, theirs = config.reference_recipe(), other.reference_recipe()
    differ = {k: (theirs[k], mine[k]) for k in mine if mine[k] != theirs[k]}
    if differ:
        raise InvalidArgumentError(f"The reference in {str(folder)!r} was trained with another recipe than this run's "
                                   f"finals get: " + ", ".join(f"{k}={a!r} there, {b!r} here"
                                                               for k, (a, b) in differ.items())
                                   + "; use the same options, or drop --reference-from to train one")
    return path


def load_reference(ctx: Context, path: Path, name: str):
    """The reference another run trained (``path``, checked by :func:`reused_reference`), as (model, spec)."""
    spec = dataclasses.replace(ctx.prototype_spec(), name=name)
    model = load_prototype_file(ctx, path, spec, role="reference",
                                fix="pass --reference-from a run of the same prototype and dataset")
    return model, spec


def run_reference(ctx: Context, store, run_id: str, done: dict,
               proto: CandidateResult) -> tuple[CandidateResult, CandidateResult | None]:
    """Set the accuracy finals are judged against: the stronger (on validation) of the prototype as trained and
    the prototype architecture given the finals' extra training (``retrain_reference``; another run's with
    ``reference_path``). Reads the prototype's
    test top-1 (once). Returns (prototype with its test top-1, the retrained reference or None)."""
    cfg = ctx.config
    if proto.test_top1 is None:
        proto = dataclasses.replace(proto, test_top1=report_on_test(ctx, Path(proto.tflite_path)))
        with store.transaction() as conn:
            conn.execute("UPDATE candidates SET test_top1=? WHERE run_id=? AND candidate_id=?",
                         (proto.test_top1, run_id, "prototype"))
    reference = None
    if cfg.retrain_reference and cfg.final_k > 0:  # the reference exists to judge finals
        cid = "reference"
        if cid in done:
            reference = candidate_from_row(done[cid])
        else:
            choices = ctx.prototype_choices()
            name = f"{cfg.prototype}_{cid}"
            # another run's (reference_path): assessed here, on this run's target, and kept in this run's folder
            model, spec = load_reference(ctx, ctx.reused_reference, name) if ctx.reused_reference \
                else train_reference(ctx, name)
            try:
                reference, rows = assess(ctx, model, spec, candidate_id=cid, cycle=-1, strategy=cfg.strategy,
                                         seed=None, choices=choices, phase="reference", reference=None)
            except ToolkitError as exc:  # e.g. the phone went away: judge against the prototype as trained
                log.warning("the reference could not be evaluated (%s); finals are judged against the prototype", exc)
                reference, rows = CandidateResult(cid, -1, cfg.strategy, None, spec.spec_hash(), "failed",
                                                  f"{type(exc).__name__}: {exc}", choices=choices,
                                                  phase="reference"), None
            write_candidate(store, run_id, reference, spec.to_json(), rows)
    set_final_reference(ctx, proto, reference)
    return proto, reference


def set_final_reference(ctx: Context, proto: CandidateResult, reference: CandidateResult | None) -> None:
    """Finals are judged against (and distill from) the stronger on validation of the prototype as trained and the
    reference, when the reference was evaluated."""
    usable = reference is not None and reference.status == "ok"
    ctx.final_reference = reference if usable and reference.int8_top1 > proto.int8_top1 else proto


def final_id(parent: CandidateResult) -> str:
    """``final-<search id>``: a shortlisted parent (``short-<search id>``) names its final by its search id."""
    return f"final-{parent.parent if parent.phase == 'shortlist' else parent.candidate_id}"


def run_final(ctx: Context, parent: CandidateResult) -> tuple[CandidateResult, tuple]:
    """One final: the final recipe from ``parent``'s choices, then int8, validation, test (once) and the target."""
    return prepare_final(ctx, parent).queue(ctx).finish()


def prepare_final(ctx: Context, parent: CandidateResult) -> Prepared:
    """A final trained and converted (the CPU part of :func:`run_final`), not yet measured."""
    cfg, ref = ctx.config, ctx.final_reference
    cid = final_id(parent)
    model, spec = train_final(ctx, parent.choices, f"{cfg.prototype}_{cid}")
    return prepare(ctx, model, spec, candidate_id=cid, cycle=parent.cycle, strategy=cfg.strategy, seed=parent.seed,
                   choices=parent.choices, phase="final", reference=ref.int8_top1, test_reference=ref.test_top1,
                   parent=parent.candidate_id, proxy_top1=parent.int8_top1)


def run_finals(ctx: Context, store, run_id: str, done: dict, results) -> list[CandidateResult]:
    """Up to ``final_k`` of ``results`` (the search, or its shortlist), chosen by :func:`choose_finals`, trained with
    the final recipe, converted, read on validation and test, measured; stored as they finish."""
    cfg = ctx.config
    finals = []
    chosen = choose_finals(results, cfg.final_k)
    # With a Ray executor every final trains at once, each a Ray task; they are stored here, in this order.
    executor = ctx.executor
    started = {} if executor is None else {
        final_id(p): executor.start_final(ctx, p) for p in chosen if final_id(p) not in done}
    for parent in chosen:
        cid = final_id(parent)  # a resumed or extended run reuses a final only for the same parent
        if cid in done:
            finals.append(candidate_from_row(done[cid]))
            continue
        try:
            c, rows = started[cid].finish() if cid in started else run_final(ctx, parent)
        except ToolkitError as exc:
            log.warning("final %s failed: %s", cid, exc)
            c, rows = CandidateResult(cid, parent.cycle, cfg.strategy, parent.seed, parent.spec_hash, "failed",
                                      f"{type(exc).__name__}: {exc}", choices=parent.choices, phase="final",
                                      parent=parent.candidate_id, proxy_top1=parent.int8_top1), None
        write_candidate(store, run_id, c, ctx.space.apply(parent.choices).to_json(), rows)
        finals.append(c)
    return finals
