"""ArchSpec -> Keras functional model (float32 input in [0, 1], logits output).

Layer names are ``<block name>_<role>`` (roles below), stable across widths, so a child network can take
the weights of the same-named layers of its parent (see ``toolkit.synthesis.inherit``).
"""
from __future__ import annotations

from toolkit.arch.spec import ArchSpec, BlockSpec

# Moving statistics follow the batch statistics within tens of steps (Keras' default 0.99 needs hundreds),
# so short fine-tuning budgets still evaluate correctly in inference mode.
BN_MOMENTUM = 0.9

# Weight-carrying roles per block kind, in data-flow order (used for weight inheritance).
CONV_ROLES = {
    "conv_bn_relu": (("conv", "bn"),),
    "depthwise_separable": (("dw", "dw_bn"), ("pw", "pw_bn")),
    "inverted_residual": (("expand", "expand_bn"), ("dw", "dw_bn"), ("project", "project_bn")),
    "resnet_basic": (("conv1", "bn1"), ("conv2", "bn2"), ("short", "short_bn")),
    "classifier": (("dense", None),),
    "pool": (),
}


def _no_hook(x, bn_name: str):
    return x


def _separable(x, b: BlockSpec, prefix: str, stride: int, init, post_bn):
    """One depthwise-separable conv, layers ``<prefix>_dw``, ``_dw_bn``, ``_dw_relu``, ``_pw``, ``_pw_bn``: k x k
    depthwise -> BN -> ReLU -> 1x1 -> BN (a depthwise_separable block adds a ReLU; a separable ResNet block uses
    two of them)."""
    from keras import layers

    x = layers.DepthwiseConv2D(b.kernel, stride, padding="same", use_bias=False, depthwise_initializer=init(),
                               name=f"{prefix}_dw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_dw_bn")(x)
    x = post_bn(x, f"{prefix}_dw_bn")
    x = layers.ReLU(name=f"{prefix}_dw_relu")(x)
    x = layers.Conv2D(b.filters, 1, padding="same", use_bias=False, kernel_initializer=init(), name=f"{prefix}_pw")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{prefix}_pw_bn")(x)
    return post_bn(x, f"{prefix}_pw_bn")


