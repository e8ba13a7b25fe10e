"""Per-op timings of a ``.tflite`` model run in LiteRT on this machine, from LiteRT's own op profiler.

What is measured: LiteRT's runtime (``libLiteRt.so`` in the ``ai-edge-litert`` wheel) has TFLite's op profiler
built in: a ``CompiledModel`` created with the runtime option ``enable_profiling = true`` records one event per
executed node (``OPERATOR_INVOKE_EVENT``, begin/end on the steady clock, microsecond resolution) and one per
``Invoke``. The wheel's Python API does not expose it, so this module drives LiteRT's C API with :mod:`ctypes`
(create environment, model, options with the runtime and CPU option payloads, compiled model, tensor buffers;
run; read the profiler's events). The numbers are the kernels' own wall-clock times inside the runtime, the same
events TFLite's ``benchmark_model --enable_op_profiling`` summarises; nothing is estimated or apportioned.

Two kernel sets, as the interpreter runs them:

- ``use_xnnpack=False``: TFLite's builtin kernels (what ``--use_xnnpack=false`` / the host target's ``cpu``
  delegate run). One row per TFLite node; ``name`` is the node's output tensor name(s), which carry the Keras
  layer names (``functional_1/s1b0_conv1_1/convolution``). Exact.
- ``use_xnnpack=True``: the graph runs inside the XNNPACK delegate; the rows are XNNPACK's *internal* operators
  (``DELEGATE_OPERATOR_INVOKE_EVENT``, e.g. ``Convolution (NHWC, QC8) IGEMM``), timed by XNNPACK. XNNPACK numbers
  its own operators, not TFLite nodes, so each is given the name of the TFLite node it implements by walking both
  lists in execution order and pairing operators of the same kind (``Convolution`` -> ``CONV_2D``...); an operator
  XNNPACK inserted (e.g. the ``Static Reshape`` before a fully-connected layer) pairs with nothing and keeps an
  empty name. Nodes XNNPACK does not take run on builtin kernels and are timed as nodes, in their place in the
  run. ``name_match`` says how names were found ("node" or "order"). XNNPACK reports each operator's time in
  whole microseconds, so an operator under 1 us reads 0 and the operators' sum falls short of the run's.

The profiled runs are separate from a caller's own timed runs (profiling adds a little per-op overhead), so
per-op times sum to about, not exactly, an un-profiled run's latency. A profiled run whose ``Invoke`` took over
``DISTURBED_FACTOR`` x the median was preempted by another process; it is left out of every row (counted in
``OpProfile.disturbed_runs``), since one such run would put its milliseconds on a single operator. Imports NumPy and LiteRT, never TensorFlow.

>>> p = profile_ops("model.tflite", runs=20)                     # doctest: +SKIP
>>> [(o.node_type, round(o.avg_ms, 3), o.name[:30]) for o in p.ops][:1]   # doctest: +SKIP
[('CONV_2D', 0.032, 'functional_1/stem_relu_1/Relu;f')]
"""
from __future__ import annotations

import contextlib
import ctypes as C
import logging
import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from android_harness.errors import BenchmarkError

log = logging.getLogger(__name__)

# LiteRtProfilerEventType (litert/c/litert_profiler_event.h)
_DEFAULT_EVENT = 1
_OPERATOR_INVOKE_EVENT = 1 << 1
_DELEGATE_OPERATOR_INVOKE_EVENT = 1 << 2
_DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT = 1 << 3
DISTURBED_FACTOR = 2.0  # a profiled run whose Invoke took longer than this x the median was preempted: left out
_HW_CPU = 1  # kLiteRtHwAcceleratorCpu
_LOCK_WRITE = 1  # kLiteRtTensorBufferLockModeWrite
_FLOAT32 = 1  # kLiteRtElementTypeFloat32 (= kTfLiteFloat32)
_RANKED_TENSOR_TYPE_BYTES = 72  # sizeof(LiteRtRankedTensorType): element type, then LiteRtLayout
_P = C.c_void_p

