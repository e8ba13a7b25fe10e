"""Per-task times behind the cost model in docs/scaling.md: what one Ray task of ``synthesize --executor ray`` costs.

For a finished synthesis run folder (e.g. one made by the scale tests' tiny configuration) it rebuilds a worker's
context as a Ray worker does (``toolkit.scale.tasks.worker_context``) and times, for ``--candidates`` random
sub-networks: extraction + BN re-estimation, validated int8 conversion, host measurement; one epoch of the final
recipe; and ``--phone-runs`` measurements on a virtual Pixel 6 (30 runs, >= 1 s, energy on). Prints a table
(mean, min, max, seconds). Run under ``nice -n 19`` on a shared machine.

    python benchmarks/scale_tasks.py RUN_FOLDER [--candidates 4] [--phone-runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a finished synthesis run folder (has run.json, prototype.keras, supernet/)")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--phone-runs", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from android_harness.virtual import VirtualPhone
    from toolkit.convert import convert_model
    from toolkit.scale.tasks import RunState, worker_context
    from toolkit.synthesis.loop import read_run_file
    from toolkit.synthesis.supernet import random_choices
    from toolkit.targets import ProfileOptions, get_target
    from toolkit.train import TrainBudget, train

    out = Path(args.run)
    saved = read_run_file(out)
    times: dict[str, list[float]] = {}

    def timed(name, fn):
        t = time.perf_counter()
        value = fn()
        times.setdefault(name, []).append(time.perf_counter() - t)
        return value

    ctx = timed("worker cold start", lambda: worker_context(RunState(saved["config"], str(out.resolve()), 0.5, None)))
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="scale-tasks-"))
    paths = []
    for i in range(args.candidates):
        choices = random_choices(ctx.space, rng)
        model, _ = timed("extraction + BN re-estimation", lambda: ctx.evaluator.proxy(choices, name=f"m{i}"))
        path = folder / f"m{i}.tflite"
        timed("int8 conversion (validated)", lambda: convert_model(model, ctx.search_data, path, mode="int8"))
        timed("host measurement (30 runs)",
              lambda: ctx.target.profile(path, ProfileOptions(num_threads=1, num_runs=30, warmup_runs=5)))
        paths.append(path)
    model, _ = ctx.evaluator.start(choices, name="final")
    n = len(ctx.train_data.x_train)
    timed(f"final recipe, 1 epoch of {n} images",
          lambda: train(model, ctx.train_data, TrainBudget(epochs=1), learning_rate=4e-3, seed=0, progress=False))
    with VirtualPhone("pixel_6") as phone:
        target = get_target("android", device=phone.serial)
        for i in range(args.phone_runs):
            timed("virtual Pixel 6 measurement (30 runs, >= 1 s, energy)", lambda: target.profile(
                paths[i % len(paths)], ProfileOptions(num_threads=1, num_runs=30, warmup_runs=5, min_secs=1.0)))
    print(f"{'task':58s} {'n':>3s} {'mean s':>8s} {'min s':>8s} {'max s':>8s}")
    for name, values in times.items():
        print(f"{name:58s} {len(values):3d} {statistics.mean(values):8.2f} {min(values):8.2f} {max(values):8.2f}")


if __name__ == "__main__":
    main()
