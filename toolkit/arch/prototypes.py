"""Built-in prototypes, adapted to the dataset's input shape and number of classes.

- ``resnet20``: He et al. 2016's CIFAR ResNet-20 — a 3x3 stem of 16 channels, three stages of three basic
  blocks (16, 32, 64 channels; stride 2 at the start of stages 2 and 3), global pooling, dense.
- ``mobilenetv2``: Sandler et al. 2018's inverted-residual network with a width multiplier; for inputs of
  64 px or less the stem and the first strided stage use stride 1 (as CIFAR adaptations do), so 28x28
  inputs are not pooled away.
- ``vgg_small``: conv-bn-relu pairs of 32/64/128 channels with 2x2 max pooling after each pair.
- ``dsnet``: a depthwise-separable network for small images, made to be a search space's root
  (``synthesize --space-root dsnet``) rather than a reference: a 3x3 stem of 32, three separable blocks of 64 (the
  first with stride 2) and five of 160 (the first with stride 2). It spends its MACs on wide separable layers at a
  quarter of the input's side, where a 28x28 network of about 3M MACs was measured most accurate (issue 10,
  ``benchmarks/space_from_scratch.py``). Its stride-1 blocks add their input (``residual=True``), so a search can
  skip one without cutting the path through it. For inputs over 64 px the stem has stride 2 as well.
"""
from __future__ import annotations

from toolkit.arch.spec import ArchSpec, BlockSpec
from toolkit.errors import InvalidArgumentError

PROTOTYPES = ("resnet20", "mobilenetv2", "vgg_small", "dsnet")


def _width(channels: float, multiplier: float, divisor: int = 8) -> int:
    """Round ``channels * multiplier`` to a multiple of ``divisor`` without losing more than 10%."""
    value = channels * multiplier
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _resnet20(input_shape, num_classes, wm):
    blocks = [BlockSpec("conv_bn_relu", "stem", _width(16, wm, 4))]
    for stage, channels in enumerate((16, 32, 64), start=1):
        for i in range(3):
            stride = 2 if stage > 1 and i == 0 else 1
            blocks.append(BlockSpec("resnet_basic", f"s{stage}b{i}", _width(channels, wm, 4), stride=stride))
    blocks.append(BlockSpec("classifier", "head"))
    return ArchSpec("resnet20", input_shape, num_classes, tuple(blocks))


# (expansion, channels, repeats, stride) of MobileNetV2's bottleneck stages.
_MBV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


def _mobilenetv2(input_shape, num_classes, wm):
    small = min(input_shape[0], input_shape[1]) <= 64
    blocks = [BlockSpec("conv_bn_relu", "stem", _width(32, wm), stride=1 if small else 2)]
    for s, (t, c, n, stride) in enumerate(_MBV2_STAGES):
        if small and s == 1:
            stride = 1
        for i in range(n):
            blocks.append(BlockSpec("inverted_residual", f"s{s}b{i}", _width(c, wm), stride=stride if i == 0 else 1,
                                    expansion=t))
    blocks.append(BlockSpec("conv_bn_relu", "last", _width(1280, max(1.0, wm)), kernel=1))
    blocks.append(BlockSpec("classifier", "head", dropout=0.2))
    return ArchSpec("mobilenetv2", input_shape, num_classes, tuple(blocks))


def _vgg_small(input_shape, num_classes, wm):
    blocks = []
    for stage, channels in enumerate((32, 64, 128), start=1):
        blocks += [BlockSpec("conv_bn_relu", f"s{stage}c0", _width(channels, wm)),
                   BlockSpec("conv_bn_relu", f"s{stage}c1", _width(channels, wm)),
                   BlockSpec("pool", f"s{stage}pool", kernel=2)]
    blocks.append(BlockSpec("classifier", "head"))
    return ArchSpec("vgg_small", input_shape, num_classes, tuple(blocks))


def _dsnet(input_shape, num_classes, wm):
    small = min(input_shape[0], input_shape[1]) <= 64
    blocks = [BlockSpec("conv_bn_relu", "stem", _width(32, wm), stride=1 if small else 2)]
    for stage, (channels, repeats) in enumerate(((64, 3), (160, 5)), start=1):
        blocks += [BlockSpec("depthwise_separable", f"s{stage}b{i}", _width(channels, wm), stride=2 if i == 0 else 1,
                             residual=i > 0) for i in range(repeats)]
    blocks.append(BlockSpec("classifier", "head"))
    return ArchSpec("dsnet", input_shape, num_classes, tuple(blocks))


_BUILDERS = {"resnet20": _resnet20, "mobilenetv2": _mobilenetv2, "vgg_small": _vgg_small, "dsnet": _dsnet}


def get_prototype(name: str, input_shape=(28, 28, 1), num_classes: int = 10,
                  width_multiplier: float = 1.0) -> ArchSpec:
    """The prototype ``name`` for images of ``input_shape`` (H, W, C) and ``num_classes`` classes.

    >>> get_prototype("resnet20", (28, 28, 1), 10).blocks[1].filters
    16
    """
    if name not in _BUILDERS:
        raise InvalidArgumentError(f"Unknown prototype {name!r}. Use one of {', '.join(PROTOTYPES)}")
    if not width_multiplier > 0:
        raise InvalidArgumentError(f"width_multiplier must be > 0. Received: width_multiplier={width_multiplier!r}")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InvalidArgumentError(f"input_shape must be (height, width, channels). Received: {input_shape!r}")
    if num_classes < 2:
        raise InvalidArgumentError(f"num_classes must be >= 2. Received: num_classes={num_classes}")
    return _BUILDERS[name](shape, int(num_classes), float(width_multiplier))
