"""A ``.tflite`` graph split into kernels: one per operator of the main subgraph, with the numbers its cost
depends on (MACs, bytes in and out, weights, kernel, stride, channels, fused activation, quantization).

The file is read with the TFLite flatbuffer schema that LiteRT ships (``ai_edge_litert.schema_py_generated``,
the same generated reader TensorFlow ships as ``tensorflow.lite.python.schema_py_generated``), so no parser of
our own stands between the file and the features.

    >>> ks = read_kernels("m.tflite")                   # doctest: +SKIP
    >>> ks[0].op, ks[0].macs, ks[0].kernel_h, ks[0].stride_h   # doctest: +SKIP
    ('CONV_2D', 442368, 3, 1)
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from toolkit.errors import ModelFileError

# Order of the numeric features a regressor sees (see Kernel.features).
FEATURE_NAMES = (
    "macs", "in_bytes", "out_bytes", "weight_bytes", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "n_inputs", "activation_code", "quantized", "elem_bytes",
)

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT", 6: "SIGN_BIT"}
_DTYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 16: 2, 17: 1}  # FLOAT32, FLOAT16, INT32...


@dataclass(frozen=True)
class Kernel:
    """One operator of the graph, as the cost model sees it. Sizes are in elements and bytes of one inference
    (batch as in the file); ``macs`` counts multiply-accumulates (for pools and element-wise ops, the number of
    input elements each output reads, so a 3x3 pool costs 9 per output)."""

    index: int                 # position in the execution plan
    op: str                    # builtin name, e.g. CONV_2D, DEPTHWISE_CONV_2D, ADD, AVERAGE_POOL_2D
    activation: str            # fused activation, NONE when there is none
    dtype: str                 # dtype of the first activation input: FLOAT32, INT8, ...
    quantized: bool            # activations carry a scale/zero-point
    macs: int
    in_bytes: int              # activation (non-constant) inputs
    out_bytes: int
    weight_bytes: int          # constant inputs (weights, bias)
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    kernel_h: int = 1
    kernel_w: int = 1
    stride_h: int = 1
    stride_w: int = 1
    n_inputs: int = 1          # activation inputs (an ADD of two tensors has 2)
    name: str = ""             # name of the output tensor (the converter joins fused layers' names with ';')

    @property
    def kind(self) -> str:
        """The regressor this kernel belongs to: op name, plus the fused activation when there is one."""
        return self.op if self.activation == "NONE" else f"{self.op}+{self.activation}"

    def features(self) -> tuple[float, ...]:
        """Numeric features in :data:`FEATURE_NAMES` order."""
        act_code = {"NONE": 0, "RELU": 1, "RELU6": 2}.get(self.activation, 3)
        elem = max(1, self.out_bytes // max(1, self.out_h * self.out_w * self.out_c))
        return (float(self.macs), float(self.in_bytes), float(self.out_bytes), float(self.weight_bytes),
                float(self.in_h), float(self.in_w), float(self.in_c), float(self.out_h), float(self.out_w),
                float(self.out_c), float(self.kernel_h), float(self.kernel_w), float(self.stride_h),
                float(self.stride_w), float(self.n_inputs), float(act_code), float(self.quantized), float(elem))

    def signature(self) -> tuple:
        """Everything but the position: kernels with equal signatures cost the same on one device."""
        d = asdict(self)
        d.pop("index")
        d.pop("name")
        return tuple(sorted(d.items()))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Kernel":
        return cls(**d)


def _names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _hwc(shape) -> tuple[int, int, int]:
    """(h, w, c) of an NHWC shape; (1, 1, c) for [N, C] and [C]."""
    s = [int(v) for v in (list(shape) if shape is not None else [])]
    if len(s) == 4:
        return s[1], s[2], s[3]
    if len(s) == 3:
        return s[0], s[1], s[2]
    if len(s) == 2:
        return 1, 1, s[1]
    if len(s) == 1:
        return 1, 1, s[0]
    return 1, 1, 1


def _numel(shape) -> int:
    return int(math.prod(int(v) for v in shape)) if shape is not None and len(shape) else 1


def read_kernels(path: str | Path) -> tuple[Kernel, ...]:
    """Kernels of the main subgraph of a ``.tflite`` file, in execution order."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"Cannot read the model file. Received: {str(p)!r} ({exc.strerror})") from exc
    return kernels_from_bytes(data, name=str(p))


