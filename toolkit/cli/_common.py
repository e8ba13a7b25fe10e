"""Shared argument helpers and output formatting for the CLI commands."""
from __future__ import annotations

import argparse
import shlex
import sys

from toolkit.targets.base import Measurement


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}. Received: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}. Received: {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0. Received: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0. Received: {value}")
    return value


def add_db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default="ferminet.db", help="results store (SQLite) to record into "
                        "(default: ./ferminet.db)")


def add_data_arguments(parser: argparse.ArgumentParser, default: str | None = "fashion_mnist") -> None:
    parser.add_argument("--data", default=default, required=default is None,
                        help="dataset: fashion_mnist, mnist, cifar10, an .npz (x_train,y_train,x_test,y_test) or an "
                             f"image folder (default: {default})")
    parser.add_argument("--data-path", default=None,
                        help="where the dataset's files are (else $FERMINET_DATA, the Keras cache, "
                             "/usr/share/datasets, download)")


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["ferminet"] + sys.argv[1:])


def _fmt(value, spec: str = ".3f", unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:{spec}}{unit}"


def measurement_lines(m: Measurement) -> list[str]:
    """Human-readable lines for one measurement; every number says where it came from."""
    lat = m.latency
    lines = [
        f"model          {m.model_path}  ({m.size_kb:.1f} KB, sha256 {m.model_sha256[:12]})",
        f"target         {m.target} {m.device}   latency source: {m.source}",
        f"options        threads={m.options.num_threads} delegate={m.delegate} "
        f"warmup={m.options.warmup_runs} timed runs={lat.count}",
        f"init           {lat.init_ms:.2f} ms   first inference {lat.first_inference_ms:.3f} ms",
        f"latency (ms)   median {_fmt(lat.median_ms)}  mean {lat.mean_ms:.3f}  p90 {_fmt(lat.p90_ms)}  "
        + (f"p95 {lat.p95_ms:.3f}  " if lat.p95_ms is not None else "")
        + f"std {lat.std_ms:.3f}  min {lat.min_ms:.3f}  max {lat.max_ms:.3f}  (n={lat.count})",
        f"memory         model increment {_fmt(m.memory_increment_mb, '.1f', ' MB')}   "
        f"whole-process peak {_fmt(m.process_peak_memory_mb, '.1f', ' MB')}",
    ]
    if m.delegate_fallback:
        lines.append(f"WARNING        the {m.options.delegate.upper()} delegate did not run; these numbers are "
                     f"{m.delegate}'s")
    if m.macs is not None:
        lines.append(f"MACs           {m.macs:,}")
    e = m.energy
    if e is None:
        lines.append("energy         not measured")
    else:
        kind = e.source.split(":", 1)[0].upper()
        value = (f"{e.energy_per_inference_mj:.4f} mJ/inference ± {e.uncertainty_mj:.4f}"
                 if e.energy_per_inference_mj is not None else f"{e.text()} per inference")
        per_joule = (f"{e.inferences_per_joule:,.0f} inferences/J" if e.inferences_per_joule is not None
                     else "inferences/J n/a")
        readings = f", {e.distinct_readings} gauge readings" if e.distinct_readings else ""
        lines += [
            f"energy         {value}  [{kind}: {e.source}, method {e.method}]",
            f"               {per_joule}   avg power {e.avg_power_mw:.0f} mW "
            f"(baseline {e.baseline_power_mw:.0f} mW)" + (f", {e.sample_count} samples" if e.sample_count else "")
            + readings,
        ]
        for rail in e.rails:
            lines.append(f"   rail        {rail.rail}: {rail.energy_mj:.4f} mJ")
    if m.throttled:
        lines.append("WARNING        the device throttled during this run")
    if m.op_profile:
        lines.append("top ops        " + ", ".join(f"{o.node_type} {o.avg_ms:.3f} ms ({o.percent:.1f}%)"
                                                  for o in sorted(m.op_profile, key=lambda o: -o.avg_ms)[:5]))
    prov = m.provenance_dict()
    keys = [k for k in ("model", "soc", "android_release", "cpu", "thermal_before", "thermal_after",
                        "battery_before", "battery_after", "governor", "runtime") if k in prov]
    if keys:
        lines.append("provenance     " + "; ".join(f"{k}={prov[k]}" for k in keys))
    return lines
