"""Times one ``.tflite`` model in LiteRT inside a fresh process and prints JSON on stdout.

Run by :class:`toolkit.targets.host.HostTarget` so that the timed runs do not share a process with
TensorFlow. Imports nothing but NumPy and the interpreter (and, for ``--op-profiling``,
:mod:`android_harness.litert_profile`, LiteRT's op profiler, which is TensorFlow-free too).

Memory, two honest numbers:

- ``process_peak_memory_mb``: the whole worker's peak resident memory (VmHWM): Python + NumPy + the LiteRT
  runtime + the model.
- ``memory_increment_mb``: the model's share: the peak resident memory while loading and running the model,
  minus the resident memory of the same process just before (Python, NumPy and the runtime already loaded).
  The kernel's peak is reset to the current RSS at that point (``/proc/self/clear_refs`` "5"), so an earlier
  spike (imports) does not count; where the reset is refused, the peak since start is used and the increment is
  an upper bound (``memory_increment_exact`` False).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _status_kb(key: str) -> int | None:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    hwm, rss = _status_kb("VmHWM:"), _status_kb("VmRSS:")
    return hwm is not None and rss is not None and hwm <= rss + 64  # pages may be touched in between


def peak_rss_mb() -> float:
    """Peak resident memory of this program since exec (VmHWM). Not ru_maxrss: that includes the pages of the
    parent this process was forked from, before exec replaced them."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _interpreter(path: str, threads: int, use_xnnpack: bool):
    mod = _runtime_module()
    kwargs = {}
    if not use_xnnpack and hasattr(mod, "OpResolverType"):
        kwargs["experimental_op_resolver_type"] = mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return mod.Interpreter(model_path=path, num_threads=threads, **kwargs)


def _runtime_module():
    try:
        from ai_edge_litert import interpreter as mod
    except ImportError:
        try:
            from tflite_runtime import interpreter as mod  # type: ignore[import-not-found]
        except ImportError:
            import tensorflow as tf

            mod = tf.lite
    return mod


def run(path: str, threads: int, warmup: int, runs: int, min_secs: float, use_xnnpack: bool,
        op_profiling: bool = False) -> dict:
    _runtime_module()  # the runtime's own memory belongs to the baseline, not to the model
    rss_start = _rss_mb()
    peak_before = peak_rss_mb()  # imports' peak, before the reset
    exact = reset_peak_rss()
    t0 = time.perf_counter()
    interpreter = _interpreter(path, threads, use_xnnpack)
    interpreter.allocate_tensors()
    init_ms = (time.perf_counter() - t0) * 1e3
    rss_init = _rss_mb()
    rng = np.random.default_rng(0)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        if dtype.kind == "f":
            data = rng.random(detail["shape"], dtype=np.float32).astype(dtype)
        else:
            info = np.iinfo(dtype)
            data = rng.integers(info.min, info.max + 1, size=detail["shape"], dtype=dtype)
        interpreter.set_tensor(detail["index"], data)
    t0 = time.perf_counter()
    interpreter.invoke()
    first_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(warmup):
        interpreter.invoke()
    samples = []
    started = time.perf_counter()
    while len(samples) < runs or time.perf_counter() - started < min_secs:
        t0 = time.perf_counter()
        interpreter.invoke()
        samples.append((time.perf_counter() - t0) * 1e3)
    peak_mb = peak_rss_mb()  # since the reset: the peak while loading and running the model
    timed_s = time.perf_counter() - started
    ops = _op_profile(path, threads, use_xnnpack, runs) if op_profiling else None
    return {
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "samples_ms": samples,
        "timed_s": timed_s,
        "op_profile": ops,
        "memory_increment_mb": max(0.0, peak_mb - rss_start),
        "memory_increment_exact": exact,
        "baseline_rss_mb": rss_start,
        # After the reset VmHWM covers the model's phase only (baseline included); the process's peak is the
        # larger of that and the peak before the reset (the imports).
        "process_peak_memory_mb": max(peak_mb, peak_before),
        "rss_after_init_delta_mb": max(0.0, rss_init - rss_start),
    }


def _op_profile(path: str, threads: int, use_xnnpack: bool, runs: int) -> dict:
    """Per-op times from LiteRT's op profiler over ``runs`` extra runs with the same kernels and threads, after
    the timed runs (so profiling does not touch their latency or the memory peak)."""
    from android_harness.litert_profile import profile_ops

    p = profile_ops(path, num_threads=threads, use_xnnpack=use_xnnpack, runs=runs)
    total = p.total_op_ms or 1.0
    return {
        "kernels": p.kernels, "runs": p.runs, "disturbed_runs": p.disturbed_runs, "name_match": p.name_match,
        "invoke_avg_ms": p.invoke_avg_ms,
        "ops": [{"node_type": o.node_type, "avg_ms": o.avg_ms, "percent": 100.0 * o.avg_ms / total,
                 "times_called": max(o.times_called // p.runs, 1), "name": o.label}
                for o in p.ops],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--min-secs", type=float, default=0.0)
    parser.add_argument("--no-xnnpack", action="store_true")
    parser.add_argument("--op-profiling", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = run(args.model, args.threads, args.warmup, args.runs, args.min_secs, not args.no_xnnpack,
                     args.op_profiling)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        json.dump({"error": f"{type(exc).__name__}: {exc}"}, sys.stdout)
        return 1
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
