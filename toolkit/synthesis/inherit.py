"""Weight inheritance: a generated network starts from its parent's trained weights.

Channels are chosen by importance (the inquisitor's ranking, or L1 norms for the pruning baseline):
- a width group's block outputs share one channel set (the group's most important channels), so identity
  shortcuts add the same channels;
- a block's internal channels (ResNet conv1, MobileNetV2 expansion) take that layer's own top channels;
- depthwise layers keep the channels of their input;
- a different kernel size takes the centre of the parent kernel (or pads it with zeros).
Layers with no same-named parent layer keep their random initialisation.
"""
from __future__ import annotations

import numpy as np

from toolkit.arch.spec import ArchSpec
from toolkit.synthesis.space import DecisionSpace

# Roles whose output is the block's output (they carry the group's channel set).
OUTPUT_ROLES = {"conv_bn_relu": ("conv",), "resnet_basic": ("conv2", "short"), "inverted_residual": ("project",),
                "depthwise_separable": ("pw",)}
BN_OF = {"conv": "bn", "conv1": "bn1", "conv2": "bn2", "short": "short_bn", "expand": "expand_bn", "dw": "dw_bn",
         "project": "project_bn", "pw": "pw_bn"}


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
    sets = group_channel_sets(space, child_spec, importance)
    parent_layers = {l.name: l for l in parent.layers}
    child_layers = {l.name: l for l in child.layers}
    copied = 0

    def copy_conv(name: str, in_idx: np.ndarray, out_idx: np.ndarray | None, depthwise: bool = False) -> None:
        nonlocal copied
        if name not in parent_layers or name not in child_layers:
            return
        (kernel,) = parent_layers[name].get_weights()[:1]
        target_shape = child_layers[name].get_weights()[0].shape
        kernel = _fit_kernel(kernel, target_shape[0])
        kernel = kernel[:, :, in_idx]
        if not depthwise:
            kernel = kernel[..., out_idx]
        if kernel.shape == target_shape:
            child_layers[name].set_weights([kernel])
            copied += 1

    def copy_bn(name: str, idx: np.ndarray) -> None:
        nonlocal copied
        if name in parent_layers and name in child_layers:
            weights = [w[idx] for w in parent_layers[name].get_weights()]
            if weights[0].shape == child_layers[name].get_weights()[0].shape:
                child_layers[name].set_weights(weights)
                copied += 1

    in_idx = np.arange(child_spec.input_shape[-1])
    for block in child_spec.active_blocks:
        n = block.name
        group = space.group_of(n)
        out_idx = sets.get(group) if group else None
        if block.kind == "conv_bn_relu":
            copy_conv(f"{n}_conv", in_idx, out_idx)
            copy_bn(f"{n}_bn", out_idx)
            in_idx = out_idx
        elif block.kind == "resnet_basic":
            mid = _top(importance.get(f"{n}_conv1", np.ones(block.filters)), block.filters)
            copy_conv(f"{n}_conv1", in_idx, mid)
            copy_bn(f"{n}_bn1", mid)
            copy_conv(f"{n}_conv2", mid, out_idx)
            copy_bn(f"{n}_bn2", out_idx)
            copy_conv(f"{n}_short", in_idx, out_idx)
            copy_bn(f"{n}_short_bn", out_idx)
            in_idx = out_idx
        elif block.kind == "inverted_residual":
            hidden = in_idx
            if block.expansion > 1:
                k = len(in_idx) * block.expansion
                scores = importance.get(f"{n}_expand")
                hidden = _top(scores, k) if scores is not None else np.arange(k)
                copy_conv(f"{n}_expand", in_idx, hidden)
                copy_bn(f"{n}_expand_bn", hidden)
            copy_conv(f"{n}_dw", hidden, None, depthwise=True)
            copy_bn(f"{n}_dw_bn", hidden)
            copy_conv(f"{n}_project", hidden, out_idx)
            copy_bn(f"{n}_project_bn", out_idx)
            in_idx = out_idx
        elif block.kind == "depthwise_separable":
            copy_conv(f"{n}_dw", in_idx, None, depthwise=True)
            copy_bn(f"{n}_dw_bn", in_idx)
            copy_conv(f"{n}_pw", in_idx, out_idx)
            copy_bn(f"{n}_pw_bn", out_idx)
            in_idx = out_idx
        elif block.kind == "classifier":
            name = f"{n}_dense"
            if name in parent_layers and name in child_layers:
                kernel, bias = parent_layers[name].get_weights()
                child_layers[name].set_weights([kernel[in_idx], bias])
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