# XNNPACK operator name (prefix) -> the TFLite builtin ops it implements.
_XNNPACK_KINDS = (
    ("Convolution", ("CONV_2D", "DEPTHWISE_CONV_2D")),
    ("Deconvolution", ("TRANSPOSE_CONV",)),
    ("Fully Connected", ("FULLY_CONNECTED",)),
    ("Add", ("ADD",)), ("Multiply", ("MUL",)), ("Subtract", ("SUB",)), ("Divide", ("DIV",)),
    ("Mean", ("MEAN",)), ("Sum", ("SUM",)),
    ("Max Pooling", ("MAX_POOL_2D",)), ("Average Pooling", ("AVERAGE_POOL_2D",)),
    ("Global Average Pooling", ("MEAN", "AVERAGE_POOL_2D")),
    ("Softmax", ("SOFTMAX",)), ("Clamp", ("RELU", "RELU6", "RELU_N1_TO_1")),
    ("Constant Pad", ("PAD", "PADV2")), ("Copy", ("RESHAPE", "SQUEEZE")),
    ("Static Reshape", ("RESHAPE", "SQUEEZE")), ("Concatenate", ("CONCATENATION",)),
    ("Transpose", ("TRANSPOSE",)), ("Convert", ("QUANTIZE", "DEQUANTIZE")),
    ("Hardswish", ("HARD_SWISH",)), ("Sigmoid", ("LOGISTIC",)), ("Tanh", ("TANH",)),
    ("Leaky ReLU", ("LEAKY_RELU",)), ("Resize Bilinear", ("RESIZE_BILINEAR",)),
)

_MOVES = ("Static Reshape", "Copy", "Transpose", "Convert", "Clamp")  # what XNNPACK may add to a node's work


class _Mem(C.Structure):
    _fields_ = [("total_allocated_bytes", C.c_size_t), ("in_use_allocated_bytes", C.c_size_t),
                ("private_footprint_bytes", C.c_size_t)]


class _Event(C.Structure):
    """ProfiledEventData (litert/c/litert_profiler_event.h)."""

    _fields_ = [("tag", C.c_char_p), ("event_type", C.c_int), ("start_timestamp_us", C.c_uint64),
                ("elapsed_time_us", C.c_uint64), ("begin_mem_usage", _Mem), ("end_mem_usage", _Mem),
                ("event_metadata1", C.c_uint64), ("event_metadata2", C.c_uint64), ("event_source", C.c_int)]


@dataclass(frozen=True)
class OpTiming:
    """One executed operator, over all profiled runs. Times in ms.

    ``node_index``: the TFLite node this operator is (builtin kernels) or implements (an XNNPACK operator paired
    with it), -1 for an XNNPACK operator that pairs with none. ``name``: that node's output tensor name(s),
    ``;``-joined when the converter fused layers ("" when unpaired). ``start_ms``: mean offset of the operator's
    start from the start of its run (0 for XNNPACK operators, whose events carry no start time).
    """

    node_index: int
    node_type: str
    name: str
    first_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float
    start_ms: float
    times_called: int
    order: int = 0  # position in the run

    @property
    def label(self) -> str:
        """``[<name>]:<position in the run>``, as benchmark_model names a row (the op type when unnamed)."""
        return f"[{self.name or self.node_type}]:{self.order}"


@dataclass(frozen=True)
class OpProfile:
    """Per-op timings of ``runs`` profiled runs (``disturbed_runs`` more were profiled and left out).
    ``invoke_ms``: each of those runs' whole ``Invoke``, the interpreter's own profiler event (the wall clock around
    the run where LiteRT recorded none). ``kernels``: ``builtin`` or ``xnnpack``."""

    model_path: str
    ops: tuple[OpTiming, ...]
    runs: int
    invoke_ms: tuple[float, ...]
    kernels: str
    num_threads: int
    name_match: str  # "node" (names are the TFLite nodes') | "order" (XNNPACK operators paired by kind and order)
    disturbed_runs: int = 0  # profiled runs left out: their Invoke took over DISTURBED_FACTOR x the median

    @property
    def total_op_ms(self) -> float:
        """Sum of the operators' mean times: one run's time spent in kernels."""
        return float(sum(o.avg_ms for o in self.ops))

    @property
    def invoke_avg_ms(self) -> float:
        return float(np.mean(self.invoke_ms)) if self.invoke_ms else 0.0


