"""`ferminet convert`: Keras -> validated TFLite, recorded in the store."""
from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.cli._common import add_data_arguments, add_db_argument, command_line, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert a Keras model to validated TFLite (int8/fp16/dynamic/fp32)",
                              description="Convert a .keras model to TFLite and validate its top-1 against the "
                                          "Keras model on the dataset's test split in LiteRT.")
    p.add_argument("model", help="a .keras (or .h5) model file")
    p.add_argument("--mode", choices=("int8", "fp16", "dynamic", "fp32"), default="int8")
    p.add_argument("--io", dest="io_dtype", choices=("int8", "uint8", "float32"), default="int8",
                   help="input/output tensor type of an int8 model (default int8)")
    add_data_arguments(p)
    p.add_argument("--out", required=True, help="the .tflite file to write (an existing file only with --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--max-drop", type=float, default=None, metavar="PT",
                   help="fail when top-1 drops more than PT percentage points")
    p.add_argument("--eval-samples", type=positive_int, default=None, help="validate on the first N test images "
                   "(default: the whole test split)")
    p.add_argument("--representative-samples", type=positive_int, default=200,
                   help="calibration samples for int8 (>= 100, default 200)")
    add_db_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.convert import convert_model, load_keras_model
    from toolkit.data import load_dataset
    from toolkit.provenance import file_sha256
    from toolkit.safe_io import check_output_file
    from toolkit.store import ModelRecord, Store, check_store_writable

    check_store_writable(args.db)  # before any work: a result that cannot be recorded is never made
    check_output_file(args.out, force=args.force, inputs=(args.model, args.db))
    model = load_keras_model(args.model)
    data = load_dataset(args.data, path=args.data_path)
    result = convert_model(model, data, args.out, args.mode, io_dtype=args.io_dtype, max_drop_pt=args.max_drop,
                           eval_samples=args.eval_samples, representative_samples=args.representative_samples,
                           overwrite=args.force)
    record = ModelRecord(
        model_id=file_sha256(result.path), path=str(Path(result.path).resolve()), format="tflite",
        name=Path(result.path).stem, quantization=result.mode, size_kb=result.size_kb, dataset=data.name,
        keras_top1=result.keras_top1, tflite_top1=result.tflite_top1, accuracy_drop_pt=result.drop_pt,
        eval_samples=result.eval_samples)
    with Store(args.db) as store:
        run_id = store.record_run("convert", command_line(), {k: v for k, v in vars(args).items() if k != "func"},
                                  models=(record,))
    print(f"wrote {result.path}  ({result.mode}, io {result.io_dtype}, {result.size_kb:.1f} KB, "
          f"fully int8: {'yes' if result.fully_int8 else 'no'})")
    print(f"top-1 on {result.eval_samples} {data.name} test images: Keras {result.keras_top1:.2%} -> "
          f"TFLite {result.tflite_top1:.2%} (drop {result.drop_pt:+.2f} pt)")
    print(f"recorded as run {run_id} in {args.db}")
    return 0
