"""Accuracy per MAC of architectures outside (and inside) the synthesis space, at the same budget.

Issue 10 asks which space would reach <= 1 pt at >= 10x fewer MACs than resnet20. This script trains hand-written
networks of about 3M MACs (10x fewer than resnet20's 31M) *from scratch* with the final recipe (Adam, cosine decay,
the run's final learning rate, ``--epochs`` epochs) on the training split of a finished synthesis benchmark run
(``benchmarks/synthesis_fashion_mnist.py --out DIR``: same images, same validation split), converts each to int8 and
reads top-1 on the validation split and once on the test split. ``control`` is the architecture of a network the
benchmark chose (``--control STRATEGY:CANDIDATE_ID``), trained from scratch like the others, so the comparison is
architecture against architecture; the benchmark's own final of it started from supernet weights instead.

Networks (``--networks``, comma-separated; ``macs`` as the only name prints their MACs and exits):

- ``control``: the benchmark's chosen network (resnet20 space: widths per stage, skipped blocks, input resize)
- ``s2stem_w0.625``: resnet20 at width 0.625 with a stride-2 stem (every stage at half the side)
- ``res14_w0.625``: the same widths with the input resized to 14 px instead (the space's resolution decision)
- ``dsnet_a``: depthwise-separable: 3x3 stem of 24 at 28 px, separable convs 48 (stride 2), 48, 96 (stride 2), 96 x3
- ``dsnet_a_wide``: the same with 112 channels at 7 px and one block fewer
- ``dsdeep``: nine separable convs, three of 32 channels (the first with stride 2) and six of 80 (the first with
  stride 2), no residuals
- ``irnet_t2``: MobileNetV2 blocks with expansion 2, 24 and 48 channels, 1x1 to 128 before pooling (3.9M: over 3.1M)
- ``r20sep_g0.75_res24``: resnet20 with every block depthwise-separable (``synthesize --separable``), stage 1 at width
  0.75, input resized to 24 px
- ``r20sep_s1one_res24``: resnet20, every block separable, stage 1 keeps one block, input resized to 24 px

A name ending in ``+kd`` adds distillation from the run's prototype (``train(teacher=...)``, alpha 0.5, T 2).

    python benchmarks/space_from_scratch.py --run bench-synth2/gensynth --db bench-synth2/bench.db --epochs 6 \\
        --networks control,dsnet_a,r20sep_g0.75_res24

Prints one row per network and appends it to ``--results`` (JSON lines). Pick among them on ``val``; ``test`` is
reported, not chosen on.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from record import code_commit, run_main  # noqa: E402


def networks(space, sep_space, control_choices):
    from toolkit.arch.spec import ArchSpec, BlockSpec as B

    def spec(name, blocks, resolution=None):
        return ArchSpec(name, (28, 28, 1), 10, tuple(blocks) + (B("classifier", "head"),), resolution)

    def ds(name, c, s=1):
        return B("depthwise_separable", name, c, stride=s)

    def ir(name, c, s=1, t=2):
        return B("inverted_residual", name, c, stride=s, expansion=t)

    def resnet(f, stem_stride=1, resolution=None, name="resnet20"):
        width = lambda c: max(4, int(round(c * f / 4)) * 4)  # noqa: E731 - the space's rounding
        return spec(name, [B("conv_bn_relu", "stem", width(16), stride=stem_stride)] + [
            B("resnet_basic", f"s{s}b{i}", width(c), stride=2 if s > 1 and i == 0 else 1)
            for s, c in ((1, 16), (2, 32), (3, 64)) for i in range(3)], resolution)

    every_sep = {**sep_space.prototype_choices(),
                 **{d.name: True for d in sep_space.decisions if d.kind == "separable"}}
    nets = {
        "s2stem_w0.625": resnet(0.625, stem_stride=2),
        "res14_w0.625": resnet(0.625, resolution=14),
        "dsnet_a": spec("dsnet_a", [B("conv_bn_relu", "stem", 24), ds("a0", 48, 2), ds("a1", 48), ds("b0", 96, 2),
                                    ds("b1", 96), ds("b2", 96), ds("b3", 96)]),
        "dsnet_a_wide": spec("dsnet_a_wide", [B("conv_bn_relu", "stem", 24), ds("a0", 48, 2), ds("a1", 48),
                                              ds("b0", 112, 2), ds("b1", 112), ds("b2", 112)]),
        "dsdeep": spec("dsdeep", [B("conv_bn_relu", "stem", 16)] + [ds(f"a{i}", 32, 2 if i == 0 else 1)
                                                                    for i in range(3)]
                       + [ds(f"b{i}", 80, 2 if i == 0 else 1) for i in range(6)]),
        "irnet_t2": spec("irnet_t2", [B("conv_bn_relu", "stem", 16)] + [ir(f"a{i}", 24, 2 if i == 0 else 1)
                                                                        for i in range(3)]
                         + [ir(f"b{i}", 48, 2 if i == 0 else 1) for i in range(4)]
                         + [B("conv_bn_relu", "last", 128, kernel=1)]),
        "r20sep_g0.75_res24": sep_space.apply({**every_sep, "width:g0": 0.75, "resolution:input": 24}),
        "r20sep_s1one_res24": sep_space.apply({**every_sep, "keep:s1b1": False, "keep:s1b2": False,
                                               "resolution:input": 24}),
    }
    if control_choices is not None:
        nets["control"] = space.apply(control_choices, name="control")
    return nets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the gensynth run folder of a synthesis benchmark")
    parser.add_argument("--db", required=True, help="the benchmark's store (read only)")
    parser.add_argument("--control", default="gensynth:final-c002-04", help="STRATEGY:CANDIDATE_ID of the control")
    parser.add_argument("--networks", required=True, help="comma-separated names (module docstring), or 'macs'")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--work", default="/tmp/space-from-scratch", help="folder for the .tflite files")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "space_from_scratch.jsonl"))
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1. Received: {args.epochs}")
    if args.control.count(":") != 1:
        parser.error(f"--control takes STRATEGY:CANDIDATE_ID, e.g. gensynth:final-c002-04. Received: {args.control!r}")

    import keras
    from final_budget import stored_choices  # the sibling script's reader (this folder is on sys.path when run)

    from toolkit.arch import build_model, count_macs, get_prototype
    from toolkit.convert import convert_model
    from toolkit.convert.interpreter import evaluate_tflite
    from toolkit.synthesis.assess import Context, report_on_test
    from toolkit.synthesis.config import SynthesisConfig
    from toolkit.synthesis.loop import read_run_file
    from toolkit.synthesis.requirements import parse_requirements
    from toolkit.synthesis.space import DecisionSpace
    from toolkit.train import TrainBudget, train

    run = Path(args.run)
    config = SynthesisConfig.from_dict(read_run_file(run)["config"])
    proto = get_prototype(config.prototype, (28, 28, 1), 10, config.prototype_width)
    space = DecisionSpace.from_prototype(proto, config.width_options, config.resolution_options)
    sep_space = DecisionSpace.from_prototype(proto, config.width_options, config.resolution_options, separable=True)
    nets = networks(space, sep_space, stored_choices(args.db, *args.control.split(":")))
    names = args.networks.split(",")
    unknown = [n for n in names if n != "macs" and n.removesuffix("+kd") not in nets]
    if unknown:
        parser.error(f"unknown networks {unknown}; use {', '.join(sorted(nets))} (optionally with +kd), or macs")
    if names == ["macs"]:
        for name, s in nets.items():
            print(f"{name:<22}{count_macs(build_model(s, seed=0)):>12,} MACs")
        return 0

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(config, work, parse_requirements(config.requirements))
    val = ctx.train_data  # its x_test/y_test are the validation split
    teacher = None
    commit = code_commit()
    for name in names:
        kd = name.endswith("+kd")
        if kd and teacher is None:
            teacher = keras.models.load_model(run / "prototype.keras", compile=False)
        model = build_model(nets[name.removesuffix("+kd")], seed=0)
        t0 = time.perf_counter()
        train(model, ctx.train_data, TrainBudget(epochs=args.epochs), learning_rate=config.final_learning_rate,
              seed=0, progress=False, teacher=teacher if kd else None)
        seconds = time.perf_counter() - t0
        path = work / f"{name}_e{args.epochs}_int8.tflite"
        convert_model(model, ctx.search_data, path, mode="int8")
        result = {"network": name, "epochs": args.epochs, "macs": count_macs(model), "params": model.count_params(),
                  "train_s": round(seconds), "val_top1": evaluate_tflite(path, val.x_test, val.y_test, num_threads=1),
                  "test_top1": report_on_test(ctx, path), "train_images": len(val.x_train), "git_commit": commit}
        print(f"{name:<22} E={args.epochs:<3}{result['macs']:>12,} MACs  val {result['val_top1']:.2%}  "
              f"test {result['test_top1']:.2%}  ({seconds:.0f} s)", flush=True)
        Path(args.results).parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a") as f:
            f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