def kernels_from_bytes(data: bytes, *, name: str = "<bytes>") -> tuple[Kernel, ...]:
    """As :func:`read_kernels`, from the file's bytes."""
    from ai_edge_litert import schema_py_generated as schema

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"Not a TFLite flatbuffer (no 'TFL3' identifier). Received: {name!r}")
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as exc:  # noqa: BLE001 - a corrupt flatbuffer fails anywhere inside the reader
        raise ModelFileError(f"{name!r} could not be read as a TFLite model: {exc}") from exc
    if not model.subgraphs:
        raise ModelFileError(f"{name!r} has no subgraph. Received: a TFLite file without operators")
    op_names = _names(schema.BuiltinOperator)
    type_names = _names(schema.TensorType)
    graph = model.subgraphs[0]
    tensors = graph.tensors or []
    buffers = model.buffers or []

    def is_const(t_index: int) -> bool:
        t = tensors[t_index]
        if t.buffer is None or t.buffer <= 0 or t.buffer >= len(buffers):
            return False
        b = buffers[t.buffer]
        return (b.data is not None and len(b.data) > 0) or bool(getattr(b, "size", 0))

    def nbytes(t_index: int) -> int:
        t = tensors[t_index]
        return _numel(t.shape) * _DTYPE_BYTES.get(t.type, 4)

    kernels = []
    for index, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))
        op_name = op_names.get(builtin, f"BUILTIN_{builtin}") if builtin != schema.BuiltinOperator.CUSTOM \
            else f"CUSTOM:{(code.customCode or b'').decode(errors='replace') if isinstance(code.customCode, bytes) else code.customCode}"
        ins = [i for i in (op.inputs if op.inputs is not None else []) if i >= 0]
        outs = [o for o in (op.outputs if op.outputs is not None else []) if o >= 0]
        acts = [i for i in ins if not is_const(i)]
        consts = [i for i in ins if is_const(i)]
        first = tensors[acts[0]] if acts else (tensors[ins[0]] if ins else None)
        out = tensors[outs[0]] if outs else None
        in_h, in_w, in_c = _hwc(first.shape if first is not None else None)
        out_h, out_w, out_c = _hwc(out.shape if out is not None else None)
        opts = op.builtinOptions
        activation = _ACTIVATIONS.get(getattr(opts, "fusedActivationFunction", 0) or 0, "OTHER")
        kh = kw = sh = sw = 1
        out_elems = _numel(out.shape) if out is not None else 0
        if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D"):
            w = tensors[ins[1]].shape if len(ins) > 1 else [1, 1, 1, 1]
            kh, kw = (int(w[1]), int(w[2])) if len(w) == 4 else (1, 1)
            sh, sw = int(getattr(opts, "strideH", 1) or 1), int(getattr(opts, "strideW", 1) or 1)
            if op_name == "DEPTHWISE_CONV_2D":
                macs = out_elems * kh * kw
            else:
                w_in = int(w[3]) if len(w) == 4 else in_c
                macs = out_elems * kh * kw * w_in
        elif op_name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"):
            kh, kw = int(getattr(opts, "filterHeight", 1) or 1), int(getattr(opts, "filterWidth", 1) or 1)
            sh, sw = int(getattr(opts, "strideH", 1) or 1), int(getattr(opts, "strideW", 1) or 1)
            macs = out_elems * kh * kw
        elif op_name in ("FULLY_CONNECTED", "BATCH_MATMUL"):
            w = tensors[ins[1]].shape if len(ins) > 1 else [1, 1]
            macs = out_elems * int(w[-1])
        elif op_name == "MEAN":
            macs = _numel(first.shape) if first is not None else 0
        else:
            macs = sum(_numel(tensors[i].shape) for i in acts) if acts else out_elems
        dtype = type_names.get(first.type, str(first.type)) if first is not None else "UNKNOWN"
        quant = first.quantization if first is not None else None
        quantized = bool(quant is not None and quant.scale is not None and len(quant.scale) > 0)
        kernels.append(Kernel(
            index=index, op=op_name, activation=activation, dtype=dtype, quantized=quantized, macs=int(macs),
            in_bytes=sum(nbytes(i) for i in acts), out_bytes=sum(nbytes(o) for o in outs),
            weight_bytes=sum(nbytes(i) for i in consts), in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h,
            out_w=out_w, out_c=out_c, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
            n_inputs=max(1, len(acts)),
            name=out.name.decode(errors="replace") if isinstance(out.name, bytes) else str(out.name or "")))
    return tuple(kernels)


def total_macs(kernels: tuple[Kernel, ...] | list[Kernel]) -> int:
    """MACs of the convolution and dense kernels (the usual 'MACs' of a network)."""
    return sum(k.macs for k in kernels if k.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                                     "TRANSPOSE_CONV", "BATCH_MATMUL"))
