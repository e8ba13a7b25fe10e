"""Where the time goes in resnet20 (int8, host): per-op profile cost shares per width group vs MAC shares.

The inquisitor attributes cost to width groups from a target's per-op profile when it has one, else from MAC
shares. This prints, for resnet20 at a few widths, each group's share of the MACs and of the measured per-op time
(LiteRT's op profiler, builtin kernels and XNNPACK), and how the per-op times sum against the independently timed
median latency (ratio; profiling adds a little per-op overhead, XNNPACK rounds each operator down to whole us).
Weights are untrained (time does not depend on them); int8 calibration uses a few real Fashion-MNIST images.

    python benchmarks/op_profile_shares.py [--widths 0.25,0.5,1.0] [--runs 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="0.25,0.5,1.0")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    import numpy as np

    from toolkit.arch import build_model, get_prototype
    from toolkit.convert import convert_model
    from toolkit.data import load_dataset
    from toolkit.synthesis import DecisionSpace
    from toolkit.synthesis.inquisitor import form_insights
    from toolkit.targets import HostTarget, ProfileOptions

    data = load_dataset("fashion_mnist", n_train=500, n_test=200, seed=0)
    target = HostTarget()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width in (float(w) for w in args.widths.split(",")):
            spec = get_prototype("resnet20", width_multiplier=width)
            model = build_model(spec, seed=0)
            path = Path(tmp) / f"resnet20_w{width}.tflite"
            convert_model(model, data, path, mode="int8")
            space = DecisionSpace.from_prototype(spec)
            importance = {}  # only the cost side is compared here
            shares = {"macs": form_insights(space, model, importance).cost_share}
            ratio = {}
            for delegate in ("cpu", "xnnpack"):
                m = target.profile(path, ProfileOptions(num_runs=args.runs, op_profiling=True, measure_energy=False,
                                                        delegate=delegate))
                ins = form_insights(space, model, importance, op_profile=m.op_profile)
                assert ins.cost_basis == "op_profile"
                shares[delegate] = ins.cost_share
                ratio[delegate] = (sum(o.avg_ms for o in m.op_profile) / m.latency.median_ms, m.latency.median_ms)
            for g, blocks in space.groups:
                rows.append((width, g, ",".join(blocks), shares["macs"][g], shares["cpu"][g], shares["xnnpack"][g]))
            rows.append((width, "sum/latency", "", np.nan, *[ratio[d][0] for d in ("cpu", "xnnpack")]))
            rows.append((width, "median ms", "", np.nan, *[ratio[d][1] for d in ("cpu", "xnnpack")]))

    print(f"{'width':>5}  {'group':<12} {'blocks':<22} {'MAC share':>9}  {'op share (builtin)':>18}  "
          f"{'op share (xnnpack)':>18}")
    for width, g, blocks, macs, cpu, xnn in rows:
        mac_text = "" if np.isnan(macs) else f"{macs:9.3f}"
        print(f"{width:5.2f}  {g:<12} {blocks:<22} {mac_text:>9}  {cpu:18.3f}  {xnn:18.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
