"""How far the idle baseline drifts across back-to-back runs: the measurement behind the baseline-reuse bound.

Alternates an idle baseline (the same sampler and ODPM reads ``profile_on_device`` uses, ``--baseline-s`` long)
with a benchmark run (``--secs`` of benchmark_model, latency only, so the phone heats as a measuring loop heats
it), ``--cycles`` times. For every pair of baselines (i < j) it compares the idle power of j with that of i,
in milliwatts and in standard errors (the two baselines' SEMs combined), grouped by the age of i when j was
taken. Reusing baseline i at that age is safe when the difference stays within the measurement's own noise.

    python benchmarks/idle_baseline_drift.py [--profile pixel_6] [--cycles 10] [--secs 10] [--baseline-s 2]
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="pixel_6")
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--secs", type=float, default=10.0)
    parser.add_argument("--baseline-s", type=float, default=2.0)
    args = parser.parse_args()

    from android_harness.benchmark import BenchmarkOptions
    from android_harness.connection import connect
    from android_harness.device import AndroidDevice
    from android_harness.energy import idle_power_summary, parse_power_samples
    from android_harness.profile import _conventions, profile_on_device, take_idle_baseline
    from android_harness.virtual import VirtualPhone
    from harness_overhead import small_model

    model = small_model(Path(tempfile.mkdtemp()) / "bench_int8.tflite")
    rows = []
    with VirtualPhone(args.profile) as phone:
        device = AndroidDevice(connect(phone.serial))
        info = device.info()
        t0 = time.monotonic()
        for _ in range(args.cycles):
            state = device.snapshot()
            base = take_idle_baseline(device, state, args.baseline_s)
            conv = _conventions(info, base.power_text)
            mean_mw, sem_mw, readings = idle_power_summary(parse_power_samples(base.power_text, conv))
            odpm_mw = None
            if base.odpm_start and base.odpm_end:
                dt = {r: (base.odpm_end[r][0] - base.odpm_start[r][0]) / 1000.0 for r in base.odpm_end}
                odpm_mw = sum((base.odpm_end[r][1] - base.odpm_start[r][1]) / dt[r] / 1000.0 for r in base.odpm_end)
            rows.append((base.taken_monotonic_s - t0, mean_mw, sem_mw, readings, odpm_mw, state.battery_temp_c,
                         state.thermal_status, state.max_temp_c))
            profile_on_device(device, model, BenchmarkOptions(num_threads=1, min_secs=args.secs), measure_energy=False)
    print(f"virtual {args.profile}: {args.cycles} cycles of ({args.baseline_s:g} s idle baseline, "
          f"{args.secs:g} s benchmark)\n")
    print(f"{'t s':>7}{'gauge idle mW':>15}{'SEM mW':>8}{'readings':>10}{'ODPM idle mW':>14}{'battery C':>11}"
          f"{'max zone C':>12}  thermal")
    for t, mean, sem, n, odpm, temp, status, max_c in rows:
        print(f"{t:>7.1f}{mean:>15.1f}{sem:>8.2f}{n:>10d}{'' if odpm is None else f'{odpm:.1f}':>14}"
              f"{'' if temp is None else f'{temp:.1f}':>11}{'' if max_c is None else f'{max_c:.1f}':>12}  {status}")
    bins = {}
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            age = b[0] - a[0]
            z = (b[1] - a[1]) / math.sqrt(a[2] ** 2 + b[2] ** 2) if a[2] or b[2] else float("inf")
            d_odpm = None if a[4] is None or b[4] is None else b[4] - a[4]
            bins.setdefault(int(age // 30) * 30, []).append((b[1] - a[1], z, d_odpm, (b[5] or 0) - (a[5] or 0)))
    print(f"\n{'age of reused baseline':<24}{'pairs':>6}{'median |d| mW':>15}{'max |d| mW':>12}{'max |z|':>9}"
          f"{'max |d ODPM| mW':>17}{'max dT C':>10}")
    for start in sorted(bins):
        ds = bins[start]
        odpm = [abs(d[2]) for d in ds if d[2] is not None]
        print(f"{f'{start}-{start + 30} s':<24}{len(ds):>6}{statistics.median(abs(d[0]) for d in ds):>15.2f}"
              f"{max(abs(d[0]) for d in ds):>12.2f}{max(abs(d[1]) for d in ds):>9.2f}"
              f"{(f'{max(odpm):.2f}' if odpm else '-'):>17}{max(abs(d[3]) for d in ds):>10.1f}")
    print("\nd: idle power of the later baseline minus the earlier one; z: d in combined standard errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
