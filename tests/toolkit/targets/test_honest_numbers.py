"""Numbers that never pretend: a below-resolution energy, statistics benchmark_model did not print, a delegate that
did not run. Real parsers on recorded real outputs; the real store, report tables and CLI text."""
import sqlite3
from pathlib import Path

import pytest

from android_harness.energy import Conventions, compute_energy, parse_power_samples
from android_harness.parsers import parse_benchmark_output
from android_harness.profile import delegate_outcome
from toolkit.cli._common import measurement_lines
from toolkit.errors import InvalidArgumentError
from toolkit.report import tables
from toolkit.store import Store
from toolkit.synthesis.requirements import check, parse_requirements
from toolkit.targets.android import latency_from_benchmark
from toolkit.targets.base import EnergyResult, LatencyStats, Measurement, ProfileOptions

REC = Path(__file__).resolve().parents[2] / "recordings" / "benchmark_model"


def _below_resolution_energy() -> EnergyResult:
    """The harness's own computation on a load the gauge cannot resolve (3.85 mW net in ~40 mW noise)."""
    conv = Conventions("uA", -1, "uV", False)
    base = "\n".join(f"{i * 0.05:.2f} {-100_000 - (i % 2) * 20_000} 3850000" for i in range(40))
    run = "\n".join(f"{10 + i * 0.05:.2f} {-101_000 - (i % 2) * 20_000} 3850000" for i in range(40))
    e = compute_energy(parse_power_samples(base, conv), parse_power_samples(run, conv), 1.0, conv)
    assert e.below_resolution
    return EnergyResult(energy_per_inference_mj=e.energy_per_inference_mj, inferences_per_joule=e.inferences_per_joule,
                        avg_power_mw=e.avg_power_mw, baseline_power_mw=e.baseline_power_mw, method=e.method,
                        source="measured:TESTSERIAL", uncertainty_mj=e.uncertainty_mj, sample_count=e.sample_count,
                        below_resolution=True, resolution_mj=e.resolution_mj, distinct_readings=e.distinct_readings)


def _measurement(tmp_path, energy: EnergyResult) -> Measurement:
    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")
    latency = LatencyStats(init_ms=1.0, first_inference_ms=2.0, mean_ms=1.5, median_ms=None, p90_ms=None,
                           std_ms=0.1, min_ms=1.2, max_ms=2.0, count=50)
    return Measurement(target="android", device="TESTSERIAL", source="measured:TESTSERIAL", model_path=str(model),
                       model_sha256="ab" * 32, size_kb=0.001, latency=latency, options=ProfileOptions(delegate="gpu"),
                       energy=energy, delegate_used="xnnpack", delegate_fallback=True,
                       process_peak_memory_mb=80.0, memory_increment_mb=12.5)


def test_below_resolution_energy_is_stored_shown_and_fails_its_requirement(tmp_path):
    e = _below_resolution_energy()
    m = _measurement(tmp_path, e)
    bound = f"< {e.resolution_mj:.4g} mJ"
    # The CLI's lines: the bound, never "0.0000 mJ" or "inf inferences/J".
    text = "\n".join(measurement_lines(m))
    assert f"below resolution ({bound}) per inference" in text and "inferences/J n/a" in text
    assert "0.0000 mJ" not in text and "inf" not in text.replace("inference", "")
    assert "model increment 12.5 MB" in text and "whole-process peak 80.0 MB" in text
    assert "delegate=xnnpack" in text and "GPU delegate did not run" in text
    # The store: NULL energy and inferences/J, the flag and the bound; the numbers under the delegate that ran.
    db = tmp_path / "r.db"
    with Store(db) as store:
        store.add_measurement(m)
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT energy_mj, inferences_per_j, energy_below_resolution, energy_resolution_mj, "
                           "delegate, delegate_requested, delegate_fallback, median_ms, p90_ms, mean_ms, "
                           "memory_increment_mb, process_peak_memory_mb FROM measurements").fetchone()
    assert row[:3] == (None, None, 1) and row[3] == pytest.approx(e.resolution_mj)
    assert row[4:7] == ("xnnpack", "gpu", 1) and row[7:10] == (None, None, 1.5) and row[10:] == (12.5, 80.0)
    # The report tables read it back the same way.
    measurements, _ = tables.load(db)
    summary = tables.summary(measurements)
    assert summary.loc[0, "energy"] == f"below resolution ({bound})"
    assert summary.loc[0, "delegate"] == "xnnpack" and summary.loc[0, "delegate_fallback"] == 1
    # A requirement on energy is not met by a value below resolution, even a bound far above the limit.
    reqs = parse_requirements("energy_mj<=1000,accuracy>=0.5")
    metrics = {"energy_mj": e.energy_per_inference_mj, "accuracy": 0.9}
    ok, reason, violation = check(reqs, metrics, m.unmeasured())
    assert not ok and reason == f"energy_mj<=1000 (energy below resolution ({bound}))" and violation > 0


