"""The inquisitor I(G; theta_I): probes generated networks, turns observations into insights, updates G.

Probe (stimuli). A batch of training images goes through the network; for every conv layer the
first-order Taylor importance of each output channel is measured on its batch-norm output a:
``importance_c = mean over images and positions of |a_c * dL/da_c|`` (Molchanov et al. 2017): the loss change
if that channel were removed. Channels and blocks with low importance are cheap to remove.

Probe (target). The int8 artifact is measured on the target. Cost is attributed to blocks from the
target's per-op profile when it names layers (a phone's benchmark_model op profile), else from each
block's share of the MACs.

Insights. For every width group g: ``s_g = log(cost_share_g / importance_share_g)``; s_g > 0 means the group
costs more than it contributes, so capacity there is cheap to remove.

Update rule (a cross-entropy-method update with a push away from infeasible regions):
1. reward of a candidate: U if it meets every requirement, else U_floor - 10 x (total relative violation),
   where U_floor is the lowest U seen in the cycle - so every infeasible candidate ranks below every
   feasible one;
2. elite E = the best ``elite_frac`` of the cycle by reward, equal rewards by U (at least 2; with the "front"
   rule and fewer than 2 feasible, NSGA-II's order over violation vs MACs instead); N = the infeasible
   candidates;
3. for every decision d with option frequencies f_E (among E) and f_N (among N) and probabilities p_d:
   ``p_d <- normalize(max(floor, p_d + alpha (f_E - p_d) - beta (f_N - p_d) [N non-empty]))``
   (alpha=0.5, beta=0.25, floor 0.02): mass moves toward what worked and away from what broke a requirement.
At initialisation the insight prior tilts each width decision: ``logit(w) = eta * s_g * (1 - w)`` (eta = 1).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from toolkit.synthesis.generator import Generator, _normalize
from toolkit.synthesis.inherit import BN_OF
from toolkit.synthesis.space import DecisionSpace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """What the loop learned about one candidate (input to the update)."""

    choices: dict
    score: float
    feasible: bool
    violation: float
    macs: int | None = None  # for the "front" elite


@dataclass(frozen=True)
class Insights:
    cost_share: dict[str, float]  # width group -> share of the network's cost
    importance_share: dict[str, float]  # width group -> share of Taylor importance
    cheapness: dict[str, float]  # width group -> s_g (positive: cheap to shrink)
    cost_basis: str  # "op_profile" | "macs"


def taylor_importance(model, x: np.ndarray, y: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Per-channel first-order Taylor importance of every conv layer (keyed by the conv's name)."""
    import keras
    import tensorflow as tf

    pairs = []
    names = {l.name for l in model.layers}
    for layer in model.layers:
        if layer.__class__.__name__ not in ("Conv2D", "DepthwiseConv2D"):
            continue
        block, _, role = layer.name.rpartition("_")
        bn = f"{block}_{BN_OF.get(role, '')}"
        if bn in names:
            pairs.append((layer.name, bn))
    if not pairs:
        return {}
    probe = keras.Model(model.input, [model.get_layer(bn).output for _, bn in pairs] + [model.output])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    totals = [np.zeros(int(model.get_layer(bn).output.shape[-1])) for _, bn in pairs]
    for start in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[start:start + batch_size])
        with tf.GradientTape() as tape:
            outputs = probe(xb, training=False)
            acts, logits = outputs[:-1], outputs[-1]
            for a in acts:
                tape.watch(a)
            loss = loss_fn(y[start:start + batch_size], logits)
        grads = tape.gradient(loss, acts)
        for i, (a, g) in enumerate(zip(acts, grads)):
            totals[i] += np.abs((a * g).numpy()).mean(axis=(1, 2)).sum(axis=0)
    return {conv: total / len(x) for (conv, _), total in zip(pairs, totals)}


def block_macs(model) -> dict[str, int]:
    """MACs per block (layers are named ``<block>_<role>``)."""
    from toolkit.arch.counting import _layer_macs

    out: dict[str, int] = {}
    for layer in model.layers:
        if layer.__class__.__name__ in ("InputLayer",):
            continue
        block = layer.name.rsplit("_", 1)[0]
        out[block] = out.get(block, 0) + _layer_macs(layer)
    return out


def form_insights(space: DecisionSpace, model, importance: dict[str, np.ndarray],
                  op_profile: tuple = ()) -> Insights:
    """Where the cost sits vs where the accuracy comes from, per width group."""
    cost: dict[str, float] = {}
    basis = "macs"
    if op_profile and any(getattr(o, "name", "") for o in op_profile):
        for g, blocks in space.groups:
            cost[g] = sum(o.avg_ms for o in op_profile for b in blocks if f"{b}_" in getattr(o, "name", ""))
        basis = "op_profile" if sum(cost.values()) > 0 else "macs"
    if basis == "macs":
        per_block = block_macs(model)
        cost = {g: float(sum(per_block.get(b, 0) for b in blocks)) for g, blocks in space.groups}
    imp = {g: float(sum(v.sum() for k, v in importance.items() if k.rsplit("_", 1)[0] in blocks))
           for g, blocks in space.groups}
    total_cost, total_imp = sum(cost.values()) or 1.0, sum(imp.values()) or 1.0
    cost_share = {g: cost[g] / total_cost for g in cost}
    imp_share = {g: imp[g] / total_imp for g in imp}
    cheap = {g: math.log((cost_share[g] + 1e-6) / (imp_share[g] + 1e-6)) for g in cost}
    return Insights(cost_share, imp_share, cheap, basis)


