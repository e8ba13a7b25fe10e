"""`ferminet export`: .tflite + standard metadata + labels + model card, optionally into an Android app."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="ship a model to apps: .tflite with metadata, labels, model card",
                              description="Write MODEL (a .tflite, or a .keras converted to validated int8 here) with "
                                          "standard TFLite metadata (name, version, input normalisation, labels as "
                                          "an associated file), labels.txt and model_card.json (measured numbers "
                                          "with device provenance from the store).")
    p.add_argument("model", help=".tflite (float32/uint8 input, 3 channels) or .keras (with --data)")
    p.add_argument("--labels", default=None, help="labels file, one class per line (default: the dataset's names)")
    p.add_argument("--data", default=None, help="dataset of a .keras model (calibration and validation)")
    p.add_argument("--out", required=True, help="output folder (new or empty; else --force)")
    p.add_argument("--name", default=None)
    p.add_argument("--description", default="")
    p.add_argument("--version", default="1.0")
    p.add_argument("--author", default="")
    p.add_argument("--license", default="")
    p.add_argument("--android-assets", default=None, metavar="APP_MODULE",
                   help="also copy the model and labels into APP_MODULE/src/main/assets (existing ones only with "
                        "--force)")
    p.add_argument("--db", default="ferminet.db", help="store to take measured numbers from")
    p.add_argument("--allow-grayscale", action="store_true", help="export a 1-channel .tflite as it is")
    p.add_argument("--allow-logits", action="store_true",
                   help="export a .tflite whose output is not a softmax as it is (apps then get logits, not "
                        "probabilities)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out, replace the model/labels already in the app's assets, or "
                        "accept an assets folder that does not look like an app module (only the exported files "
                        "are replaced)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.export import export_model

    r = export_model(args.model, args.out, labels=args.labels, dataset=args.data, name=args.name,
                     description=args.description, version=args.version, author=args.author, license=args.license,
                     android_assets=args.android_assets, db=args.db, allow_grayscale=args.allow_grayscale,
                     allow_logits=args.allow_logits, force=args.force)
    print(f"wrote {r.tflite_path} (with metadata), {r.labels_path}, {r.model_card_path}")
    if r.android_assets:
        print(f"copied model and labels into {r.android_assets}")
    n = len(r.model_card["measurements"])
    print(f"model card: {n} measurement(s) from the store" + ("" if n else " (profile it first to include some)"))
    return 0