def build_block(x, b: BlockSpec, num_classes: int, init, post_bn=_no_hook):
    """Block ``b`` applied to tensor ``x`` (layers named ``<block name>_<role>``).
    ``post_bn(x, bn_layer_name)`` is applied to every batch-norm output (the supernet masks channels there)."""
    from keras import layers

    n = b.name
    if b.kind == "conv_bn_relu":
        x = layers.Conv2D(b.filters, b.kernel, b.stride, padding="same", use_bias=False,
                          kernel_initializer=init(), name=f"{n}_conv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{n}_bn")(x)
        x = post_bn(x, f"{n}_bn")
        return layers.ReLU(name=f"{n}_relu")(x)
    if b.kind == "depthwise_separable":
        inp = x
        x = _separable(x, b, n, b.stride, init, post_bn)
        if b.residual and b.stride == 1 and int(inp.shape[-1]) == b.filters:
            x = layers.Add(name=f"{n}_add")([inp, x])
        return layers.ReLU(name=f"{n}_pw_relu")(x)
    if b.kind == "inverted_residual":
        inp = x
        c_in = int(x.shape[-1])
        if b.expansion > 1:
            x = layers.Conv2D(c_in * b.expansion, 1, padding="same", use_bias=False, kernel_initializer=init(),
                              name=f"{n}_expand")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{n}_expand_bn")(x)
            x = post_bn(x, f"{n}_expand_bn")
            x = layers.ReLU(6.0, name=f"{n}_expand_relu")(x)
        x = layers.DepthwiseConv2D(b.kernel, b.stride, padding="same", use_bias=False,
                                   depthwise_initializer=init(), name=f"{n}_dw")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{n}_dw_bn")(x)
        x = post_bn(x, f"{n}_dw_bn")
        x = layers.ReLU(6.0, name=f"{n}_dw_relu")(x)
        x = layers.Conv2D(b.filters, 1, padding="same", use_bias=False, kernel_initializer=init(),
                          name=f"{n}_project")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{n}_project_bn")(x)
        x = post_bn(x, f"{n}_project_bn")
        if b.stride == 1 and c_in == b.filters:
            x = layers.Add(name=f"{n}_add")([inp, x])
        return x
    if b.kind == "resnet_basic":
        inp = x
        c_in = int(x.shape[-1])
        sep = "sep" if b.separable else ""  # the separable form's own layer names: a supernet holds both forms
        if b.separable:
            x = _separable(x, b, f"{n}_sep1", b.stride, init, post_bn)
            x = layers.ReLU(name=f"{n}_seprelu1")(x)
            x = _separable(x, b, f"{n}_sep2", 1, init, post_bn)
        else:
            x = layers.Conv2D(b.filters, b.kernel, b.stride, padding="same", use_bias=False,
                              kernel_initializer=init(), name=f"{n}_conv1")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{n}_bn1")(x)
            x = post_bn(x, f"{n}_bn1")
            x = layers.ReLU(name=f"{n}_relu1")(x)
            x = layers.Conv2D(b.filters, b.kernel, padding="same", use_bias=False, kernel_initializer=init(),
                              name=f"{n}_conv2")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{n}_bn2")(x)
            x = post_bn(x, f"{n}_bn2")
        shortcut = inp
        if b.stride != 1 or c_in != b.filters:
            short = f"{n}_{sep}short"
            shortcut = layers.Conv2D(b.filters, 1, b.stride, padding="same", use_bias=False,
                                     kernel_initializer=init(), name=short)(inp)
            shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{short}_bn")(shortcut)
            shortcut = post_bn(shortcut, f"{short}_bn")
        x = layers.Add(name=f"{n}_{sep}add")([shortcut, x])
        return layers.ReLU(name=f"{n}_{sep}relu2")(x)
    if b.kind == "pool":
        cls = layers.MaxPooling2D if b.pool_type == "max" else layers.AveragePooling2D
        return cls(b.kernel, padding="same", name=f"{n}_pool")(x)
    # classifier
    x = layers.GlobalAveragePooling2D(name=f"{n}_gap")(x)
    if b.dropout:
        x = layers.Dropout(b.dropout, name=f"{n}_dropout")(x)
    return layers.Dense(num_classes, kernel_initializer=init(), name=f"{n}_dense")(x)


def build_model(spec: ArchSpec, seed: int | None = None, *, post_bn=None, gate=None, extra_inputs=(),
                any_resolution: bool = False):
    """A fresh (randomly initialised) Keras model for ``spec``; ``seed`` makes the init reproducible.

    With ``spec.resolution`` set, an ``input_resize`` layer (bilinear, as ``tf.image.resize``) first resizes the
    image to that side. The weight-sharing supernet (``toolkit.synthesis.supernet``) builds the same layers through
    the hooks: ``post_bn(x, bn_name)`` after every batch norm, ``gate(block_input, block_output, block)`` around
    every block (returns the tensor passed on), ``extra_inputs`` (its mask inputs) after the image input, and
    ``any_resolution`` (an input of any height and width, fed already resized; no resize layer).

    >>> model = build_model(get_prototype("resnet20", (28, 28, 1), 10), seed=0)   # doctest: +SKIP
    """
    import keras

    counter = iter(range(10_000))

    def init():
        return keras.initializers.HeNormal(seed=None if seed is None else seed * 10_000 + next(counter))

    from keras import layers

    shape = (None, None, spec.input_shape[-1]) if any_resolution else spec.input_shape
    inputs = keras.Input(shape, name="input")
    x = inputs
    if spec.resolution is not None and not any_resolution:
        x = layers.Resizing(spec.resolution, spec.resolution, interpolation="bilinear", name="input_resize")(x)
    for block in spec.active_blocks:
        y = build_block(x, block, spec.num_classes, init, post_bn or _no_hook)
        x = gate(x, y, block) if gate is not None else y
    return keras.Model([inputs, *extra_inputs] if extra_inputs else inputs, x, name=spec.name)
