"""Loading a ``.tflite`` file into an interpreter, and facts read from it.

The interpreter comes from LiteRT (``ai_edge_litert``); where that is not installed (e.g. a board with
only ``tflite_runtime``), from ``tflite_runtime``, and last from TensorFlow's ``tf.lite``.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ModelFileError, check_positive_int

log = logging.getLogger(__name__)

TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffer file identifier at bytes 4..8 of every TFLite model


def interpreter_class():
    """The Interpreter class of the best available runtime, and its name."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter, "tflite_runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow"
    except ImportError as exc:
        raise ModelFileError(
            "No TFLite interpreter is installed. Install one: pip install ai-edge-litert") from exc


def check_tflite_file(path: str | Path) -> Path:
    """Raise a ModelFileError unless ``path`` is an existing TFLite FlatBuffer."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"No such model file. Received: {str(p)!r}; check the path")
    if not p.is_file():
        raise ModelFileError(f"The model path is not a file. Received: {str(p)!r}")
    with open(p, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        hint = " (a Keras model: convert it first with `ferminet convert`)" if p.suffix in (".keras", ".h5") else ""
        raise ModelFileError(
            f"{str(p)!r} is not a TFLite model: its bytes 4-8 are {head[4:8]!r}, not {TFLITE_IDENTIFIER!r}{hint}")
    return p


def load_interpreter(path: str | Path, num_threads: int = 1, default_delegates: bool = True):
    """An allocated interpreter for ``path``; corrupt or unsupported files raise ModelFileError.

    ``default_delegates=False`` keeps the graph as converted (XNNPACK otherwise replaces
    supported ops by DELEGATE nodes), which is what inspecting the op list needs.
    """
    p = check_tflite_file(path)
    check_positive_int("num_threads", num_threads)
    Interpreter, _ = interpreter_class()
    kwargs = {}
    if not default_delegates:
        resolver = getattr(getattr(Interpreter, "__module__", None) and __import__(
            Interpreter.__module__, fromlist=["OpResolverType"]), "OpResolverType", None)
        if resolver is not None:
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = Interpreter(model_path=str(p), num_threads=num_threads, **kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{str(p)!r} could not be loaded by the TFLite interpreter: {first}. "
                             f"The file may be truncated or corrupt; re-export it") from exc
    return interpreter


@dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor; ``scale``/``zero_point`` are 0.0/0 for float tensors."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class ModelInfo:
    path: str
    size_kb: float
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    op_histogram: tuple[tuple[str, int], ...]
    num_ops: int
    fully_int8: bool
    float_ops: tuple[str, ...]  # ops that compute in float (empty when fully int8)
    runtime: str


def _tensor_info(d: dict) -> TensorInfo:
    scale, zero = d.get("quantization", (0.0, 0))
    return TensorInfo(d["name"], tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]).name, float(scale), int(zero))


# Ops whose float tensors are expected at the edges of an int8 model with float I/O.
_IO_OPS = {"QUANTIZE", "DEQUANTIZE"}


def inspect_tflite(path: str | Path) -> ModelInfo:
    """Inputs/outputs, op histogram, size and whether the model computes fully in int8.

    "Fully int8" means every op other than the QUANTIZE/DEQUANTIZE at the edges reads and
    writes integer tensors (bias tensors are int32).
    """
    interpreter = load_interpreter(path, default_delegates=False)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # public API has no op listing; stable across TF/LiteRT
    histogram = collections.Counter(op["op_name"] for op in ops)
    float_ops = []
    for op in ops:
        if op["op_name"] in _IO_OPS:
            continue
        idx = [i for i in list(op["inputs"]) + list(op["outputs"]) if i >= 0]
        if any(np.dtype(tensors[i]["dtype"]).kind == "f" for i in idx if i in tensors):
            float_ops.append(op["op_name"])
    _, runtime = interpreter_class()
    return ModelInfo(
        path=str(path),
        size_kb=Path(path).stat().st_size / 1024.0,
        inputs=tuple(_tensor_info(d) for d in interpreter.get_input_details()),
        outputs=tuple(_tensor_info(d) for d in interpreter.get_output_details()),
        op_histogram=tuple(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        num_ops=len(ops),
        fully_int8=not float_ops,
        float_ops=tuple(sorted(set(float_ops))),
        runtime=runtime,
    )


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float images in [0, 1] -> the dtype the model's input expects (quantized when integer)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype)
    scale, zero = detail["quantization"]
    if not scale:
        raise ModelFileError(f"Integer input {detail['name']!r} has no quantization scale; re-convert the model")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def predict_tflite(interpreter, x: np.ndarray) -> np.ndarray:
    """Class scores for ``x`` (N, H, W, C) float in [0, 1], one sample at a time (batch-1 models)."""
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    expected = tuple(int(d) for d in inp["shape"][1:])
    if tuple(x.shape[1:]) != expected:
        raise InvalidArgumentError(
            f"The model takes inputs of shape {expected} but the data has {tuple(x.shape[1:])}. "
            f"Use the dataset the model was built for")
    scores = []
    for sample in x:
        interpreter.set_tensor(inp["index"], quantize_input(sample[None, ...], inp))
        interpreter.invoke()
        scores.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(scores)


def evaluate_tflite(path: str | Path, x: np.ndarray, y: np.ndarray, num_threads: int = 1) -> float:
    """Top-1 accuracy (fraction) of a ``.tflite`` model in the interpreter on arrays."""
    if len(x) == 0:
        raise InvalidArgumentError("Cannot evaluate on an empty split. Received: len(x)=0")
    scores = predict_tflite(load_interpreter(path, num_threads), x)
    return float(np.mean(np.argmax(scores, axis=-1) == y))