MIN_LITERT = (2, 2)  # the C API used here (environment-first model loading, TOML option payloads, profiler)


def _lib() -> C.CDLL:
    import ai_edge_litert
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("ai-edge-litert")
    except PackageNotFoundError:
        installed = "0"
    parts = tuple(int(p) for p in installed.split(".")[:2] if p.isdigit())
    if parts < MIN_LITERT:
        # Older runtimes have other C signatures for the same names: calling them would crash, not fail.
        raise BenchmarkError(f"Per-op profiling needs ai-edge-litert >= {'.'.join(map(str, MIN_LITERT))}. "
                             f"Received: ai-edge-litert {installed}; pip install -U ai-edge-litert")
    path = Path(ai_edge_litert.__file__).resolve().parent / "libLiteRt.so"
    if not path.exists():
        raise BenchmarkError(f"LiteRT's runtime library is missing: {path}. Reinstall ai-edge-litert (>= 2.2).")
    lib = C.CDLL(str(path))
    for fn in ("LiteRtCreateEnvironment", "LiteRtCreateModelFromFile", "LiteRtCreateOptions",
               "LiteRtSetOptionsHardwareAccelerators", "LiteRtCreateOpaqueOptions", "LiteRtAddOpaqueOptions",
               "LiteRtCreateCompiledModel", "LiteRtGetModelSignature", "LiteRtGetNumSignatureInputs",
               "LiteRtGetNumSignatureOutputs", "LiteRtGetSignatureInputTensorByIndex",
               "LiteRtGetSignatureOutputTensorByIndex", "LiteRtGetRankedTensorType",
               "LiteRtGetCompiledModelInputBufferRequirements", "LiteRtGetCompiledModelOutputBufferRequirements",
               "LiteRtCreateManagedTensorBufferFromRequirements", "LiteRtGetTensorBufferSize",
               "LiteRtLockTensorBuffer", "LiteRtUnlockTensorBuffer", "LiteRtRunCompiledModel",
               "LiteRtCompiledModelGetProfiler", "LiteRtStartProfiler", "LiteRtStopProfiler",
               "LiteRtResetProfiler", "LiteRtGetNumProfilerEvents", "LiteRtGetProfilerEvents"):
        getattr(lib, fn).restype = C.c_int
    lib.LiteRtCreateOpaqueOptions.argtypes = [C.c_char_p, _P, _P, C.POINTER(_P)]
    lib.LiteRtCreateModelFromFile.argtypes = [_P, C.c_char_p, C.POINTER(_P)]
    lib.LiteRtRunCompiledModel.argtypes = [_P, C.c_size_t, C.c_size_t, C.POINTER(_P), C.c_size_t, C.POINTER(_P)]
    for fn in ("LiteRtDestroyTensorBuffer", "LiteRtDestroyCompiledModel", "LiteRtDestroyOptions",
               "LiteRtDestroyModel", "LiteRtDestroyEnvironment"):
        getattr(lib, fn).restype = None
        getattr(lib, fn).argtypes = [_P]
    return lib


