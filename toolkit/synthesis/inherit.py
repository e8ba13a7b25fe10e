"""Weight inheritance: a generated network starts from its parent's trained weights.

Channels are chosen by importance (the inquisitor's ranking, or L1 norms for the pruning baseline):
- a width group's block outputs share one channel set (the group's most important channels), so identity
  shortcuts add the same channels;
- a block's internal channels (ResNet conv1, MobileNetV2 expansion) take that layer's own top channels;
- depthwise layers keep the channels of their input;
- a different kernel size takes the centre of the parent kernel (or pads it with zeros).
Layers with no same-named parent layer keep their random initialisation.

:func:`channel_plan` is the one place that decides which parent channels a child keeps; weight inheritance
(:func:`inherit_weights`) and the weight-sharing supernet's channel masks (:mod:`toolkit.synthesis.supernet`)
both read it, so a sub-network extracted from the supernet computes exactly what the masked supernet computed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.arch.spec import ArchSpec
from toolkit.synthesis.space import DecisionSpace

# Roles whose output is the block's output (they carry the group's channel set).
OUTPUT_ROLES = {"conv_bn_relu": ("conv",), "resnet_basic": ("conv2", "short"), "inverted_residual": ("project",),
                "depthwise_separable": ("pw",)}
BN_OF = {"conv": "bn", "conv1": "bn1", "conv2": "bn2", "short": "short_bn", "expand": "expand_bn", "dw": "dw_bn",
         "project": "project_bn", "pw": "pw_bn", "sepshort": "sepshort_bn"}


@dataclass(frozen=True)
class LayerPlan:
    """Which parent channels one weight layer of the child keeps.

    ``in_idx``: parent input channels (rows of a dense kernel); ``out_idx``: parent output channels, or None
    for a depthwise layer (it keeps its input channels); ``bn``: the batch-norm layer that follows (or None)."""

    layer: str
    kind: str  # "conv" | "depthwise" | "dense"
    in_idx: np.ndarray
    out_idx: np.ndarray | None
    bn: str | None

    @property
    def channels(self) -> np.ndarray:
        """The parent channels this layer's output (and its batch norm) carries."""
        return self.in_idx if self.out_idx is None else self.out_idx


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, len(scores))
    return np.sort(np.argsort(-scores, kind="stable")[:k])


