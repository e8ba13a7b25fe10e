"""A JSON-serialisable description of a feed-forward image classifier.

An :class:`ArchSpec` is a sequence of :class:`BlockSpec`; the builder turns it into a Keras model whose
layer names derive from block names (``s1b0_conv1`` ...), so weights can be mapped from a parent network
to a child generated from it.

Block kinds
-----------
``conv_bn_relu``         k x k conv (no bias) -> BatchNorm -> ReLU
``depthwise_separable``  k x k depthwise -> BN -> ReLU -> 1x1 conv -> BN -> ReLU; with ``residual=True`` (stride 1,
                         same width) the input is added before the last ReLU (layer ``<block>_add``), so skipping
                         the block removes a correction rather than a whole transformation
``inverted_residual``    MobileNetV2: 1x1 expand (x expansion) -> BN -> ReLU6 -> k x k depthwise -> BN -> ReLU6
                         -> 1x1 project -> BN, plus the input when stride 1 and widths match
``resnet_basic``         two k x k convs with BN (ReLU between), shortcut (1x1 conv + BN when stride or width
                         changes), ReLU after the add. With ``separable=True`` each k x k conv is depthwise-
                         separable (k x k depthwise -> BN -> ReLU -> 1x1 conv -> BN), k*k*C/(k*k+C) times cheaper;
                         its layers are named ``<block>_sep1_dw``, ``_sep1_pw``, ``_sep2_dw``, ``_sep2_pw``,
                         ``_sepshort``, ``_sepadd`` ...
``pool``                 max or average pooling (``pool_type``), ``kernel`` = window = stride
``classifier``           global average pooling (optional dropout) -> Dense(num_classes) logits

``enabled=False`` removes a block; only blocks whose output shape equals their input shape may be removed
(see :meth:`BlockSpec.removable`).

``ArchSpec.resolution`` (optional) is the side, in pixels, the input image is resized to (bilinear) before the
first block: the network still takes ``input_shape`` images, and every block runs on the smaller grid.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from toolkit.errors import InvalidArgumentError

BLOCK_KINDS = ("conv_bn_relu", "depthwise_separable", "inverted_residual", "resnet_basic", "pool", "classifier")


@dataclass(frozen=True)
class BlockSpec:
    """One block. ``filters`` is the block's output width (channels)."""

    kind: str
    name: str
    filters: int = 0
    kernel: int = 3
    stride: int = 1
    expansion: int = 1
    enabled: bool = True
    pool_type: str = "max"
    dropout: float = 0.0
    separable: bool = False  # resnet_basic only: depthwise-separable convs (see the module docstring)
    residual: bool = False  # depthwise_separable only: add the input before the last ReLU (see the module docstring)

    def __post_init__(self) -> None:
        if self.kind not in BLOCK_KINDS:
            raise InvalidArgumentError(f"Unknown block kind {self.kind!r} in block {self.name!r}. "
                                       f"Use one of {', '.join(BLOCK_KINDS)}")
        if self.kind not in ("pool", "classifier") and self.filters < 1:
            raise InvalidArgumentError(f"Block {self.name!r} needs filters >= 1. Received: filters={self.filters}")
        if self.kernel < 1 or self.stride < 1 or self.expansion < 1:
            raise InvalidArgumentError(
                f"Block {self.name!r} needs kernel, stride and expansion >= 1. Received: kernel={self.kernel}, "
                f"stride={self.stride}, expansion={self.expansion}")
        if self.separable and self.kind != "resnet_basic":
            raise InvalidArgumentError(f"Only resnet_basic blocks can be separable. Received: kind={self.kind!r}, "
                                       f"separable=True in block {self.name!r}")
        if self.residual and self.kind != "depthwise_separable":
            raise InvalidArgumentError(f"Only depthwise_separable blocks take residual=True (resnet_basic and "
                                       f"inverted_residual have their own shortcut). Received: kind={self.kind!r}, "
                                       f"residual=True in block {self.name!r}")

    def removable(self, in_channels: int) -> bool:
        """True when the block maps its input to an output of the same shape (so it can be skipped)."""
        return (self.kind in ("resnet_basic", "inverted_residual", "conv_bn_relu", "depthwise_separable")
                and self.stride == 1 and self.filters == in_channels)


def _block_dict(b: BlockSpec) -> dict:
    """The block's fields; ``separable`` and ``residual`` only when set, so blocks written before they existed read
    (and hash) the same."""
    d = asdict(b)
    for flag in ("separable", "residual"):
        if not d[flag]:
            del d[flag]
    return d


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: input shape, classes, and the blocks in order."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    blocks: tuple[BlockSpec, ...] = field(default_factory=tuple)
    resolution: int | None = None  # resize the input to resolution x resolution first; None = input_shape's own

    def __post_init__(self) -> None:
        if self.resolution is not None and not 4 <= self.resolution <= min(self.input_shape[:2]):
            raise InvalidArgumentError(
                f"resolution must be between 4 and the input side {min(self.input_shape[:2])} (or None for the input's "
                f"own). Received: resolution={self.resolution!r}")
        if self.resolution is not None and tuple(self.input_shape[:2]) == (self.resolution, self.resolution):
            object.__setattr__(self, "resolution", None)  # the input's own size: one spelling, one hash
        names = [b.name for b in self.blocks]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"Block names must be unique. Received: {names}")
        if not self.blocks or self.blocks[-1].kind != "classifier":
            raise InvalidArgumentError(f"The last block of {self.name!r} must be a classifier")

    @property
    def active_blocks(self) -> tuple[BlockSpec, ...]:
        return tuple(b for b in self.blocks if b.enabled)

    def to_dict(self) -> dict:
        d = {"name": self.name, "input_shape": list(self.input_shape), "num_classes": self.num_classes,
             "blocks": [_block_dict(b) for b in self.blocks]}
        if self.resolution is not None:  # absent when unused, so specs written before it existed read the same
            d["resolution"] = self.resolution
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "ArchSpec":
        try:
            resolution = d.get("resolution")
            return cls(d["name"], tuple(int(x) for x in d["input_shape"]), int(d["num_classes"]),
                       tuple(BlockSpec(**b) for b in d["blocks"]), None if resolution is None else int(resolution))
        except (KeyError, TypeError) as exc:
            raise InvalidArgumentError(f"Not an architecture description: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        return cls.from_dict(json.loads(text))

    def spec_hash(self) -> str:
        """12 hex digits identifying the architecture (active blocks only; the name is ignored)."""
        fields = {"input_shape": list(self.input_shape), "num_classes": self.num_classes,
                  "blocks": [_block_dict(b) for b in self.active_blocks]}
        if self.resolution is not None:
            fields["resolution"] = self.resolution
        body = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def replace_block(self, name: str, **changes) -> "ArchSpec":
        return replace(self, blocks=tuple(replace(b, **changes) if b.name == name else b for b in self.blocks))

    def in_channels(self) -> dict[str, int]:
        """The input width of every block (enabled or not) given the blocks before it."""
        channels = self.input_shape[-1]
        result = {}
        for block in self.blocks:
            result[block.name] = channels
            if block.enabled and block.kind not in ("pool", "classifier"):
                channels = block.filters
        return result