@contextlib.contextmanager
def _captured_stderr(lines: list[str]):
    """LiteRT's C++ runtime logs to fd 2 (INFO lines on every environment); keep them out of the caller's output
    (the virtual phone's benchmark_model prints to the shell) and hand them to logging / error messages."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())
            for line in lines:
                log.debug("litert: %s", line)


def _opaque_toml(lib, libc, options, identifier: str, toml: str) -> None:
    libc.strdup.restype = _P
    libc.strdup.argtypes = [C.c_char_p]
    payload = libc.strdup(toml.encode())  # owned (and freed) by LiteRT after this
    opaque = _P()
    _check(lib.LiteRtCreateOpaqueOptions(identifier.encode(), payload, C.cast(libc.free, _P), C.byref(opaque)),
           f"create the {identifier} options")
    _check(lib.LiteRtAddOpaqueOptions(options, opaque), f"add the {identifier} options")


def _check(status: int, what: str) -> None:
    if status != 0:
        raise BenchmarkError(f"LiteRT could not {what} (LiteRtStatus {status}).")


def _node_names(model_path: str) -> list[tuple[str, str]]:
    """(builtin op name, output tensor names) of each TFLite node in execution order, from the Python interpreter
    with builtin kernels only, whose node numbering is the one LiteRT's events carry."""
    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(model_path=model_path,
                            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    nodes = []
    for op in it._get_ops_details():  # noqa: SLF001 - the only API that lists nodes with their outputs
        names = [it._interpreter.TensorName(int(i), 0) for i in op["outputs"] if i >= 0]  # noqa: SLF001
        nodes.append((str(op["op_name"]), ";".join(names)))
    return nodes


def _kinds(xnn_op: str) -> tuple[str, ...]:
    return next((k for prefix, k in sorted(_XNNPACK_KINDS, key=lambda p: -len(p[0])) if xnn_op.startswith(prefix)), ())


def _align(xnn_ops: list[str], node_ids: list[int], nodes: list[tuple[str, str]]) -> list[int | None]:
    """Pair XNNPACK operators with TFLite nodes, both in execution order, so that as many as possible pair with a
    node of a kind they implement (a weighted longest-common-subsequence alignment: an operator XNNPACK inserted
    stays unpaired instead of pulling the later ones out of step). XNNPACK inserts only data-movement operators
    (reshape, copy, transpose, convert, clamp), never compute, so a compute pairing weighs more than those.
    Returns, per operator, a node index or None."""
    n, m = len(xnn_ops), len(node_ids)
    ok = [[nodes[node_ids[j]][0] in _kinds(xnn_ops[i]) for j in range(m)] for i in range(n)]
    weight = [1 if xnn_ops[i].startswith(_MOVES) else 2 for i in range(n)]
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + weight[i] if ok[i][j] else 0)
    out: list[int | None] = []
    i = j = 0
    while i < n:
        if j < m and ok[i][j] and best[i][j] == best[i + 1][j + 1] + weight[i]:
            out.append(node_ids[j])
            i, j = i + 1, j + 1
        elif j < m and best[i][j] == best[i][j + 1]:
            j += 1
        else:
            out.append(None)
            i += 1
    return out


def profile_ops(model_path: str | Path, num_threads: int = 1, use_xnnpack: bool = False, runs: int = 50,
                warmup_runs: int = 1, seed: int = 0) -> OpProfile:
    """Run ``model_path`` ``warmup_runs`` + ``runs`` times in LiteRT with its op profiler on; return per-op times.

    Inputs are random (uniform [0, 1) for float inputs, random bytes otherwise), as benchmark_model's are.
    Raises :class:`~android_harness.errors.BenchmarkError` when LiteRT cannot load or run the model.
    """
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be >= 1. Received: num_threads={num_threads!r}")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be >= 1. Received: runs={runs!r}")
    path = str(Path(model_path).resolve())
    if not Path(path).is_file():
        raise BenchmarkError(f"No model file at {path!r}; pass the path of a .tflite file.")
    try:
        nodes = _node_names(path)
    except (ValueError, RuntimeError) as exc:
        raise BenchmarkError(f"LiteRT could not load {path!r} ({exc}); pass a valid .tflite file.") from None
    lib, libc = _lib(), C.CDLL(None)
    stderr: list[str] = []
    handles: dict[str, object] = {}
    buffers: list[_P] = []
    try:
        with _captured_stderr(stderr):
            try:
                events, invoke_wall_ms = _run_profiled(lib, libc, path, num_threads, use_xnnpack, runs,
                                                       warmup_runs, seed, handles, buffers)
            finally:
                for b in buffers:
                    lib.LiteRtDestroyTensorBuffer(b)
                for key, fn in (("compiled", "LiteRtDestroyCompiledModel"), ("options", "LiteRtDestroyOptions"),
                                ("model", "LiteRtDestroyModel"), ("env", "LiteRtDestroyEnvironment")):
                    if handles.get(key):
                        getattr(lib, fn)(handles[key])
    except BenchmarkError as exc:
        detail = next((l for l in reversed(stderr) if "ERROR" in l), "")
        raise BenchmarkError(f"{exc} Model: {path!r}.{' LiteRT said: ' + detail if detail else ''}") from None
    return _summarise(path, events, invoke_wall_ms, nodes, use_xnnpack, num_threads, runs)


