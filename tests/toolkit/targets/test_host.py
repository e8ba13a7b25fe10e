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
    assert lat.init_ms > 0 and lat.first_inference_ms > 0 and m.process_peak_memory_mb > 10
    # The model's share is its increment over the runtime's baseline, far below the whole process's peak.
    assert 0 <= m.memory_increment_mb < m.process_peak_memory_mb / 2
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


def test_memory_increment_follows_the_model_not_the_process(int8_tflite, tmp_path):
    """A model with 8 MB of float32 weights adds about 8 MB over the runtime's baseline; the small CNN adds
    little. The whole-process peak (Python + NumPy + LiteRT) is labelled as such, not as the model's."""
    import keras
    import numpy as np
    import tensorflow as tf

    big = keras.Sequential([keras.Input((2048,)), keras.layers.Dense(1024, use_bias=False)])
    big.layers[0].set_weights([np.random.default_rng(0).standard_normal((2048, 1024)).astype("float32")])
    path = tmp_path / "big_fp32.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(big).convert())
    options = ProfileOptions(num_runs=5, warmup_runs=1, measure_energy=False, delegate="cpu")
    small_m = HostTarget().profile(int8_tflite[0], options)
    big_m = HostTarget().profile(path, options)
    weights_mb = 2048 * 1024 * 4 / 2**20
    assert big_m.memory_increment_mb >= 0.9 * weights_mb > small_m.memory_increment_mb
    assert big_m.memory_increment_mb - small_m.memory_increment_mb >= 0.75 * weights_mb
    # The process baseline is there in both, and only in the process peak.
    for m in (small_m, big_m):
        baseline = float(m.provenance_dict()["baseline_rss_mb"])
        assert m.process_peak_memory_mb >= baseline + m.memory_increment_mb - 1.0
        assert "peak RSS while loading and running the model" in m.provenance_dict()["memory_increment"]


def test_estimate_uncertainty_is_the_medians_not_one_preempted_run():
    """The host estimate scales the median latency; one run preempted for 100 ms must not make it 40x uncertain."""
    from toolkit.targets.base import LatencyStats

    target = HostTarget()
    steady = LatencyStats.from_samples([1.0, 1.02, 0.98, 1.01] * 10, init_ms=1.0, first_inference_ms=1.0)
    spiked = LatencyStats.from_samples([1.0, 1.02, 0.98, 1.01] * 10 + [100.0], init_ms=1.0, first_inference_ms=1.0)
    a = target._estimate_energy(steady, ProfileOptions())
    b = target._estimate_energy(spiked, ProfileOptions())
    assert b.uncertainty_mj < 0.35 * b.energy_per_inference_mj
    assert b.uncertainty_mj == pytest.approx(a.uncertainty_mj, rel=0.1)
    assert not b.below_resolution and b.resolution_mj is None  # an estimate has no measurement floor