def group_channel_sets(space: DecisionSpace, child: ArchSpec, importance: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """For each width group, the parent channels the child keeps (sorted indices)."""
    width = {b.name: b.filters for b in child.blocks}
    sets = {}
    for group, blocks in space.groups:
        total = None
        for name in blocks:
            kind = next(b.kind for b in space.prototype.blocks if b.name == name)
            for role in OUTPUT_ROLES[kind]:
                scores = importance.get(f"{name}_{role}")
                if scores is None:
                    continue
                share = scores / (scores.sum() + 1e-12)
                total = share if total is None else total + share
        k = width[blocks[0]]
        sets[group] = _top(total, k) if total is not None else np.arange(k)
    return sets


def channel_plan(space: DecisionSpace, child_spec: ArchSpec, importance: dict[str, np.ndarray]) -> list[LayerPlan]:
    """The parent channels of every weight layer of the child's *active* blocks, in data-flow order."""
    sets = group_channel_sets(space, child_spec, importance)
    plan: list[LayerPlan] = []

    def conv(name: str, in_idx, out_idx, kind: str = "conv") -> None:
        block, _, role = name.rpartition("_")
        plan.append(LayerPlan(name, kind, in_idx, out_idx, f"{block}_{BN_OF[role]}"))

    in_idx = np.arange(child_spec.input_shape[-1])
    for block in child_spec.active_blocks:
        n = block.name
        group = space.group_of(n)
        out_idx = sets.get(group) if group else None
        if block.kind == "conv_bn_relu":
            conv(f"{n}_conv", in_idx, out_idx)
            in_idx = out_idx
        elif block.kind == "resnet_basic":
            mid = _top(importance.get(f"{n}_conv1", np.ones(block.filters)), block.filters)
            if block.separable:  # the same channel plan as the plain form: depthwise keeps its input's
                conv(f"{n}_sep1_dw", in_idx, None, "depthwise")
                conv(f"{n}_sep1_pw", in_idx, mid)
                conv(f"{n}_sep2_dw", mid, None, "depthwise")
                conv(f"{n}_sep2_pw", mid, out_idx)
            else:
                conv(f"{n}_conv1", in_idx, mid)
                conv(f"{n}_conv2", mid, out_idx)
            if block.stride != 1 or len(in_idx) != block.filters:
                conv(f"{n}_{'sepshort' if block.separable else 'short'}", in_idx, out_idx)
            in_idx = out_idx
        elif block.kind == "inverted_residual":
            hidden = in_idx
            if block.expansion > 1:
                k = len(in_idx) * block.expansion
                scores = importance.get(f"{n}_expand")
                hidden = _top(scores, k) if scores is not None else np.arange(k)
                conv(f"{n}_expand", in_idx, hidden)
            conv(f"{n}_dw", hidden, None, "depthwise")
            conv(f"{n}_project", hidden, out_idx)
            in_idx = out_idx
        elif block.kind == "depthwise_separable":
            conv(f"{n}_dw", in_idx, None, "depthwise")
            conv(f"{n}_pw", in_idx, out_idx)
            in_idx = out_idx
        elif block.kind == "classifier":
            plan.append(LayerPlan(f"{n}_dense", "dense", in_idx, None, None))
    return plan


def _fit_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    k = kernel.shape[0]
    if k == size:
        return kernel
    if k > size:
        start = (k - size) // 2
        return kernel[start:start + size, start:start + size]
    pad = (size - k) // 2
    out = np.zeros((size, size) + kernel.shape[2:], kernel.dtype)
    out[pad:pad + k, pad:pad + k] = kernel
    return out


def inherit_weights(parent, child, space: DecisionSpace, child_spec: ArchSpec,
                    importance: dict[str, np.ndarray]) -> int:
    """Copy selected parent weights into ``child`` (in place). Returns how many layers inherited."""
    parent_layers = {layer.name: layer for layer in parent.layers}
    child_layers = {layer.name: layer for layer in child.layers}
    copied = 0
    for p in channel_plan(space, child_spec, importance):
        if p.layer not in parent_layers or p.layer not in child_layers:
            continue
        if p.kind == "dense":
            kernel, bias = parent_layers[p.layer].get_weights()
            child_layers[p.layer].set_weights([kernel[p.in_idx], bias])
            copied += 1
            continue
        (kernel,) = parent_layers[p.layer].get_weights()[:1]
        target_shape = child_layers[p.layer].get_weights()[0].shape
        kernel = _fit_kernel(kernel, target_shape[0])[:, :, p.in_idx]
        if p.out_idx is not None:
            kernel = kernel[..., p.out_idx]
        if kernel.shape == target_shape:
            child_layers[p.layer].set_weights([kernel])
            copied += 1
        if p.bn in parent_layers and p.bn in child_layers:
            weights = [w[p.channels] for w in parent_layers[p.bn].get_weights()]
            if weights[0].shape == child_layers[p.bn].get_weights()[0].shape:
                child_layers[p.bn].set_weights(weights)
                copied += 1
    return copied


def l1_importance(model) -> dict[str, np.ndarray]:
    """Li et al. 2017: a filter's importance is the L1 norm of its kernel weights."""
    scores = {}
    for layer in model.layers:
        cls = layer.__class__.__name__
        if cls in ("Conv2D", "DepthwiseConv2D") and layer.get_weights():
            kernel = layer.get_weights()[0]
            axes = (0, 1, 3) if cls == "DepthwiseConv2D" else (0, 1, 2)
            scores[layer.name] = np.abs(kernel).sum(axis=axes)
    return scores