def apply_prior(generator: Generator, insights: Insights, eta: float = 1.0) -> None:
    """Tilt width decisions toward smaller widths where a group is cheap to shrink."""
    for d in generator.space.decisions:
        if d.kind != "width":
            continue
        s = insights.cheapness.get(d.target, 0.0)
        logits = np.array([eta * s * (1.0 - w) for w in d.options])
        p = np.exp(logits - logits.max())
        generator.probs[d.name] = _normalize(p)


def rewards(observations: list[Observation]) -> list[float]:
    feasible_scores = [o.score for o in observations]
    floor = min(feasible_scores) if feasible_scores else 0.0
    return [o.score if o.feasible else floor - 10.0 * (o.violation + 1e-3) for o in observations]


def update(generator: Generator, observations: list[Observation], elite_frac: float = 0.25,
           alpha: float = 0.5, beta: float = 0.25, elite_rule: str = "reward") -> None:
    """The update rule of the module docstring, applied in place to ``generator.probs``.

    ``elite_rule="front"``: while fewer than 2 observations are feasible, the elite is filled from the cycle's
    Pareto layers over (violation, MACs), within a layer the least crowded first, instead of by reward alone.
    When no proxy can meet the accuracy requirement, the reward only asks for accuracy and the generator drifts
    to the MAC bound; the front keeps the networks that are the most accurate for what they cost."""
    if not observations:
        return
    r = rewards(observations)
    # Equal rewards rank by U: of two networks the proxy cannot tell apart, the cheaper one is the elite.
    order = sorted(range(len(observations)), key=lambda i: (r[i], observations[i].score), reverse=True)
    feasible = [i for i in order if observations[i].feasible]
    n_elite = max(2, int(math.ceil(elite_frac * len(observations))))
    if len(feasible) >= 2:
        elite = feasible[:n_elite]
    elif elite_rule == "front":  # NSGA-II's order: layer by layer, within one the least crowded first
        elite = [i for layer in pareto_layers(observations, order) for i in by_crowding(observations, layer)][:n_elite]
    else:
        elite = order[:n_elite]
    infeasible = [i for i, o in enumerate(observations) if not o.feasible]
    for d in generator.space.decisions:
        p = generator.probs[d.name]
        f_e = _frequencies(d.options, [observations[i].choices.get(d.name) for i in elite])
        new = p + alpha * (f_e - p)
        if infeasible:
            f_n = _frequencies(d.options, [observations[i].choices.get(d.name) for i in infeasible])
            new = new - beta * (f_n - p)
        generator.probs[d.name] = _normalize(new)
    generator.cycle += 1


def non_dominated(costs: list[tuple[float, float]]) -> list[int]:
    """Positions of the costs that no other matches or beats in both parts (lower is better), in order."""
    return [i for i, a in enumerate(costs) if not any(b[0] <= a[0] and b[1] <= a[1] and b != a for b in costs)]


def pareto_layers(observations: list[Observation], order: list[int]) -> list[list[int]]:
    """Non-dominated layers of ``observations`` over (violation, MACs), both lower-better; each layer keeps
    ``order``. A missing MACs count ranks as the worst."""
    def key(i):
        o = observations[i]
        return o.violation, o.macs if o.macs is not None else math.inf

    left, layers = list(order), []
    while left:
        layer = [left[j] for j in non_dominated([key(i) for i in left])]
        layers.append(layer)
        left = [i for i in left if i not in layer]
    return layers


def by_crowding(observations: list[Observation], layer: list[int]) -> list[int]:
    """``layer`` by crowding distance (Deb et al. 2002), largest first: the two ends of each objective first, then
    the points with the most room around them. Objectives: violation and log MACs, each scaled by its range."""
    if len(layer) <= 2:
        return list(layer)
    room = {i: 0.0 for i in layer}
    for value in (lambda i: observations[i].violation, lambda i: math.log(max(observations[i].macs or 1, 1))):
        ranked = sorted(layer, key=value)
        span = value(ranked[-1]) - value(ranked[0]) or 1.0
        room[ranked[0]] = room[ranked[-1]] = math.inf
        for a, i, b in zip(ranked, ranked[1:], ranked[2:]):
            room[i] += (value(b) - value(a)) / span
    return sorted(layer, key=lambda i: -room[i])  # stable: equal room keeps the layer's order


def _frequencies(options: tuple, picks: list) -> np.ndarray:
    counts = np.array([sum(1 for x in picks if x == o) for o in options], dtype=float)
    return counts / counts.sum() if counts.sum() else np.full(len(options), 1.0 / len(options))
