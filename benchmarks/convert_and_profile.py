"""float32 vs int8: accuracy, size and host latency of resnet20 trained on Fashion-MNIST.

Prints one table. Targets (issue 2): int8 top-1 drop <= 0.3 pt on the full 10k test set, and int8 host
latency <= 0.6x float32. Latencies are medians over many timed runs of the same process-isolated host
profiler, the two models measured back to back in one run (this machine is noisy: compare within a run).

    python benchmarks/convert_and_profile.py [--epochs 3] [--runs 200] [--out bench-out]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="profile each model this many times; median")
    parser.add_argument("--out", default="bench-out")
    args = parser.parse_args()

    import statistics

    from toolkit.arch import build_model, count_macs, count_params, get_prototype
    from toolkit.convert import convert_model
    from toolkit.data import load_dataset
    from toolkit.targets import HostTarget, ProfileOptions
    from toolkit.train import TrainBudget, train

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = load_dataset("fashion_mnist")
    spec = get_prototype("resnet20", data.input_shape, data.num_classes)
    model = build_model(spec, seed=0)
    trained = train(model, data, TrainBudget(epochs=args.epochs), batch_size=128, learning_rate=2e-3, seed=0)
    macs, params = count_macs(model), count_params(model)
    print(f"trained resnet20 {trained.epochs_run} epochs on 60k images in {trained.wall_s:.0f} s; "
          f"Keras top-1 {trained.test_top1:.2%}")

    conv = {mode: convert_model(model, data, out / f"resnet20_{mode}.tflite", mode=mode,
                                keras_top1=trained.test_top1)
            for mode in ("fp32", "int8")}
    target = HostTarget()
    latency = {}
    for threads in (1, 2):
        for mode in ("fp32", "int8"):
            medians = [target.profile(conv[mode].path, ProfileOptions(num_threads=threads, num_runs=args.runs,
                                                                     warmup_runs=20)).latency.median_ms
                       for _ in range(args.repeats)]
            latency[mode, threads] = statistics.median(medians)

    rows = [
        ("top-1 (10k test, LiteRT)", f"{conv['fp32'].tflite_top1:.2%}", f"{conv['int8'].tflite_top1:.2%}",
         f"drop {(conv['fp32'].tflite_top1 - conv['int8'].tflite_top1) * 100:+.2f} pt"),
        ("drop vs Keras (pt)", f"{conv['fp32'].drop_pt:+.2f}", f"{conv['int8'].drop_pt:+.2f}", "target <= 0.3"),
        ("MACs", f"{macs:,}", f"{macs:,}", "1.00x"),
        ("params", f"{params:,}", f"{params:,}", "1.00x"),
        (".tflite size (KB)", f"{conv['fp32'].size_kb:.1f}", f"{conv['int8'].size_kb:.1f}",
         f"{conv['int8'].size_kb / conv['fp32'].size_kb:.2f}x"),
    ]
    for threads in (1, 2):
        ratio = latency["int8", threads] / latency["fp32", threads]
        rows.append((f"host median ms, {threads} thread{'s' if threads > 1 else ''}",
                     f"{latency['fp32', threads]:.3f}", f"{latency['int8', threads]:.3f}",
                     f"{ratio:.2f}x (target <= 0.6)"))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'':<{width}}  {'float32':>12}  {'int8':>12}  int8/float32")
    for name, a, b, ratio in rows:
        print(f"{name:<{width}}  {a:>12}  {b:>12}  {ratio}")
    print(f"\nlatency: measured:host (LiteRT, XNNPACK, median of {args.repeats} x {args.runs} runs); "
          f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
