"""benchmark_model for the virtual phone: the real tool's flags and output, LiteRT on the host underneath.

Timings are real (this host's CPU running the model in LiteRT); the phone's *power* while it runs comes
from the profile's power model (see :mod:`android_harness.virtual.power`). ``--enable_op_profiling=true`` prints
the real tool's op-profiling tables with per-op times measured by LiteRT's own op profiler on this host (see
:mod:`android_harness.litert_profile`), over as many extra profiled runs as ``--num_runs`` asks, with the same
kernels (``--use_xnnpack``) and threads; node names are the TFLite nodes' output tensor names.
"""
from __future__ import annotations

import array
import resource
import sys
import time

import numpy as np

FLAGS = {"graph": "", "num_threads": "-1", "warmup_runs": "1", "num_runs": "50", "min_secs": "1",
         "max_secs": "150", "warmup_min_secs": "0.5", "run_delay": "-1", "use_xnnpack": "true",
         "use_gpu": "false", "use_nnapi": "false", "enable_op_profiling": "false",
         "report_peak_memory_footprint": "false", "op_profiling_output_mode": "stdout",
         "memory_footprint_check_interval_ms": "50", "verbose": "false"}


def _out(line: str = "") -> None:
    print(f"INFO: {line}" if line else "", flush=True)