def _run_profiled(lib, libc, path, num_threads, use_xnnpack, runs, warmup_runs, seed, handles, buffers):
    env, model, options, compiled = _P(), _P(), _P(), _P()
    _check(lib.LiteRtCreateEnvironment(0, None, C.byref(env)), "create an environment")
    handles["env"] = env
    _check(lib.LiteRtCreateModelFromFile(env, path.encode(), C.byref(model)), "load the model")
    handles["model"] = model
    _check(lib.LiteRtCreateOptions(C.byref(options)), "create options")
    handles["options"] = options
    _check(lib.LiteRtSetOptionsHardwareAccelerators(options, _HW_CPU), "select the CPU")
    _opaque_toml(lib, libc, options, "runtime_options_string", "enable_profiling = true\n")
    mode = "delegate" if use_xnnpack else "builtin"
    _opaque_toml(lib, libc, options, "xnnpack", f'kernel_mode = "{mode}"\nnum_threads = {num_threads}\n')
    _check(lib.LiteRtCreateCompiledModel(env, model, options, C.byref(compiled)), "compile the model")
    handles["compiled"] = compiled
    signature = _P()
    _check(lib.LiteRtGetModelSignature(model, C.c_size_t(0), C.byref(signature)), "read the model's signature")
    rng = np.random.default_rng(seed)
    arrays = {}
    for kind in ("Input", "Output"):
        count = C.c_size_t()
        _check(getattr(lib, f"LiteRtGetNumSignature{kind}s")(signature, C.byref(count)), f"count {kind.lower()}s")
        made = []
        for i in range(count.value):
            tensor = _P()
            _check(getattr(lib, f"LiteRtGetSignature{kind}TensorByIndex")(signature, C.c_size_t(i), C.byref(tensor)),
                   f"read {kind.lower()} {i}")
            ttype = C.create_string_buffer(_RANKED_TENSOR_TYPE_BYTES * 2)
            _check(lib.LiteRtGetRankedTensorType(tensor, ttype), f"read the type of {kind.lower()} {i}")
            rank = struct.unpack_from("<I", ttype.raw, 4)[0] & 0x7F
            for d in range(rank):  # a dynamic (batch) dimension runs at 1, as the interpreter allocates it
                if struct.unpack_from("<i", ttype.raw, 8 + 4 * d)[0] < 0:
                    struct.pack_into("<i", ttype, 8 + 4 * d, 1)
            req, buf = _P(), _P()
            _check(getattr(lib, f"LiteRtGetCompiledModel{kind}BufferRequirements")(
                compiled, C.c_size_t(0), C.c_size_t(i), C.byref(req)), f"size {kind.lower()} {i}")
            _check(lib.LiteRtCreateManagedTensorBufferFromRequirements(env, ttype, req, C.byref(buf)),
                   f"allocate {kind.lower()} {i}")
            buffers.append(buf)
            made.append(buf)
            if kind == "Input":
                _fill(lib, buf, struct.unpack_from("<i", ttype.raw, 0)[0], rng)
        arrays[kind] = ((_P * max(len(made), 1))(*made), len(made))
    (ins, n_in), (outs, n_out) = arrays["Input"], arrays["Output"]
    profiler = _P()
    _check(lib.LiteRtCompiledModelGetProfiler(compiled, C.byref(profiler)), "get the op profiler")
    if not profiler:
        raise BenchmarkError("LiteRT created no op profiler (the runtime option enable_profiling was ignored).")

    def run() -> None:
        _check(lib.LiteRtRunCompiledModel(compiled, C.c_size_t(0), C.c_size_t(n_in), ins, C.c_size_t(n_out), outs),
               "run the model")

    for _ in range(warmup_runs):
        run()
    _check(lib.LiteRtResetProfiler(profiler), "reset the profiler")
    _check(lib.LiteRtStartProfiler(profiler), "start the profiler")
    wall = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        wall.append((time.perf_counter() - t0) * 1e3)
    _check(lib.LiteRtStopProfiler(profiler), "stop the profiler")
    n = C.c_int()
    _check(lib.LiteRtGetNumProfilerEvents(profiler, C.byref(n)), "count the profiler's events")
    events = (_Event * max(n.value, 1))()
    if n.value:
        _check(lib.LiteRtGetProfilerEvents(profiler, n, events), "read the profiler's events")
    return [(e.tag.decode("utf-8", "replace") if e.tag else "", e.event_type, e.start_timestamp_us,
             e.elapsed_time_us, e.event_metadata1) for e in events[:n.value]], wall


