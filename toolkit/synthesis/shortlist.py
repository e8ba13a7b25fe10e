"""The shortlist (``--shortlist N``): a dearer second look at the search's best before the finals are chosen.

The search's proxy (weights from the supernet, batch-norm statistics re-estimated, no training) tells where in MACs a
network sits but, at equal MACs, not which one trains better: over the synthesis benchmark's 36 finals its Kendall
tau with final test top-1 beyond log MACs was 0.02, a 1-epoch fine-tune's 0.18 (``benchmarks/results/
synthesis_draws.json``, ``proxy_reread.json``). So with ``shortlist`` N > 0, up to N search candidates, picked by the
finals' own rule (:func:`~toolkit.synthesis.finals.choose_finals`) on their proxy numbers, are each fine-tuned from
their proxy weights for ``shortlist_epochs`` on ``shortlist_images`` training images (the final recipe's learning
rate), converted to int8, read on the validation images the search read, and measured on the target. The prototype
architecture gets the same treatment (``short-reference``), so a shortlisted network's accuracy drop compares like
with like (over a space root: the root's largest network, plus the root's gap to the prototype, as in the search).
The finals are then chosen among the shortlist by the same rule, on these numbers, and trained as before (from the
supernet's weights, not the fine-tuned ones: the reference gets no shortlist training either).

Validation only: the test split is never read here. Every strategy gets the same shortlist, so baselines are
compared at the same evaluator. Shortlisted networks are stored with phase ``shortlist`` (id ``short-<search id>``,
parent the search candidate); a resumed run reuses them.
"""
from __future__ import annotations

import logging

from toolkit.errors import ToolkitError
from toolkit.synthesis.assess import CandidateResult, Context, assess, candidate_from_row, write_candidate
from toolkit.synthesis.finals import choose_finals

log = logging.getLogger(__name__)

REFERENCE_ID = "short-reference"


def fine_tune(ctx: Context, model) -> None:
    """The shortlist's evaluator, on ``model`` (a network with its proxy weights), in place: ``shortlist_epochs`` on
    ``shortlist_images`` training images (a class-stratified subset fixed by the data seed) at the final recipe's
    learning rate."""
    from toolkit.train import TrainBudget, train

    cfg = ctx.config
    if ctx.shortlist_data is None:
        data = ctx.train_data
        ctx.shortlist_data = data.subset(n_train=min(cfg.shortlist_images, len(data.x_train)), seed=cfg.split_seed)
    train(model, ctx.shortlist_data, TrainBudget(epochs=cfg.shortlist_epochs), learning_rate=cfg.final_learning_rate,
          seed=cfg.seed, progress=False)


def _tuned(ctx: Context, choices: dict, name: str):
    """(model, spec) of ``choices``: its proxy, fine-tuned."""
    model, spec = ctx.evaluator.proxy(choices, name=name)
    fine_tune(ctx, model)
    return model, spec


def _reference(ctx: Context, store, run_id: str, done: dict, proto: CandidateResult) -> float:
    """Validation top-1 the shortlist's drops are judged against (fine-tuned the same way), stored once."""
    cfg = ctx.config
    if REFERENCE_ID in done:
        c = candidate_from_row(done[REFERENCE_ID])
    else:
        choices = ctx.space.prototype_choices()
        model, spec = _tuned(ctx, choices, f"{cfg.prototype}_{REFERENCE_ID}")
        c, rows = assess(ctx, model, spec, candidate_id=REFERENCE_ID, cycle=-1, strategy=cfg.strategy, seed=None,
                         choices=choices, phase="shortlist", reference=None)
        write_candidate(store, run_id, c, spec.to_json(), rows)
    # Over a space root: the root's loss plus the root's own gap to the prototype (as _search_reference does).
    return c.int8_top1 + (proto.int8_top1 - ctx.space_result.int8_top1)


def run_shortlist(ctx: Context, store, run_id: str, done: dict, results,
                  proto: CandidateResult) -> list[CandidateResult]:
    """The networks the finals are chosen among: ``results`` (the search) when ``shortlist`` is 0, else the
    shortlist, fine-tuned and judged as the module docstring says."""
    cfg = ctx.config
    if cfg.shortlist == 0:
        return list(results)
    chosen = choose_finals(results, cfg.shortlist)
    if not chosen:
        return []
    reference = _reference(ctx, store, run_id, done, proto)
    shortlisted = []
    for parent in chosen:
        cid = f"short-{parent.candidate_id}"
        if cid in done:
            shortlisted.append(candidate_from_row(done[cid]))
            continue
        spec_json = ctx.space.apply(parent.choices).to_json()
        try:
            model, spec = _tuned(ctx, parent.choices, f"{cfg.prototype}_{cid}")
            c, rows = assess(ctx, model, spec, candidate_id=cid, cycle=parent.cycle, strategy=cfg.strategy,
                             seed=parent.seed, choices=parent.choices, phase="shortlist", reference=reference,
                             parent=parent.candidate_id, proxy_top1=parent.int8_top1)
            spec_json = spec.to_json()
        except ToolkitError as exc:
            log.warning("shortlisted %s failed: %s", cid, exc)
            c, rows = CandidateResult(cid, parent.cycle, cfg.strategy, parent.seed, parent.spec_hash, "failed",
                                      f"{type(exc).__name__}: {exc}", choices=parent.choices, phase="shortlist",
                                      parent=parent.candidate_id, proxy_top1=parent.int8_top1, violation=10.0), None
        write_candidate(store, run_id, c, spec_json, rows)
        shortlisted.append(c)
        log.info("shortlist %s: %s MACs, proxy %.2f%% -> fine-tuned %s", cid, f"{parent.macs:,}",
                 100 * parent.int8_top1, "failed" if c.status != "ok" else f"{100 * c.int8_top1:.2f}%")
    return shortlisted
