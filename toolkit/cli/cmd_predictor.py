"""`ferminet predictor fit|eval`: a kernel-level latency/energy predictor fitted on the store's measurements."""
from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.cli._common import positive_int


def default_predictor_path(db: str, device: str, quantity: str) -> Path:
    """Where a predictor lives unless --out/--predictor says: beside the store, named after device and quantity."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in device)
    return Path(db).parent / f"predictor-{safe}-{quantity}.joblib"


def register(subparsers) -> None:
    p = subparsers.add_parser("predictor", help="fit / evaluate a kernel-level latency or energy predictor",
                              description="Predict a .tflite's latency (or energy) on a device from its kernels: one "
                                          "regressor per kernel type, fitted on what the store measured on that "
                                          "device. Predictions are labelled predicted:<device>, never measured.")
    sub = p.add_subparsers(dest="predictor_command", metavar="ACTION")
    sub.required = True
    for name, helptext in (("fit", "fit a predictor from the store's measurements of one device"),
                           ("eval", "compare a predictor's predictions with the store's measurements")):
        q = sub.add_parser(name, help=helptext, description=helptext)
        q.add_argument("--db", default="ferminet.db",
                       help="results store to read the measurements from (default: ./ferminet.db)")
        q.add_argument("--device", required=True,
                       help="device as the store names it: serial, host:port, 'host', or a source's profile "
                            "(e.g. pixel_6 for virtual:pixel_6)")
        q.add_argument("--quantity", choices=("latency_ms", "energy_mj"), default="latency_ms",
                       help="what to predict (default latency_ms)")
        if name == "fit":
            q.add_argument("--out", default=None,
                           help="predictor file (default: predictor-<device>-<quantity>.joblib beside the store)")
            q.add_argument("--force", action="store_true",
                           help="replace an existing --out file that is not a ferminet predictor")
            q.add_argument("--members", type=positive_int, default=16,
                           help="bootstrap fits in the ensemble (its spread is the uncertainty; default 16)")
            q.set_defaults(func=run_fit)
        else:
            q.add_argument("--predictor", default=None,
                           help="predictor file (default: predictor-<device>-<quantity>.joblib beside the store)")
            q.set_defaults(func=run_eval)
    p.set_defaults(func=None)


def run_fit(args: argparse.Namespace) -> int:
    from toolkit.errors import InvalidArgumentError
    from toolkit.predict import LatencyPredictor
    from toolkit.predict.fit import evaluate_on_store, fit_from_store

    out = Path(args.out) if args.out else default_predictor_path(args.db, args.device, args.quantity)
    if out.is_dir() or (out.exists() and not args.force and not LatencyPredictor.is_predictor_file(out)):
        raise InvalidArgumentError(f"--out {str(out)!r} already exists and is not a ferminet predictor; it is left "
                                   f"as it is. Pass another --out, or --force to replace it")
    predictor = fit_from_store(args.db, args.device, quantity=args.quantity, members=args.members)
    predictor.save(out)
    ev = evaluate_on_store(predictor, args.db)
    print(predictor.describe())
    print(f"on its own fitting data: {ev.within_10pct:.1%} within 10 %, {ev.within_5pct:.1%} within 5 %, "
          f"RMSE {ev.rmse:.3g} {ev.unit} ({ev.networks} networks)")
    print(f"saved to {out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from toolkit.predict import LatencyPredictor
    from toolkit.predict.fit import evaluate_on_store

    path = Path(args.predictor) if args.predictor else default_predictor_path(args.db, args.device, args.quantity)
    predictor = LatencyPredictor.load(path)
    ev = evaluate_on_store(predictor, args.db, args.device)
    print(f"{predictor.describe()}")
    print(f"{ev.networks} measured networks of {args.device}: {ev.within_10pct:.1%} within 10 %, "
          f"{ev.within_5pct:.1%} within 5 %, RMSE {ev.rmse:.3g} {ev.unit}, Kendall tau {ev.kendall_tau:.3f}, "
          f"{ev.in_band:.1%} inside the predicted band (mean +- 2 sigma)")
    return 0
