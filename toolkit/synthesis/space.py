"""The architecture decisions a generator makes, derived from a prototype.

Blocks are grouped into *width groups*: maximal runs of consecutive blocks that have the same width in
the prototype (a ResNet stage with the block before it, a MobileNetV2 stage). A group shares one width
decision, so residual additions inside it stay shape-compatible and a stride-1 block inside it can be
skipped. Decisions:

- ``width:<group>``    fraction of the prototype width (rounded to a multiple of 4, at least 4)
- ``keep:<block>``     keep or skip a block whose output shape equals its input shape within its group
- ``kernel:<block>``   depthwise kernel size (3 or 5) of inverted-residual / depthwise-separable blocks
- ``expansion:<block>`` expansion ratio of inverted-residual blocks, up to the prototype's
- ``separable:<block>`` (when the space is built with ``separable=True``) a ResNet basic block's two k x k convs
  as they are, or each replaced by a depthwise-separable conv (k x k depthwise + 1x1): k*k*C/(k*k+C) times fewer
  MACs at C channels (5.8x at 16, 7.9x at 64), so a network can keep depth and width where plain convs would have to go
- ``resolution:input`` the side the input image is resized to before the first block (a fraction of the input
  side, rounded to an even number of pixels): every block then runs on a smaller grid, so MACs fall with its
  square while no channel is lost (Once-for-All's elastic resolution). Only for square inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from toolkit.arch.spec import ArchSpec
from toolkit.errors import InvalidArgumentError

DEFAULT_WIDTHS = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
DEFAULT_RESOLUTIONS = (0.5, 0.625, 0.75, 0.875, 1.0)  # fractions of the input side; (1.0,) = no decision
_WIDTH_KINDS = ("conv_bn_relu", "depthwise_separable", "inverted_residual", "resnet_basic")


@dataclass(frozen=True)
class Decision:
    name: str  # "width:g1", "keep:s1b1", ...
    kind: str  # width | keep | kernel | expansion | separable | resolution
    target: str  # group or block name
    options: tuple


def _round_width(channels: int, fraction: float) -> int:
    return max(4, int(round(channels * fraction / 4.0)) * 4)


def check_fractions(name: str, values) -> None:
    """``values`` (width or resolution options) must be a non-empty sequence of numbers in (0, 1]."""
    if not values or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1 for v in values):
        raise InvalidArgumentError(f"{name} must be fractions in (0, 1], e.g. 0.5,0.75,1. Received: {name}={values!r}")


def resolution_options(side: int, fractions: tuple[float, ...]) -> tuple[int, ...]:
    """Distinct even pixel sides (at least 8) for ``fractions`` of ``side``, ascending; ``side`` itself included."""
    check_fractions("resolution_options", fractions)
    return tuple(sorted({side} | {max(8, int(round(side * f / 2.0)) * 2) for f in fractions if f < 1}))


@dataclass(frozen=True)
class DecisionSpace:
    prototype: ArchSpec
    decisions: tuple[Decision, ...]
    groups: tuple[tuple[str, tuple[str, ...]], ...]  # (group name, block names)

    @classmethod
    def from_prototype(cls, spec: ArchSpec, width_options: tuple[float, ...] = DEFAULT_WIDTHS,
                       resolutions: tuple[float, ...] = DEFAULT_RESOLUTIONS,
                       separable: bool = False) -> "DecisionSpace":
        check_fractions("width_options", width_options)
        groups: list[tuple[str, list[str]]] = []
        last_width = None
        for block in spec.blocks:
            if block.kind not in _WIDTH_KINDS:
                continue
            if block.filters != last_width:
                groups.append((f"g{len(groups)}", []))
                last_width = block.filters
            groups[-1][1].append(block.name)
        group_of = {b: g for g, blocks in groups for b in blocks}
        in_channels = spec.in_channels()
        decisions = [Decision(f"width:{g}", "width", g, tuple(sorted(set(width_options)))) for g, _ in groups]
        previous = None
        for block in spec.blocks:
            if block.kind not in _WIDTH_KINDS:
                continue
            same_group_input = previous is not None and group_of[previous] == group_of[block.name]
            if block.removable(in_channels[block.name]) and same_group_input:
                decisions.append(Decision(f"keep:{block.name}", "keep", block.name, (True, False)))
            if block.kind in ("inverted_residual", "depthwise_separable"):
                decisions.append(Decision(f"kernel:{block.name}", "kernel", block.name, (3, 5)))
            if separable and block.kind == "resnet_basic" and not block.separable:
                decisions.append(Decision(f"separable:{block.name}", "separable", block.name, (False, True)))
            if block.kind == "inverted_residual" and block.expansion > 1:
                options = tuple(e for e in (2, 4, 6) if e <= block.expansion)
                decisions.append(Decision(f"expansion:{block.name}", "expansion", block.name, options))
            previous = block.name
        height, width = spec.input_shape[:2]
        sides = resolution_options(spec.resolution or height, resolutions)
        if height == width and len(sides) > 1:
            decisions.append(Decision("resolution:input", "resolution", "input", sides))
        return cls(spec, tuple(decisions), tuple((g, tuple(b)) for g, b in groups))

    @property
    def separable(self) -> bool:
        """Whether the space holds separable decisions (it was built with ``separable=True``)."""
        return any(d.kind == "separable" for d in self.decisions)

    @property
    def input_side(self) -> int:
        """The side the prototype's blocks run at (its resolution, or its input's)."""
        return self.prototype.resolution or self.prototype.input_shape[0]

    def resolution_of(self, choices: dict[str, object]) -> int:
        return int(choices.get("resolution:input", self.input_side))

    def group_of(self, block: str) -> str | None:
        return next((g for g, blocks in self.groups if block in blocks), None)

    def apply(self, choices: dict[str, object], name: str | None = None) -> ArchSpec:
        """The child architecture for one option per decision (missing ones keep the prototype's)."""
        unknown = set(choices) - {d.name for d in self.decisions}
        if unknown:
            raise InvalidArgumentError(f"Unknown decisions {sorted(unknown)}")
        widths = {d.target: choices.get(d.name, 1.0) for d in self.decisions if d.kind == "width"}
        blocks = []
        for b in self.prototype.blocks:
            g = self.group_of(b.name)
            changes: dict = {}
            if g is not None:
                changes["filters"] = _round_width(b.filters, float(widths[g]))
            if f"keep:{b.name}" in choices:
                changes["enabled"] = bool(choices[f"keep:{b.name}"])
            if f"kernel:{b.name}" in choices:
                changes["kernel"] = int(choices[f"kernel:{b.name}"])
            if f"separable:{b.name}" in choices:
                changes["separable"] = bool(choices[f"separable:{b.name}"])
            if f"expansion:{b.name}" in choices:
                changes["expansion"] = int(choices[f"expansion:{b.name}"])
            blocks.append(replace(b, **changes))
        return ArchSpec(name or f"{self.prototype.name}_child", self.prototype.input_shape,
                        self.prototype.num_classes, tuple(blocks), self.resolution_of(choices))

    def uniform_width(self, fraction: float) -> dict[str, object]:
        """Choices that scale every group by ``fraction`` and keep everything else (resolution too) as the
        prototype."""
        return {d.name: fraction for d in self.decisions if d.kind == "width"}

    def prototype_choices(self) -> dict[str, object]:
        choices: dict[str, object] = {}
        for d in self.decisions:
            block = next((b for b in self.prototype.blocks if b.name == d.target), None)
            choices[d.name] = {"width": 1.0, "keep": True, "separable": False,
                               "kernel": block.kernel if block else 3,
                               "expansion": block.expansion if block else 1,
                               "resolution": self.input_side}[d.kind]
        return choices
