"""`ferminet info`: what is inside a .tflite file."""
from __future__ import annotations

import argparse
import dataclasses
import json


def register(subparsers) -> None:
    p = subparsers.add_parser("info", help="inputs/outputs, op histogram, size and int8-ness of a .tflite",
                              description="Describe a .tflite model: tensors (shape, dtype, scale/zero-point), "
                                          "op histogram, size, and whether it computes fully in int8.")
    p.add_argument("model", help="a .tflite file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.convert import inspect_tflite

    info = inspect_tflite(args.model)
    if args.json:
        print(json.dumps(dataclasses.asdict(info), indent=2))
        return 0
    print(f"model      {info.path}  ({info.size_kb:.1f} KB, runtime {info.runtime})")
    for kind, tensors in (("input", info.inputs), ("output", info.outputs)):
        for t in tensors:
            quant = f"  scale={t.scale:.6g} zero_point={t.zero_point}" if t.scale else ""
            print(f"{kind:<10} {t.name}  shape={list(t.shape)}  dtype={t.dtype}{quant}")
    print(f"ops        {info.num_ops} total: " + ", ".join(f"{name}×{n}" for name, n in info.op_histogram))
    print(f"fully int8 {'yes' if info.fully_int8 else 'no (float ops: ' + ', '.join(info.float_ops) + ')'}")
    return 0
