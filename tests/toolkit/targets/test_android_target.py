"""`ferminet profile --device` against a running virtual phone: printed, stored, labelled virtual."""
import sqlite3

import pytest

from android_harness.virtual import VirtualPhone
from toolkit.cli.main import main
from toolkit.targets import ProfileOptions, get_target


def test_android_target_measurement(tiny_int8):
    with VirtualPhone("pixel_6") as phone:
        target = get_target("android", device=phone.serial)
        m = target.profile(tiny_int8, ProfileOptions(num_threads=1, min_secs=0.5))
        again = target.profile(tiny_int8, ProfileOptions(num_threads=1, min_secs=0.5))
    # The first measurement takes its own idle baseline; the next one through the same target reuses it, and says so.
    assert m.provenance_dict()["energy_baseline"] == "fresh: no earlier baseline on this phone"
    assert again.provenance_dict()["energy_baseline"].startswith("reused: taken ")
    assert float(again.provenance_dict()["energy_baseline_age_s"]) > 0
    assert m.target == "android" and m.source == "virtual:pixel_6" and m.energy.source == "virtual:pixel_6"
    assert m.latency.count >= 50 and 0 < m.latency.min_ms <= m.latency.median_ms <= m.latency.max_ms
    assert m.energy.method == "odpm" and m.energy.trace and m.energy.rails
    assert not m.energy.below_resolution and m.energy.energy_per_inference_mj > m.energy.resolution_mj > 0
    # What the virtual benchmark_model printed: p5/median/p95, no p90.
    assert m.latency.median_ms is not None and m.latency.p95_ms >= m.latency.median_ms and m.latency.p90_ms is None
    assert m.delegate == "cpu" and not m.delegate_fallback
    assert 0 < m.memory_increment_mb < m.process_peak_memory_mb
    prov = m.provenance_dict()
    assert prov["model"] == "Pixel 6" and prov["thermal_before"] == "NONE" and "taskset" in prov["command"]


def test_cli_profile_device_prints_and_stores(tiny_int8, tmp_path, capsys):
    db = tmp_path / "r.db"
    with VirtualPhone("pixel_4a") as phone:
        code = main(["profile", str(tiny_int8), "--device", phone.serial, "--min-secs", "1.5", "--db", str(db)])
        out = capsys.readouterr().out
        assert code == 0
        for text in ("latency (ms)", "model increment", "whole-process peak", "mJ/inference", "inferences/J",
                     "VIRTUAL: virtual:pixel_4a",
                     "method fuel_gauge", "model=Pixel 4a"):
            assert text in out
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT source, energy_source, energy_method, device, trace_json FROM measurements").fetchone()
        assert row[0] == row[1] == "virtual:pixel_4a" and row[2] == "fuel_gauge" and row[3] == phone.serial
        assert len(row[4]) > 20
        # A failing run (charger connected) writes nothing.
        phone.set_charging("usb")
        code = main(["profile", str(tiny_int8), "--device", phone.serial, "--db", str(db)])
        err = capsys.readouterr().err
        assert code != 0 and "is charging (usb)" in err and len(err.strip().splitlines()) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 1


@pytest.fixture
def tiny_int8(int8_tflite):
    return int8_tflite[0]


def test_gpu_requested_on_a_phone_without_one_is_stored_under_the_cpu(tiny_int8, tmp_path, capsys):
    """The virtual phone has no GPU: benchmark_model says the delegate failed and runs on the CPU. The numbers are
    stored under the CPU, flagged, with the request kept."""
    db = tmp_path / "r.db"
    with VirtualPhone("pixel_6") as phone:
        code = main(["profile", str(tiny_int8), "--device", phone.serial, "--delegate", "gpu", "--no-energy",
                     "--min-secs", "0.2", "--db", str(db)])
    out = capsys.readouterr().out
    assert code == 0 and "delegate=cpu" in out and "the GPU delegate did not run" in out
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT delegate, delegate_requested, delegate_fallback, provenance_json "
                           "FROM measurements").fetchone()
    assert row[:3] == ("cpu", "gpu", 1) and "fell back to cpu" in row[3]
