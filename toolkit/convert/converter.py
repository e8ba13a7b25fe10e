"""Keras -> TFLite conversion that checks itself.

Every conversion runs the ``.tflite`` in the interpreter on the test split and compares top-1 with
the Keras model. The file is written only when the check passes (converted to a temporary file,
validated, then moved into place), so a failed conversion leaves nothing behind.

Modes: ``int8`` full-integer quantization calibrated on a representative dataset (inputs/outputs
int8, uint8 or float32), ``fp16`` float16 weights, ``dynamic`` int8 weights with float activations,
``fp32`` no quantization.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from toolkit import safe_io
from toolkit.convert.interpreter import evaluate_tflite, inspect_tflite
from toolkit.data import Dataset
from toolkit.errors import AccuracyDropError, ConversionError, InvalidArgumentError, ModelFileError

log = logging.getLogger(__name__)

MODES = ("int8", "fp16", "dynamic", "fp32")
IO_DTYPES = ("int8", "uint8", "float32")
MIN_REPRESENTATIVE = 100


@dataclass(frozen=True)
class ConversionResult:
    """A validated conversion. Accuracies are fractions; ``drop_pt`` is in percentage points."""

    path: str
    mode: str
    io_dtype: str
    size_kb: float
    keras_top1: float
    tflite_top1: float
    drop_pt: float
    eval_samples: int
    fully_int8: bool
    op_histogram: tuple[tuple[str, int], ...]


def load_keras_model(path: str | Path):
    """Load a ``.keras``/``.h5`` model with a clear error for anything else."""
    import keras

    p = Path(path)
    if not p.is_file():
        raise ModelFileError(f"No such Keras model file. Received: {str(p)!r}; check the path")
    if p.suffix not in (".keras", ".h5"):
        raise ModelFileError(f"Expected a Keras model file (.keras or .h5). Received: {str(p)!r}")
    try:
        return keras.models.load_model(p, compile=False)
    except Exception as exc:  # noqa: BLE001 - any load failure means the file is unusable
        raise ModelFileError(f"{str(p)!r} could not be loaded as a Keras model: {str(exc).splitlines()[0][:200]}") from exc


@contextlib.contextmanager
def _quiet():
    """Silence the converter's own chatter (Python prints, C++ logs on fd 1/2, UserWarnings).

    Its failures still surface as exceptions, which the caller turns into a ConversionError.
    """
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def _tflite_bytes(model, data: Dataset, mode: str, io_dtype: str, representative_samples: int) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = data.representative(representative_samples)
        # Builtins-int8 only: the converter fails instead of silently keeping float ops.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io_dtype != "float32":
            converter.inference_input_type = getattr(tf, io_dtype)
            converter.inference_output_type = getattr(tf, io_dtype)
    elif mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    try:
        with _quiet():
            return converter.convert()
    except Exception as exc:  # noqa: BLE001 - converter errors are many types; all mean the same to a user
        text = " ".join(str(exc).split())
        if mode == "int8":
            raise ConversionError(
                f"The model cannot be fully quantized to int8: {text[:300]}. Replace the ops named above with "
                f"int8-capable builtins (Conv2D, DepthwiseConv2D, Dense, Add, pooling, ReLU/ReLU6) or use "
                f"--mode dynamic/fp16") from exc
        raise ConversionError(f"TFLite conversion ({mode}) failed: {text[:300]}") from exc


def convert_model(model, data: Dataset, out_path: str | Path, mode: str = "int8", *, io_dtype: str = "int8",
                  max_drop_pt: float | None = None, eval_samples: int | None = None,
                  representative_samples: int = 200, keras_top1: float | None = None,
                  overwrite: bool = True) -> ConversionResult:
    """Convert a Keras model (object or ``.keras`` path) to TFLite and validate it on ``data.x_test``.

    ``eval_samples`` limits the validation to the first N test images (default: all). ``keras_top1``
    may be passed when it is already known for the same samples. Raises AccuracyDropError when the
    drop exceeds ``max_drop_pt`` percentage points. ``overwrite=False`` refuses an existing ``out_path`` (the CLI
    does without --force); it is never the input model nor a folder. The file gets normal permissions (umask).

    >>> cr = convert_model(model, load_dataset("fashion_mnist"), "m.tflite", mode="int8")  # doctest: +SKIP
    >>> cr.drop_pt <= 0.3                                                                    # doctest: +SKIP
    True
    """
    if mode not in MODES:
        raise InvalidArgumentError(f"mode must be one of {', '.join(MODES)}. Received: mode={mode!r}")
    if io_dtype not in IO_DTYPES:
        raise InvalidArgumentError(f"io_dtype must be one of {', '.join(IO_DTYPES)}. Received: io_dtype={io_dtype!r}")
    if mode != "int8" and io_dtype != "float32":
        io_dtype = "float32"  # only full-integer models have integer I/O
    if mode == "int8" and representative_samples < MIN_REPRESENTATIVE:
        raise InvalidArgumentError(
            f"int8 calibration needs >= {MIN_REPRESENTATIVE} representative samples. "
            f"Received: representative_samples={representative_samples}")
    if max_drop_pt is not None and max_drop_pt < 0:
        raise InvalidArgumentError(f"max_drop_pt must be >= 0. Received: max_drop_pt={max_drop_pt!r}")
    out = safe_io.check_output_file(out_path, force=overwrite,
                                    inputs=(model,) if isinstance(model, (str, Path)) else ())
    if isinstance(model, (str, Path)):
        model = load_keras_model(model)
    expected = tuple(int(d) for d in model.input_shape[1:])
    if expected != data.input_shape:
        raise InvalidArgumentError(
            f"The model takes inputs of shape {expected} but dataset {data.name!r} has {data.input_shape}. "
            f"Convert with the dataset the model was trained on")

    n = len(data.x_test) if eval_samples is None else min(int(eval_samples), len(data.x_test))
    x, y = data.x_test[:n], data.y_test[:n]
    if keras_top1 is None:
        from toolkit.train import evaluate_keras

        keras_top1 = evaluate_keras(model, x, y)

    content = _tflite_bytes(model, data, mode, io_dtype, representative_samples)
    safe_io.remove_stale_temps(out.parent)
    tmp_name = str(safe_io.temp_path(out))
    try:
        with open(tmp_name, "wb") as fh:
            fh.write(content)
        info = inspect_tflite(tmp_name)
        if mode == "int8" and not info.fully_int8:
            raise ConversionError(
                f"The model cannot be fully quantized to int8: ops {list(info.float_ops)} still compute in "
                f"float. Replace those layers with int8-capable builtins (Conv2D, DepthwiseConv2D, Dense, Add, "
                f"pooling, ReLU/ReLU6) or use --mode dynamic/fp16")
        tflite_top1 = evaluate_tflite(tmp_name, x, y)
        drop_pt = (keras_top1 - tflite_top1) * 100.0
        if max_drop_pt is not None and drop_pt > max_drop_pt:
            raise AccuracyDropError(
                f"{mode} conversion lost {drop_pt:.2f} pt top-1 (Keras {keras_top1:.2%} -> TFLite "
                f"{tflite_top1:.2%} on {n} test images), over the allowed {max_drop_pt} pt. "
                f"Use more --representative-samples, quantization-friendly layers (ReLU6, BatchNorm folded), "
                f"--mode fp16/dynamic, or raise --max-drop")
        safe_io.publish(tmp_name, out)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    log.info("%s: %s top-1 %.4f (Keras %.4f), %.1f KB", out, mode, tflite_top1, keras_top1, info.size_kb)
    return ConversionResult(str(out), mode, io_dtype, info.size_kb, float(keras_top1), float(tflite_top1),
                            float(drop_pt), int(n), info.fully_int8, info.op_histogram)