def _err(line: str) -> None:
    print(f"ERROR: {line}", flush=True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    """VmHWM: peak resident memory since exec (ru_maxrss would count the forking shell's pages too)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _phase(interpreter, min_runs: int, min_secs: float, max_secs: float) -> np.ndarray:
    """Inference times (us) of runs until at least ``min_runs`` and ``min_secs``, or ``max_secs``.

    The loop is as lean as Python allows (two clock reads per run, names bound once, the run count checked in a
    loop of its own): the real tool's C++ loop costs well under a microsecond per run, and every microsecond
    this loop spends outside ``invoke`` is time the benchmark runs without counting it. Measured on a 4 us
    model: four clock reads and a count check per run left 10 % of ``min_secs`` uncounted, this loop 5.5 %.
    """
    clock, invoke = time.perf_counter_ns, interpreter.invoke
    samples = array.array("q")  # ns; read by numpy without a copy (a list of 2M ints takes 0.1 s to convert)
    append = samples.append
    start = clock()
    min_end, max_end = start + int(min_secs * 1e9), start + int(max_secs * 1e9)
    end = start
    for _ in range(min_runs):
        if end >= max_end:
            break
        begin = clock()
        invoke()
        end = clock()
        append(end - begin)
    while end < min_end and end < max_end:
        begin = clock()
        invoke()
        end = clock()
        append(end - begin)
    return np.frombuffer(samples, dtype=np.int64) / 1e3


def _stats(samples: np.ndarray, first: float | None = None) -> str:
    arr = np.asarray(samples)
    line = f"count={len(arr)} first={int(first if first is not None else arr[0])} curr={int(arr[-1])} " \
           f"min={int(arr.min())} max={int(arr.max())} avg={arr.mean():g} std={int(arr.std())}"
    if len(arr) >= 2:
        p5, med, p95 = np.percentile(arr, [5, 50, 95])
        line += f" p5={int(p5)} median={int(med)} p95={int(p95)}"
    return line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = dict(FLAGS)
    unconsumed = []
    for arg in argv:
        key, sep, value = arg.lstrip("-").partition("=")
        if arg.startswith("--") and key in flags:
            flags[key] = value if sep else "true"
        else:
            unconsumed.append(arg)
    rss0 = _rss_mb()
    _out("STARTING!")
    if unconsumed:
        print(f"WARNING: Unconsumed cmdline flags: {' '.join(unconsumed)}", flush=True)
    _out("Log parameter values verbosely: [0]")
    threads = int(flags["num_threads"])
    _out(f"Num threads: [{threads}]")
    _out(f"Graph: [{flags['graph']}]")
    if flags["enable_op_profiling"] == "true":
        _out("Enable op profiling: [1]")
    if not flags["graph"]:
        _err("Please specify the name of your TF Lite input file with --graph")
        _err("Benchmarking failed.")
        return 1
    _out(f"#threads used for CPU inference: [{threads if threads > 0 else 1}]")
    try:
        with open(flags["graph"], "rb") as fh:
            content = fh.read()
    except OSError:
        _err(f"Could not open '{flags['graph']}'.")
        _err(f"Failed to mmap model {flags['graph']}")
        _err("Benchmarking failed.")
        return 1
    from ai_edge_litert import interpreter as litert

    t0 = time.perf_counter()
    kwargs = {}
    if flags["use_xnnpack"] != "true":
        kwargs["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interpreter = litert.Interpreter(model_content=content, num_threads=max(threads, 1), **kwargs)
    except (ValueError, RuntimeError):
        _err(f"Failed to mmap model {flags['graph']}")
        _err("Benchmarking failed.")
        return 1
    _out(f"Loaded model {flags['graph']}")
    for accel in ("gpu", "nnapi"):
        if flags[f"use_{accel}"] == "true":
            _err(f"Failed to apply {accel.upper()} delegate: no such accelerator on the virtual phone.")
    _out(f"The input model file size (MB): {len(content) / 1e6:g}")
    try:
        interpreter.allocate_tensors()
    except RuntimeError:
        _err("Failed to allocate tensors!")
        _err("Benchmarking failed.")
        return 1
    init_us = (time.perf_counter() - t0) * 1e6
    rss_init = _rss_mb()
    rng = np.random.default_rng(0)
    for d in interpreter.get_input_details():
        dtype = np.dtype(d["dtype"])
        data = rng.random(d["shape"]).astype(dtype) if dtype.kind == "f" else \
            rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max + 1, d["shape"], dtype=dtype)
        interpreter.set_tensor(d["index"], data)
    _out(f"Initialized session in {init_us / 1000:.3f}ms.")
    max_secs = float(flags["max_secs"])
    warm_runs = max(int(flags["warmup_runs"]), 1)
    _out(f"Running benchmark for at least {warm_runs} iterations and at least {float(flags['warmup_min_secs']):g} "
         f"seconds but terminate if exceeding {max_secs:g} seconds.")
    warm = _phase(interpreter, warm_runs, float(flags["warmup_min_secs"]), max_secs)
    _out(_stats(warm))
    _out()
    runs = int(flags["num_runs"])
    _out(f"Running benchmark for at least {runs} iterations and at least {float(flags['min_secs']):g} seconds but "
         f"terminate if exceeding {max_secs:g} seconds.")
    timed = _phase(interpreter, runs, float(flags["min_secs"]), max_secs)
    _out(_stats(timed))
    _out()
    _out(f"Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
         f"Warmup (avg): {np.mean(warm):g}, Inference (avg): {np.mean(timed):g}")
    _out("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
         "actual memory footprint of the model at runtime. Take the information at your discretion.")
    _out(f"Memory footprint delta from the start of the tool (MB): init={rss_init - rss0:g} "
         f"overall={_rss_mb() - rss0:g}")
    if flags["report_peak_memory_footprint"] == "true":
        peak = _peak_rss_mb()
        _out(f"Overall peak memory footprint (MB) via periodic monitoring: {peak:g}")
    if flags["enable_op_profiling"] == "true":
        from android_harness.errors import HarnessError
        from android_harness.litert_profile import benchmark_tables, profile_ops

        try:
            profile = profile_ops(flags["graph"], num_threads=max(threads, 1),
                                  use_xnnpack=flags["use_xnnpack"] == "true", runs=max(runs, 1),
                                  warmup_runs=warm_runs)
        except HarnessError as exc:
            _err(f"Op profiling failed: {exc}")
            return 0
        for line in benchmark_tables(profile):
            _out(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