def _fill(lib, buf, element_type: int, rng: np.random.Generator) -> None:
    size = C.c_size_t()
    _check(lib.LiteRtGetTensorBufferSize(buf, C.byref(size)), "size an input buffer")
    addr = _P()
    _check(lib.LiteRtLockTensorBuffer(buf, C.byref(addr), _LOCK_WRITE), "lock an input buffer")
    try:
        if element_type == _FLOAT32:
            data = rng.random(size.value // 4, dtype=np.float32).tobytes()
        else:
            data = rng.integers(0, 256, size.value, dtype=np.uint8).tobytes()
        C.memmove(addr, data, len(data))
    finally:
        lib.LiteRtUnlockTensorBuffer(buf)


def _summarise(path, events, invoke_wall_ms, nodes, use_xnnpack, num_threads, runs) -> OpProfile:
    # One run = the events from one "Invoke" to the next, in the order the runtime recorded them: TFLite nodes run
    # by builtin kernels (node events, indexed by TFLite node) and, under XNNPACK, the operators of each delegated
    # partition (delegate-op events, numbered by XNNPACK within the partition). The delegate's own kernel node is
    # left out where its operators are listed, so no time is counted twice.
    delegate_types = (_DELEGATE_OPERATOR_INVOKE_EVENT, _DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT)
    runs_seen: list[list[tuple]] = []
    invokes: list[float] = []
    run_start = 0
    for tag, etype, start_us, elapsed_us, index in events:
        if tag == "Invoke" and etype == _DEFAULT_EVENT:
            runs_seen.append([])
            invokes.append(elapsed_us / 1e3)
            run_start = start_us
        elif runs_seen and (etype == _OPERATOR_INVOKE_EVENT or (use_xnnpack and etype in delegate_types)):
            runs_seen[-1].append((tag, etype, int(index), elapsed_us / 1e3,
                                  max(start_us - run_start, 0) / 1e3 if start_us else 0.0))
    if use_xnnpack and any(e[1] in delegate_types for r in runs_seen for e in r):
        runs_seen = [[e for e in r if not (e[1] == _OPERATOR_INVOKE_EVENT and "delegate" in e[0].lower())]
                     for r in runs_seen]
    if len(invokes) != len(invoke_wall_ms):  # no Invoke event per run: the wall clock around each run instead
        invokes = list(invoke_wall_ms)[:len(runs_seen)]
    records = [(t, r) for t, r in zip(invokes, runs_seen) if r]
    if not records:
        raise BenchmarkError(f"LiteRT's op profiler recorded no operator events for {path!r} "
                             f"(kernels={'xnnpack' if use_xnnpack else 'builtin'}).")
    template = [(e[0], e[1], e[2]) for e in records[0][1]]
    records = [(t, r) for t, r in records if [(e[0], e[1], e[2]) for e in r] == template]  # every run, in practice
    # A run another process preempted (this machine is shared) would put milliseconds on whichever operator was
    # running; such runs are left out of every row alike, so the rows still add up to a run.
    limit = DISTURBED_FACTOR * float(np.median([t for t, _ in records]))
    kept = [(t, r) for t, r in records if t <= limit]
    node_of = _name_rows(template, nodes)
    ops = []
    for pos, (tag, etype, index) in enumerate(template):
        ms = np.array([r[pos][3] for _, r in kept])
        node = node_of[pos]
        ops.append(OpTiming(node_index=node if node is not None else -1, node_type=tag or
                            (nodes[node][0] if node is not None else ""), name=nodes[node][1] if node is not None
                            else "", first_ms=float(ms[0]), avg_ms=float(ms.mean()), min_ms=float(ms.min()),
                            max_ms=float(ms.max()), start_ms=float(np.mean([r[pos][4] for _, r in kept])),
                            times_called=int(ms.size), order=pos))
    paired = any(e[1] != _OPERATOR_INVOKE_EVENT for e in template)
    return OpProfile(model_path=path, ops=tuple(ops), runs=len(kept), invoke_ms=tuple(t for t, _ in kept),
                     kernels="xnnpack" if use_xnnpack else "builtin", num_threads=num_threads,
                     name_match="order" if paired else "node", disturbed_runs=runs - len(kept))


def _name_rows(template: list[tuple[str, int, int]], nodes: list[tuple[str, str]]) -> list[int | None]:
    """The TFLite node of each row: a node event names its node; the XNNPACK operators between two such anchors
    are aligned with the TFLite nodes between them (:func:`_align`)."""
    out: list[int | None] = [None] * len(template)
    anchors = [(pos, idx) for pos, (_, etype, idx) in enumerate(template) if etype == _OPERATOR_INVOKE_EVENT]
    for pos, idx in anchors:
        out[pos] = idx if 0 <= idx < len(nodes) else None
    bounds = [(-1, -1)] + anchors + [(len(template), len(nodes))]
    for (p0, n0), (p1, n1) in zip(bounds, bounds[1:]):
        rows = list(range(p0 + 1, p1))
        if rows:
            ids = list(range(max(n0 + 1, 0), min(n1, len(nodes))))
            for pos, node in zip(rows, _align([template[r][0] for r in rows], ids, nodes)):
                out[pos] = node
    return out


def benchmark_tables(profile: OpProfile) -> list[str]:
    """The op-profiling section benchmark_model prints after its regular runs, in its layout (tab-separated
    columns; node names ``[<output tensor name>]:<node index>``), from ``profile``'s real timings."""
    header = "\t             [node type]\t          [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]" \
             "\t[times called]\t[Name]"
    total = profile.total_op_ms or 1.0
    calls_per_run = {o.order: max(o.times_called // max(profile.runs, 1), 1) for o in profile.ops}

    def row(o: OpTiming, cdf: float) -> str:
        return (f"\t{o.node_type:>24}\t{o.start_ms:17.3f}\t{o.first_ms:9.3f}\t{o.avg_ms:9.3f}\t"
                f"{100 * o.avg_ms / total:7.3f}%\t{cdf:7.3f}%\t{0.0:10.3f}\t{calls_per_run[o.order]:9d}\t{o.label}")

    def table(title: str, ops) -> list[str]:
        out, cdf = [f"============================== {title} ==============================", header], 0.0
        for o in ops:
            cdf += 100 * o.avg_ms / total
            out.append(row(o, cdf))
        return out + [""]

    lines = ["Operator-wise Profiling Info for Regular Benchmark Runs:"]
    lines += table("Run Order", profile.ops)
    lines += table("Top by Computation Time", sorted(profile.ops, key=lambda o: -o.avg_ms)[:10])
    lines.append(f"Number of nodes executed: {len(profile.ops)}")
    lines.append("============================== Summary by node type ==============================")
    lines.append("\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t"
                 "[times called]")
    by_type: dict[str, list[OpTiming]] = {}
    for o in profile.ops:
        by_type.setdefault(o.node_type, []).append(o)
    cdf = 0.0
    for node_type, ops in sorted(by_type.items(), key=lambda kv: -sum(o.avg_ms for o in kv[1])):
        ms = sum(o.avg_ms for o in ops)
        cdf += 100 * ms / total
        lines.append(f"\t{node_type:>24}\t{len(ops):9d}\t{ms:10.3f}\t{100 * ms / total:10.3f}%\t{cdf:10.3f}%\t"
                     f"{0.0:10.3f}\t{sum(calls_per_run[o.order] for o in ops):9d}")
    lines.append("")
    inv = np.array(profile.invoke_ms) * 1e3
    lines.append(f"Timings (microseconds): count={inv.size} first={int(inv[0])} curr={int(inv[-1])} "
                 f"min={int(inv.min())} max={int(inv.max())} avg={inv.mean():g} std={int(inv.std())}")
    lines.append("Memory (bytes): count=0")
    lines.append(f"{len(profile.ops)} nodes observed")
    return lines
