"""NAS-Bench-201 networks as Keras models and float32 TFLite files, built from their cell string.

The skeleton (Dong & Yang, ICLR 2020; ``TinyNetwork`` in their code): a 3x3 conv stem with 16 channels + BN,
three stages of ``N=5`` cells with C = 16 / 32 / 64, a ResNet basic block with stride 2 between stages
(ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, shortcut AvgPool2x2(s2) + Conv1x1), then BN-ReLU, global average
pool and a dense layer with 10 classes. Input 32x32x3 (CIFAR), batch 1.

The cell is a DAG of 4 nodes; edge ``op~j`` in the i-th ``+``-separated group feeds node i from node j, and a
node is the sum of its incoming edges. Ops: ``none`` (zero), ``skip_connect`` (identity), ``nor_conv_1x1`` and
``nor_conv_3x3`` (ReLU-Conv-BN), ``avg_pool_3x3`` (stride 1, padding excluded from the average, as PyTorch's
``count_include_pad=False`` and TF's ``'same'`` padding both do).

Which arithmetic: the Raspberry Pi 4 column comes from HW-NAS-Bench (Li et al., ICLR 2021). Its maintainer
says the Raspi 4 latencies were obtained with TensorFlow Lite, and recommends re-writing the models in Keras
to get them (converting from PyTorch is not trivial) (GATECH-EIC/HW-NAS-Bench issue #1, 2021-02-18/19);
no quantization is mentioned there, in the repository's README or
in its code (searched: "tflite", "quantiz", "int8" — no hit; the measurement code for the Raspi 4 is not
published). Full-integer quantization is what an Edge TPU needs, not a CPU; a Keras model converted with
the default ``TFLiteConverter`` settings is float32. So we build float32 TFLite (no optimizations), and say
that this is an inference from the sources, not a quotation.

Zero edges: an edge ``none`` contributes nothing, so it is left out; a node none of whose kept edges leads to
node 3 is dead code that Keras (and the converter) never builds. A node whose incoming edges are all ``none``
is ``x * 0`` of the cell input, and the edges leaving it are computed (see :func:`live_edges` for why). With
``graph="all"`` every edge is built instead, dead ones and ``none`` as ``x * 0`` included, as NAS-Bench-201's own
forward pass computes them: the phones' columns fit that reading better, the Raspberry Pi 4's the live one
(``benchmarks/predictor_nb201.py``).
:func:`output_depends_on_input` is False when no path leads from node 0 to node 3 through non-``none`` edges:
the output is then a constant (341 of the 15,625 cells; 276 of them measured below 1 ms on the Raspberry Pi 4,
the rest 2-34 ms — the source's graphs did not all fold — and all are left out as not input-dependent).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import InvalidArgumentError

log = logging.getLogger(__name__)

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
_EDGE = re.compile(r"^([a-z_0-9]+)~(\d+)$")


@dataclass(frozen=True)
class Edge:
    """One edge of the cell: ``op`` applied to node ``src``, summed into node ``dst``."""

    src: int
    dst: int
    op: str


def parse_cell(arch: str) -> tuple[Edge, ...]:
    """The 6 edges of a NAS-Bench-201 cell string.

    >>> parse_cell("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|skip_connect~1|none~2|")[0]
    Edge(src=0, dst=1, op='nor_conv_3x3')
    """
    if not isinstance(arch, str) or not arch.startswith("|"):
        raise InvalidArgumentError(f"A NAS-Bench-201 cell string looks like '|op~0|+|op~0|op~1|+|...|'. "
                                   f"Received: arch={arch!r}")
    edges = []
    groups = arch.split("+")
    for dst, group in enumerate(groups, start=1):
        items = [t for t in group.strip("|").split("|") if t]
        for item in items:
            m = _EDGE.match(item)
            if not m or m.group(1) not in OPS or int(m.group(2)) >= dst:
                raise InvalidArgumentError(
                    f"Bad edge {item!r} for node {dst}: expected 'op~j' with op in {OPS} and j < {dst}. "
                    f"Received: arch={arch!r}")
            edges.append(Edge(int(m.group(2)), dst, m.group(1)))
    if len(groups) != 3 or len(edges) != 6:
        raise InvalidArgumentError(f"A NAS-Bench-201 cell has 3 nodes after the input and 6 edges. "
                                   f"Received: arch={arch!r}")
    return tuple(edges)


def live_edges(arch: str) -> tuple[Edge, ...]:
    """The non-``none`` edges that lead to node 3 (the cell output): the edges a converted network computes.

    Dead code (an edge whose destination no kept edge leaves from, and which is not node 3) is left out, as
    Keras builds only what the output needs. An edge leaving a node whose incoming edges are all ``none`` is
    kept: that node is a zero tensor computed from the cell input (``x * 0``, as NAS-Bench-201's ``Zero`` op),
    which the converter cannot fold, so the ops on it run. Fitting measured latencies decides between the two
    readings: on the Raspberry Pi 4 column, a linear model on the op counts of the kept edges is within 10 %
    for 63 % of the networks this way, 48 % when such edges are dropped too (their RMS relative error 0.19 vs 0.47).
    """
    edges = parse_cell(arch)
    carrying = [e for e in edges if e.op != "none"]
    needed = {3}
    kept: list[Edge] = []
    for node in (3, 2, 1):
        if node not in needed:
            continue
        for e in carrying:
            if e.dst == node:
                kept.append(e)
                needed.add(e.src)
    return tuple(sorted(kept, key=lambda e: (e.dst, e.src)))


def _reaches_output(arch: str) -> bool:
    live = {0}
    for node in (1, 2, 3):
        if any(e.dst == node and e.op != "none" and e.src in live for e in parse_cell(arch)):
            live.add(node)
    return 3 in live


def output_depends_on_input(arch: str) -> bool:
    """False when the cell output (node 3) is identically zero: no path from node 0 to node 3 through
    non-``none`` edges. Such networks fold to a constant in the converter."""
    return _reaches_output(arch)


GRAPHS = ("live", "all")


def build_keras(arch: str, *, cells_per_stage: int = CELLS_PER_STAGE, seed: int = 0, graph: str = "live"):
    """The network of ``arch`` as an (untrained, randomly initialised) Keras model, input (32, 32, 3).

    Weights do not change the latency of float kernels, so none are trained. Layers of cell ``j`` of stage
    ``i`` are named ``s<i>c<j>_...`` (reduction blocks ``r<i>_...``), so kernels can be traced to their cell.
    ``cells_per_stage`` other than 5 builds the same skeleton with fewer cells (see :func:`network_kernels`).
    ``graph="live"`` builds the edges that reach the cell output (:func:`live_edges`); ``graph="all"`` builds every
    edge as NAS-Bench-201's own forward pass runs it: a node is the sum of all its incoming edges, ``none`` being
    ``x * 0`` of its source (their ``Zero`` op), so dead edges are computed too.

    >>> model = build_keras("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")  # doctest: +SKIP
    """
    import keras
    from keras import layers

    if not output_depends_on_input(arch):
        raise InvalidArgumentError(f"This cell's output does not depend on its input (no path from node 0 to node 3 "
                                   f"through non-'none' edges); the network is a constant. Received: arch={arch!r}")
    if not isinstance(cells_per_stage, int) or cells_per_stage < 1:
        raise InvalidArgumentError(f"cells_per_stage must be an integer >= 1. Received: cells_per_stage={cells_per_stage!r}")
    if graph not in GRAPHS:
        raise InvalidArgumentError(f"graph must be one of {', '.join(GRAPHS)}. Received: graph={graph!r}")
    edges = live_edges(arch) if graph == "live" else parse_cell(arch)
    keras.utils.set_random_seed(seed)
    counter = iter(range(100_000))
    prefix = [""]

    def name(kind: str) -> str:
        return f"{prefix[0]}{kind}_{next(counter)}"

    def relu_conv_bn(x, c_out: int, k: int, stride: int = 1):
        x = layers.ReLU(name=name("relu"))(x)
        x = layers.Conv2D(c_out, k, strides=stride, padding="same", use_bias=False, name=name("conv"))(x)
        return layers.BatchNormalization(name=name("bn"))(x)

    def cell(x, c: int):
        nodes = {0: x}
        for node in (1, 2, 3):
            if graph == "live" and node not in {e.dst for e in edges} and any(e.src == node for e in edges):
                # All incoming edges 'none': a zero tensor computed from the cell input (x * 0), not a constant.
                nodes[node] = layers.Rescaling(0.0, name=name("zero"))(x)
                continue
            terms = []
            for e in edges:
                if e.dst != node:
                    continue
                src = nodes[e.src]
                if e.op == "none":  # only with graph="all": their Zero op, x * 0
                    terms.append(layers.Rescaling(0.0, name=name("zero"))(src))
                elif e.op == "skip_connect":
                    terms.append(src)
                elif e.op == "nor_conv_1x1":
                    terms.append(relu_conv_bn(src, c, 1))
                elif e.op == "nor_conv_3x3":
                    terms.append(relu_conv_bn(src, c, 3))
                elif e.op == "avg_pool_3x3":
                    terms.append(layers.AveragePooling2D(3, strides=1, padding="same", name=name("pool"))(src))
            if terms:
                nodes[node] = terms[0] if len(terms) == 1 else layers.Add(name=name("add"))(terms)
        return nodes[3]

    def reduction(x, c_out: int):
        a = relu_conv_bn(x, c_out, 3, stride=2)
        b = relu_conv_bn(a, c_out, 3)
        r = layers.AveragePooling2D(2, strides=2, name=name("pool"))(x)
        r = layers.Conv2D(c_out, 1, use_bias=False, name=name("conv"))(r)
        return layers.Add(name=name("add"))([b, r])

    inputs = keras.Input(INPUT_SHAPE, batch_size=1, name="image")
    x = layers.Conv2D(CHANNELS[0], 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    for stage, c in enumerate(CHANNELS):
        if stage:
            prefix[0] = f"r{stage}_"
            x = reduction(x, c)
        for j in range(cells_per_stage):
            prefix[0] = f"s{stage}c{j}_"
            x = cell(x, c)
        prefix[0] = ""
    x = layers.BatchNormalization(name="last_bn")(x)
    x = layers.ReLU(name="last_relu")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(NUM_CLASSES, name="classifier")(x)
    return keras.Model(inputs, outputs, name="nb201")


def tflite_bytes(arch: str, *, cells_per_stage: int = CELLS_PER_STAGE, seed: int = 0, graph: str = "live") -> bytes:
    """``arch`` as a float32 ``.tflite`` (the converter's default settings: no quantization), as bytes."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from toolkit.convert.converter import _quiet

    model = build_keras(arch, cells_per_stage=cells_per_stage, seed=seed, graph=graph)
    with _quiet():
        # Weights frozen into constants first, as from_keras_model does (without its SavedModel round trip):
        # otherwise they stay resource variables (VAR_HANDLE / READ_VARIABLE kernels).
        fn = tf.function(lambda x: model(x, training=False))
        frozen = convert_variables_to_constants_v2(
            fn.get_concrete_function(tf.TensorSpec((1, *INPUT_SHAPE), tf.float32)))
        return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


def build_tflite(arch: str, path: str | Path, *, cells_per_stage: int = CELLS_PER_STAGE, seed: int = 0) -> Path:
    """Build ``arch`` and write it as a float32 ``.tflite`` to ``path``."""
    from toolkit import safe_io

    data = tflite_bytes(arch, cells_per_stage=cells_per_stage, seed=seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe_io.write_bytes(path, data)
    return path


def _owner(kernel_name: str) -> str:
    """``s<i>c<j>`` / ``r<i>`` / ``""`` (stem and head): the layer whose op a kernel computes, from a TFLite name
    like 'nb201_1/s0c1_relu_3_1/Relu;nb201_1/s0c0_conv_1_1/convolution'. A fused kernel lists the ops fused into
    it from the last (the activation the converter folded in) to the first (the computing op): the last part names
    the owner, so the ReLU that starts a cell's edges, fused into the op before the cell, stays with that op."""
    last = kernel_name.split(";")[-1]
    layer = last.split("/")[1] if "/" in last else last
    m = re.match(r"^(s\d+c\d+|r\d+)_", layer)
    return m.group(1) if m else ""


PROBE_CELLS = 2


def compose_kernels(probe: tuple, cells_per_stage: int = CELLS_PER_STAGE) -> tuple:
    """Kernels of the ``cells_per_stage``-cell network from those of the probe with ``PROBE_CELLS`` cells per
    stage: the probe's kernels, then more copies of each stage's first cell's kernels (re-indexed, renamed).

    A cell's kernels depend on what follows it, not on what precedes it: the converter merges the identical ReLUs
    that start a cell's edges into one and fuses it into the op before the cell, which owns the fused kernel (see
    :func:`_owner`). The probe's first cell is followed by a cell, as every cell but the last of the network's
    stage; its last cell is followed by the reduction block or the head, as the network's last."""
    from dataclasses import replace

    out = list(probe)
    for stage in range(len(CHANNELS)):
        cell = [k for k in probe if _owner(k.name) == f"s{stage}c0"]
        for j in range(PROBE_CELLS, cells_per_stage):
            out += [replace(k, index=len(out) + n, name=k.name.replace(f"s{stage}c0_", f"s{stage}c{j}_"))
                    for n, k in enumerate(cell)]
    return tuple(out)


def network_kernels(arch: str, *, cache_dir: str | Path | None = None, full: bool = False,
                    graph: str = "live") -> tuple:
    """Kernels of the NAS-Bench-201 network ``arch`` (float32 TFLite), read from the converted file.

    The default converts the same skeleton with two cells per stage (:data:`PROBE_CELLS`; under half the
    operators, so about twice as fast to convert) and adds three more copies of each stage's first cell (see
    :func:`compose_kernels`): the cells of a stage are copies of one cell on the same shapes, so their kernels are
    equal; ``full=True`` converts the whole network instead (tests check that both give the same kernels).
    ``cache_dir`` keeps one JSON per arch and ``graph`` (see :func:`build_keras`)."""
    import hashlib
    import json

    from toolkit.predict.kernels import Kernel, kernels_from_bytes

    key = hashlib.sha256(f"{arch}|full={full}|graph={graph}|v3".encode()).hexdigest()[:20]
    cached = Path(cache_dir) / f"nb201_{key}.json" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        try:
            return tuple(Kernel.from_dict(d) for d in json.loads(cached.read_text())["kernels"])
        except (ValueError, KeyError, TypeError):
            log.warning("Ignoring unreadable kernel cache %s", cached)
    if full:
        kernels = kernels_from_bytes(tflite_bytes(arch, graph=graph), name=arch)
    else:
        kernels = compose_kernels(kernels_from_bytes(tflite_bytes(arch, cells_per_stage=PROBE_CELLS, graph=graph),
                                                      name=arch))
    if cached is not None:
        from toolkit import safe_io

        cached.parent.mkdir(parents=True, exist_ok=True)
        safe_io.write_bytes(cached, json.dumps({"arch": arch, "full": full, "graph": graph,
                                               "kernels": [k.to_dict() for k in kernels]}).encode())
    return kernels
