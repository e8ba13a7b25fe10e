import pytest

from toolkit.errors import InvalidArgumentError, ModelFileError
from toolkit.targets import HostTarget, ProfileOptions, get_target


def test_host_profile_measures_latency_and_estimates_energy(int8_tflite):
    path, _ = int8_tflite
    target = get_target("host")
    m = target.profile(path, ProfileOptions(num_threads=1, warmup_runs=3, num_runs=40))
    lat = m.latency
    assert m.source == "measured:host" and m.target == "host"
    assert lat.count == 40 and len(lat.samples_ms) == 40
    assert 0 < lat.min_ms <= lat.median_ms <= lat.p90_ms <= lat.max_ms
    assert lat.init_ms > 0 and lat.first_inference_ms > 0 and m.peak_memory_mb > 10
    assert m.size_kb == pytest.approx(path.stat().st_size / 1024)
    e = m.energy
    # Estimated from the host profile, never labelled measured.
    assert e.source == "estimated:host" and e.method == "power_model"
    power_mw = target.device_profile.estimate_power_mw(1)
    assert e.energy_per_inference_mj == pytest.approx(power_mw * lat.median_ms / 1000)
    assert e.inferences_per_joule == pytest.approx(1000 / e.energy_per_inference_mj)
    assert 0 < e.uncertainty_mj < e.energy_per_inference_mj


def test_min_secs_extends_the_run_and_threads_are_recorded(int8_tflite):
    m = HostTarget().profile(int8_tflite[0], ProfileOptions(num_threads=2, num_runs=1, min_secs=0.3,
                                                             measure_energy=False))
    assert m.latency.count > 1 and m.energy is None
    assert m.provenance_dict()["threads"] == "2" and m.options.num_threads == 2


def test_bad_options_and_models(tmp_path, int8_tflite):
    with pytest.raises(InvalidArgumentError, match="Received: num_threads=0"):
        ProfileOptions(num_threads=0)
    with pytest.raises(InvalidArgumentError, match="delegate='gpu'"):
        HostTarget().profile(int8_tflite[0], ProfileOptions(delegate="gpu"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError):
        HostTarget().profile(junk)
    with pytest.raises(InvalidArgumentError, match="Unknown target 'fpga'"):
        get_target("fpga")