def test_a_below_resolution_energy_cannot_carry_a_number():
    with pytest.raises(InvalidArgumentError, match="below-resolution energy has no value"):
        EnergyResult(energy_per_inference_mj=0.0, inferences_per_joule=None, avg_power_mw=1.0, baseline_power_mw=1.0,
                     method="fuel_gauge", source="measured:x", uncertainty_mj=0.1, below_resolution=True,
                     resolution_mj=0.2)


def test_latency_is_what_benchmark_model_printed():
    # No percentiles printed (a Qualcomm phone's run): median and p90 are empty, not the mean or p95 renamed.
    plain = latency_from_benchmark(parse_benchmark_output((REC / "yolov5s_fp32_nnapi_readme.txt").read_text()))
    assert plain.mean_ms == pytest.approx(249.684) and plain.median_ms is None and plain.p90_ms is None
    assert plain.p95_ms is None and plain.max_ms == pytest.approx(254.474)
    # p5/median/p95 printed (the benchmark app's logcat): median and p95 as printed; p90 was never printed.
    app = latency_from_benchmark(parse_benchmark_output((REC / "android_app_logcat_lines.txt").read_text()))
    assert app.median_ms == pytest.approx(141.253) and app.p95_ms == pytest.approx(187.533) and app.p90_ms is None
    assert app.mean_ms == pytest.approx(145.528)


def test_numbers_are_recorded_under_the_delegate_that_ran():
    fallback = parse_benchmark_output((REC / "rpi4_gpu_requested_unsupported_xnnpack_partial.txt").read_text())
    assert delegate_outcome(fallback, "gpu")[:2] == ("xnnpack", True)
    nnapi_unused = parse_benchmark_output(
        "INFO: Created TensorFlow Lite delegate for NNAPI.\n"
        "INFO: Though NNAPI delegate is explicitly applied, the model graph will not be executed by the delegate.\n"
        "INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, Inference (avg): 4\n")
    assert delegate_outcome(nnapi_unused, "nnapi")[:2] == ("cpu", True)
    full = parse_benchmark_output(
        "INFO: Explicitly applied GPU delegate, and the model graph will be completely executed by the delegate.\n"
        "INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, Inference (avg): 4\n")
    assert delegate_outcome(full, "gpu") == ("gpu", False, None)


def test_report_page_says_below_resolution_and_draws_no_invented_median(tmp_path):
    from toolkit.report import build_report

    e = _below_resolution_energy()
    with Store(tmp_path / "r.db") as store:
        store.record_run("profile", measurements=(_measurement(tmp_path, e),))
    build_report(tmp_path / "r.db", tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    assert f"below resolution (&lt; {e.resolution_mj:.4g} mJ)" in page
    csv = (tmp_path / "out" / "measurements.csv").read_text().splitlines()
    row = dict(zip(csv[0].split(","), csv[1].split(",")))
    assert row["energy_mj"] == row["inferences_per_j"] == row["median_ms"] == row["p90_ms"] == ""
    assert row["delegate"] == "xnnpack" and row["delegate_fallback"] == "1"
