"""`ferminet profile`: time a .tflite on the host or an Android phone and record it."""
from __future__ import annotations

import argparse
from pathlib import Path

from toolkit.cli._common import (
    add_db_argument,
    command_line,
    measurement_lines,
    non_negative_float,
    positive_int,
)


def _android_module():
    try:
        from toolkit.targets import android
    except ImportError:
        return None
    return android


def register(subparsers) -> None:
    p = subparsers.add_parser("profile", help="time a .tflite (latency, memory, energy) on the host or a phone",
                              description="Profile a .tflite model on a target and record the measurement. "
                                          "On the host, energy is an estimate from the host device profile; "
                                          "on a phone it is measured (or virtual on the virtual phone).")
    p.add_argument("model", help="a .tflite file")
    p.add_argument("--target", choices=("host", "android"), default=None,
                   help="where to run (default: host, or android when --device is given)")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (>= 1, default 1)")
    p.add_argument("--warmup", type=int, default=5, help="warm-up runs (default 5)")
    p.add_argument("--runs", type=positive_int, default=50, help="timed runs (default 50)")
    p.add_argument("--min-secs", type=non_negative_float, default=0.0,
                   help="keep running until this many seconds passed (default 0)")
    p.add_argument("--delegate", choices=("cpu", "xnnpack", "gpu", "nnapi"), default="xnnpack",
                   help="delegate (default xnnpack, as LiteRT applies on CPU)")
    p.add_argument("--op-profiling", action="store_true", help="collect a per-op profile (phones: benchmark_model's; host and virtual phone: "
                        "LiteRT's op profiler, over --runs extra runs)")
    p.add_argument("--host-profile", default="host", help="device profile for host energy estimates")
    p.add_argument("--json", action="store_true", help="print the measurement as JSON")
    p.add_argument("--predict", nargs="?", const="", default=None, metavar="PREDICTOR",
                   help="only predict latency from the model's kernels, measuring nothing: with a predictor file, or "
                        "the one `ferminet predictor fit` saved beside --db for the device (labelled predicted:<device>)")
    add_db_argument(p)
    android = _android_module()
    if android is not None:
        android.add_cli_arguments(p)
    p.set_defaults(func=run)


def run_predict(args: argparse.Namespace) -> int:
    import json

    from toolkit.cli.cmd_predictor import default_predictor_path
    from toolkit.predict import LatencyPredictor

    device = (getattr(args, "device", None) or ["host"])[0]
    path = args.predict or default_predictor_path(args.db, device, "latency_ms")
    prediction = LatencyPredictor.load(path).predict_file(args.model)
    if args.json:
        print(json.dumps({"model": args.model, **{k: getattr(prediction, k) for k in (
            "value", "uncertainty", "unit", "quantity", "source", "kernels", "unseen_kernels")}}))
    else:
        print(f"latency    {prediction.value:.3f} ms +- {prediction.uncertainty:.3f} (1 sigma)  "
              f"[{prediction.source}; predicted, not measured]")
        if prediction.unseen_kernels:
            print(f"note       {prediction.unseen_kernels} of {prediction.kernels} kernels are of types the predictor "
                  f"never saw; measure this model to be sure")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.predict is not None:
        return run_predict(args)
    from toolkit.convert import load_interpreter
    from toolkit.store import Store, check_store_writable
    from toolkit.targets import HostTarget, ProfileOptions

    options = ProfileOptions(
        num_threads=args.threads, warmup_runs=args.warmup, num_runs=args.runs, min_secs=args.min_secs,
        delegate=args.delegate, op_profiling=args.op_profiling,
        measure_energy=not getattr(args, "no_energy", False),
        allow_charging=getattr(args, "allow_charging", False))
    check_store_writable(args.db)  # before any work: a result that cannot be recorded is never made
    load_interpreter(args.model)  # a bad model fails here, before any target or device is touched
    phones = list(getattr(args, "device", None) or [])
    target_name = args.target or ("android" if phones or getattr(args, "devices", None) else "host")
    if target_name == "android":
        android = _android_module()
        if android is None:
            from toolkit.errors import TargetError

            raise TargetError("The Android target is not available in this installation")
        if args.devices == "all" or len(phones) > 1:
            return run_on_phones(args, options)
        target = android.AndroidTarget.from_cli_args(args)
    else:
        target = HostTarget(profile=args.host_profile)
    measurement = target.profile(Path(args.model), options)
    with Store(args.db) as store:
        run_id = store.record_run("profile", command_line(),
                                  {k: v for k, v in vars(args).items() if k != "func"},
                                  measurements=(measurement,))
    if args.json:
        print(measurement.to_json())
    else:
        print("\n".join(measurement_lines(measurement)))
        print(f"recorded as run {run_id} in {args.db}")
    return 0


def run_on_phones(args: argparse.Namespace, options) -> int:
    """``--device A --device B`` / ``--devices all``: the model measured on every phone at once, one run in the
    store holding each phone's measurement; a phone that could not measure it makes the command fail after the
    others are recorded."""
    import json

    from toolkit.errors import TargetError
    from toolkit.store import Store
    from toolkit.targets.farm import all_devices, profile_on_each

    phones = list(args.device or [])
    if args.devices == "all":
        phones = all_devices(args.adb_server, extra=phones)
    measured, failed = profile_on_each(phones, Path(args.model), options, backend=args.backend,
                                       adb_server=args.adb_server, benchmark_binary=args.benchmark_binary,
                                       thermal_timeout_s=args.thermal_timeout)
    run_id = None
    if measured:
        with Store(args.db) as store:
            run_id = store.record_run("profile", command_line(),
                                      {k: v for k, v in vars(args).items() if k != "func"},
                                      measurements=tuple(measured))
    if args.json:
        print(json.dumps([m.to_dict() for m in measured], indent=2, sort_keys=True))
    else:
        for m in measured:
            print("\n".join(measurement_lines(m)))
            print()
        if run_id is not None:
            print(f"measured on {len(measured)} of {len(phones)} phones; recorded as run {run_id} in {args.db}")
    if failed:
        raise TargetError(f"{len(failed)} of {len(phones)} phones could not measure {args.model}: "
                          + "; ".join(f"{serial}: {str(exc).splitlines()[0]}" for serial, exc in failed)
                          + (f" (the others are recorded as run {run_id})" if run_id else ""))
    return 0
