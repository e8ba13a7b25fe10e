"""Harness overhead on the virtual phone: wall time of one whole profile vs the benchmark's own timed inferences.

For a 10 s benchmark (``--min_secs=10``) prints, per configuration, the median over repetitions of the wall
time of ``profile_on_device`` (device info, cached pushes, thermal gate, snapshots, power sampler, parsing)
divided by the timed-inference time the benchmark reports (count x average). Target <= 1.3x. Also the bytes a
second push of the same model moves (target 0).

Energy is measured two ways: a new idle baseline for every profile (what a single measurement does), and
back-to-back profiles sharing one phone's baseline through a ``BaselineCache`` (what a measuring loop does):
the first of those takes the baseline, later ones reuse it while it is fresh; a run that finds it stale or the
phone's battery over 1 C warmer takes a new one. Those two kinds get a row each, and the line under the table
gives how many reused and the ratio over all of them together. The configurations run interleaved, round by
round, so a busy machine slows them alike, after ``--warmup`` latency-only profiles (a measuring loop's phone
has been running: its battery temperature has settled).

Under that table, where the time goes: seconds per step of ``profile_on_device`` (``DeviceProfileRun.steps_s``),
median per kind of profile, with the benchmark_model command split into its timed inferences (the denominator)
and the rest of the command (tool start-up and model load, warm-up of at least 0.5 s, time between timed runs,
exit).

Throughput of a phone farm (``toolkit.targets.farm.PhoneFarm``): ``--farm-models`` copies of the model measured
as a synthesis cycle measures them (latency + energy, ``--farm-secs`` per profile) through a farm of one virtual
phone, then of two; prints models measured per minute and the ratio. The virtual phones run their benchmarks on
this machine's CPUs, so on a busy machine two of them share its cores (real phones do not).

    python benchmarks/harness_overhead.py [--secs 10] [--repeats 3] [--warmup 2] [--farm-models 8] [--only farm]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def small_model(path: Path) -> Path:
    import keras
    import numpy as np
    import tensorflow as tf

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
                              keras.layers.Conv2D(32, 3, strides=2, activation="relu"), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([np.random.rand(1, 28, 28, 1).astype("float32")] for _ in range(100))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path.write_bytes(converter.convert())
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--secs", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="latency-only profiles first, not counted")
    parser.add_argument("--profile", default="pixel_6")
    parser.add_argument("--farm-models", type=int, default=8, help="models per farm size in the throughput table")
    parser.add_argument("--farm-secs", type=float, default=1.0, help="--min_secs of each farm profile (default 1, "
                                                                     "what synthesis uses on a phone)")
    parser.add_argument("--only", choices=("overhead", "farm"), default=None, help="print only this table")
    args = parser.parse_args()
    if args.only != "farm":
        overhead(args)
    if args.only != "overhead":
        farm_throughput(args)
    return 0


def farm_throughput(args) -> None:
    import shutil
    import time

    from android_harness.virtual import VirtualPhone
    from toolkit.targets import ProfileOptions
    from toolkit.targets.farm import PhoneFarm

    folder = Path(tempfile.mkdtemp())
    first = small_model(folder / "farm_0_int8.tflite")
    models = [first] + [Path(shutil.copy(first, folder / f"farm_{i}_int8.tflite")) for i in range(1, args.farm_models)]
    options = ProfileOptions(num_runs=30, warmup_runs=5, min_secs=args.farm_secs)  # as synthesis measures
    rows = []
    with VirtualPhone(args.profile) as a, VirtualPhone(args.profile) as b:
        for phones in ([a.serial], [a.serial, b.serial]):
            with PhoneFarm(phones) as farm:
                farm.submit(first, ProfileOptions(num_runs=5, min_secs=0.2, measure_energy=False)).result()  # warm
                before = {s.serial: s.jobs_done for s in farm.status()}
                started = time.perf_counter()
                done = [f.result() for f in [farm.submit(m, options) for m in models]]
                wall = time.perf_counter() - started
                per_phone = {s.serial: s.jobs_done - before[s.serial] for s in farm.status()}
            rows.append((len(phones), wall, len(done) / wall * 60, per_phone))
    print(f"\nphone farm throughput: {args.farm_models} models, latency + energy, --min_secs={args.farm_secs:g} "
          f"(virtual {args.profile} phones on this machine)\n")
    print(f"{'phones':>6}{'wall s':>9}{'models/min':>12}{'ratio':>8}  jobs per phone")
    for n, wall, rate, per_phone in rows:
        print(f"{n:>6}{wall:>9.1f}{rate:>12.1f}{rate / rows[0][2]:>7.2f}x  "
              f"{', '.join(str(v) for v in per_phone.values())}")


def overhead(args) -> None:
    from android_harness.benchmark import BenchmarkOptions
    from android_harness.connection import connect
    from android_harness.deploy import push_cached
    from android_harness.device import AndroidDevice
    from android_harness.profile import BaselineCache, profile_on_device
    from android_harness.virtual import VirtualPhone

    model = small_model(Path(tempfile.mkdtemp()) / "bench_int8.tflite")
    rows = []
    with VirtualPhone(args.profile) as phone:
        device = AndroidDevice(connect(phone.serial))
        first = push_cached(device, model)
        second = push_cached(device, model)

        def measure(energy, baselines=None):
            run = profile_on_device(device, model, BenchmarkOptions(num_threads=1, min_secs=args.secs),
                                    measure_energy=energy, baselines=baselines)
            b = run.benchmark
            timed_s = b.inference_count * b.inference_avg_us / 1e6
            # Waiting for the phone to cool is a guard, not overhead: reported apart.
            wall = run.wall_s - run.thermal_wait_s
            return (wall, timed_s, wall / timed_s, run.thermal_wait_s, bool(run.energy and run.energy.baseline_reused),
                    run)

        configs = {"latency + energy, new 2 s baseline": (True, None),
                   "latency + energy, back-to-back (cache)": (True, BaselineCache()),
                   "latency only": (False, None)}
        results = {label: [] for label in configs}
        for _ in range(args.warmup):  # a measuring loop's phone is warm: its battery has settled
            measure(False)
        cached = results["latency + energy, back-to-back (cache)"]
        cached.append(measure(True, configs["latency + energy, back-to-back (cache)"][1]))  # fills the cache
        # Rounds interleave the configurations, so a busy machine slows all of them alike.
        for _ in range(args.repeats):
            for label, (energy, cache) in configs.items():
                results[label].append(measure(energy, cache))

        def row(label, runs, reused):
            rows.append((label, *(statistics.median(r[i] for r in runs) for i in range(4)), reused, len(runs)))

        row("latency + energy, new 2 s baseline", results["latency + energy, new 2 s baseline"], "-")
        reusing = [r for r in cached if r[4]]
        retaking = [r for r in cached if not r[4]]
        if reusing:
            row("  back-to-back, reused baseline", reusing, "yes")
        row("  back-to-back, took a new baseline", retaking, "no")
        amortized = statistics.fmean(r[0] for r in cached) / statistics.fmean(r[1] for r in cached)
        row("latency only", results["latency only"], "-")
    print(f"virtual {args.profile}, --min_secs={args.secs:g}, median over n profiles; configurations interleaved "
          f"round by round ({args.repeats} rounds, after {args.warmup} warm-up profiles)\n")
    print(f"{'configuration':<40}{'n':>3}{'wall s':>8}{'timed s':>9}{'wall/timed':>12}{'cooling wait s':>16}"
          f"  target <= 1.3x")
    for label, wall, timed_s, ratio, wait, _, n in rows:
        print(f"{label:<40}{n:>3}{wall:>8.2f}{timed_s:>9.2f}{ratio:>11.2f}x{wait:>16.1f}  "
              f"{'met' if ratio <= 1.3 else 'missed'}")
    cache = configs["latency + energy, back-to-back (cache)"][1]
    print(f"back-to-back: {len(reusing)} of {len(cached)} profiles reused the baseline (the first always takes one; "
          f"a later one takes a new one when the last is over {cache.max_age_s:g} s old or the battery moved over "
          f"{cache.temp_tolerance_c:g} C); all {len(cached)} together: {amortized:.2f}x (total wall / total timed)")
    print("wall s excludes the thermal gate's wait for the phone to cool (shown apart)")
    breakdown({"latency only": results["latency only"],
               "energy, new baseline": results["latency + energy, new 2 s baseline"],
               "energy, reused baseline": reusing}, args.secs)
    print(f"\nfirst push moved {first.bytes_transferred} bytes; second push moved {second.bytes_transferred} bytes "
          f"(cached: {second.cached}); target 0")


def breakdown(columns: dict, secs: float) -> None:
    """Seconds per step of profile_on_device (DeviceProfileRun.steps_s), median over the profiles of each kind.

    The benchmark_model step is split into the timed inferences (count x average: the ratio's denominator) and
    the rest of the command: starting the tool and loading the model, the warm-up phase (at least 0.5 s, the
    real tool's default --warmup_min_secs), the timed phase's time outside the inferences, statistics, exit.
    """
    from android_harness.profile import STEPS

    columns = {label: runs for label, runs in columns.items() if runs}
    print(f"\nwhere the time goes: seconds per step, median over n profiles (--min_secs={secs:g})\n")
    print(f"{'step':<44}" + "".join(f"{label:>26}" for label in columns))
    print(f"{'n':<44}" + "".join(f"{len(runs):>26}" for runs in columns.values()))

    def line(label, value_of):
        print(f"{label:<44}" + "".join(f"{statistics.median(value_of(r[5]) for r in runs):>26.3f}"
                                         for runs in columns.values()))

    for name in STEPS:
        if name == "benchmark_model":
            line("benchmark_model: timed inferences", lambda run: _timed_s(run))
            line("benchmark_model: start, warm-up, untimed, exit", lambda run: dict(run.steps_s)[name] - _timed_s(run))
        elif name == "state before + thermal gate":  # its wait for the phone to cool is shown apart, as above
            line(name + " (no wait)", lambda run: dict(run.steps_s)[name] - run.thermal_wait_s)
        else:
            line(name, lambda run, name=name: dict(run.steps_s)[name])
    line("wall (all steps, no cooling wait)", lambda run: run.wall_s - run.thermal_wait_s)
    line("harness's own (that - benchmark_model)", lambda run: run.wall_s - run.thermal_wait_s
         - dict(run.steps_s)["benchmark_model"])
    line("(apart) thermal gate's wait to cool", lambda run: run.thermal_wait_s)


def _timed_s(run) -> float:
    return run.benchmark.inference_count * run.benchmark.inference_avg_us / 1e6


if __name__ == "__main__":
    raise SystemExit(main())
