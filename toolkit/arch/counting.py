"""Exact multiply-accumulate and parameter counts for Keras models of standard layers.

MACs of one inference (batch 1):
- Conv2D: H_out * W_out * C_out * k_h * k_w * C_in / groups
- DepthwiseConv2D: H_out * W_out * C_in * depth_multiplier * k_h * k_w
- SeparableConv2D: the depthwise part + H_out * W_out * C_in * depth_multiplier * C_out
- Dense: in_features * units for every position of the leading dimensions
Batch normalization, activations, pooling, Add, padding, reshaping, dropout and resizing count 0 MACs (they are
element-wise or folded into the preceding conv by the converter; a bilinear resize is a few multiplies per output
pixel, like pooling). Biases are not multiplies.
"""
from __future__ import annotations

import math

from toolkit.errors import InvalidArgumentError

_ZERO_MAC = {
    "InputLayer", "BatchNormalization", "ReLU", "Activation", "Softmax", "LeakyReLU", "PReLU", "ELU",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "MaxPooling1D",
    "AveragePooling1D", "GlobalAveragePooling1D", "Add", "Subtract", "Multiply", "Average", "Maximum",
    "Minimum", "Concatenate", "ZeroPadding2D", "Cropping2D", "Reshape", "Flatten", "Dropout",
    "SpatialDropout2D", "Rescaling", "Normalization", "Identity", "UpSampling2D", "Permute", "RandomFlip",
    "RandomTranslation", "RandomRotation", "RandomZoom", "GaussianNoise", "LayerNormalization", "Resizing",
}


def _shape(tensor_or_shape) -> tuple:
    shape = getattr(tensor_or_shape, "shape", tensor_or_shape)
    return tuple(shape)


def _layer_macs(layer) -> int:
    import keras

    cls = layer.__class__.__name__
    if isinstance(layer, keras.Model) or cls in ("Functional", "Sequential"):
        return count_macs(layer)
    if cls in _ZERO_MAC:
        return 0
    out = _shape(layer.output)
    inp = _shape(layer.input)
    if cls == "Conv2D":
        kh, kw = layer.kernel_size
        c_in = inp[-1]
        return out[1] * out[2] * out[3] * kh * kw * c_in // layer.groups
    if cls == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        return out[1] * out[2] * inp[-1] * layer.depth_multiplier * kh * kw
    if cls == "SeparableConv2D":
        kh, kw = layer.kernel_size
        mid = inp[-1] * layer.depth_multiplier
        return out[1] * out[2] * (mid * kh * kw + mid * out[3])
    if cls == "Dense":
        positions = math.prod(d for d in out[1:-1]) if len(out) > 2 else 1
        return positions * inp[-1] * layer.units
    raise InvalidArgumentError(
        f"count_macs does not know layer {layer.name!r} of class {cls}; it counts standard layers only "
        f"(Conv2D, DepthwiseConv2D, SeparableConv2D, Dense and zero-MAC layers)")


def count_macs(model) -> int:
    """Multiply-accumulates of one batch-1 inference of a functional/sequential Keras model.

    >>> count_macs(keras.applications.MobileNetV2(weights=None))   # doctest: +SKIP
    300774272
    """
    return int(sum(_layer_macs(layer) for layer in model.layers))


def count_params(model) -> int:
    """All parameters (trainable and not, e.g. BatchNorm moving statistics), as Keras counts them."""
    return int(sum(math.prod(w.shape) for w in model.weights))
