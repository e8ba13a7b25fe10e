import pytest

from android_harness.energy import (
    Conventions,
    compute_energy,
    detect_conventions,
    odpm_net_power,
    parse_power_samples,
)
from android_harness.errors import EnergyMeasurementError


def lines(current, voltage=3_850_000, n=20, t0=100.0, dt=0.05):
    return "\n".join(f"{t0 + i * dt:.2f} {current} {voltage}" for i in range(n))


def wobbly(current, n=20, t0=100.0, dt=0.05, wobble=2_000):
    """A gauge that reads current +- wobble uA, alternating, one new reading per sample."""
    return "\n".join(f"{t0 + i * dt:.2f} {current + (wobble if i % 2 else -wobble)} 3850000" for i in range(n))


def test_constant_power_gives_exact_energy():
    conv = Conventions("uA", -1, "uV", False)
    base = parse_power_samples(wobbly(-100_000), conv)   # 0.1 A x 3.85 V = 385 mW idle
    run = parse_power_samples(wobbly(-600_000, t0=200), conv)  # 2310 mW while running
    report = compute_energy(base, run, inference_ms=2.0, conventions=conv)
    assert report.baseline_power_mw == pytest.approx(385.0) and report.avg_power_mw == pytest.approx(2310.0)
    assert report.energy_per_inference_mj == pytest.approx((2310 - 385) * 2.0 / 1000)
    assert report.inferences_per_joule == pytest.approx(1000 / report.energy_per_inference_mj)
    assert report.method == "fuel_gauge" and report.sample_count == 20 and report.sample_rate_hz == pytest.approx(20)
    assert not report.below_resolution and report.distinct_readings == 20
    # A gauge that never changed its reading in either phase gives no spread to judge by: not resolved.
    flat = compute_energy(parse_power_samples(lines(-100_000), conv), parse_power_samples(lines(-600_000), conv),
                          2.0, conv)
    assert flat.below_resolution and flat.energy_per_inference_mj is None


def test_vendor_units_and_signs_normalise_to_the_same_power():
    samsung = Conventions("mA", 1, "uV", False)
    pixel = Conventions("uA", -1, "uV", False)
    a = parse_power_samples(lines(600), samsung)
    b = parse_power_samples(lines(-600_000), pixel)
    assert [s.power_mw for s in a] == pytest.approx([s.power_mw for s in b])
    assert detect_conventions(lines(-600_000)) == Conventions("uA", -1, "uV", True)
    assert detect_conventions(lines(450, voltage=3900)) == Conventions("mA", 1, "mV", True)


def test_noise_sets_the_uncertainty_and_tiny_loads_are_flagged():
    conv = Conventions("uA", -1, "uV", False)
    noisy = "\n".join(f"{i * 0.05:.2f} {-100_000 - (i % 2) * 40_000} 3850000" for i in range(20))
    report = compute_energy(parse_power_samples(noisy, conv), parse_power_samples(noisy, conv), 1.0, conv)
    # Below the noise floor: no energy (not 0 mJ), no inferences/J (not infinity), and the bound it is below.
    assert report.uncertainty_mj > 0 and report.below_resolution
    assert report.energy_per_inference_mj is None and report.inferences_per_joule is None
    assert report.resolution_mj == pytest.approx(2 * report.uncertainty_mj)


def test_a_small_load_just_inside_the_resolution_is_not_reported_as_a_number():
    conv = Conventions("uA", -1, "uV", False)
    base = "\n".join(f"{i * 0.05:.2f} {-100_000 - (i % 2) * 20_000} 3850000" for i in range(40))
    run = "\n".join(f"{10 + i * 0.05:.2f} {-101_000 - (i % 2) * 20_000} 3850000" for i in range(40))
    report = compute_energy(parse_power_samples(base, conv), parse_power_samples(run, conv), 1.0, conv)
    assert report.net_power_mw == pytest.approx(3.85) and report.below_resolution  # 3.85 mW net, noise ~10x
    assert report.energy_per_inference_mj is None and report.resolution_mj > 3.85 * 1.0 / 1000


def test_uncertainty_counts_distinct_gauge_readings_not_samples():
    """A gauge that updates at 1 Hz read at 20 Hz repeats each reading 20 times: that is 5 readings, not 100
    samples, and the uncertainty must not shrink by sqrt(20) for the copies."""
    conv = Conventions("uA", -1, "uV", False)
    readings = [-600_000, -640_000, -610_000, -650_000, -620_000]
    base_readings = [-100_000, -130_000, -110_000, -140_000, -120_000]

    def trace(values, repeat, t0):
        return "\n".join(f"{t0 + i * 0.05:.2f} {v} 3850000"
                         for i, v in enumerate(v for v in values for _ in range(repeat)))

    slow = compute_energy(parse_power_samples(trace(base_readings, 20, 0), conv),
                          parse_power_samples(trace(readings, 20, 10), conv), 2.0, conv)
    fast = compute_energy(parse_power_samples(trace(base_readings, 1, 0), conv),
                          parse_power_samples(trace(readings, 1, 10), conv), 2.0, conv)
    assert slow.sample_count == 100 and slow.distinct_readings == 5 and slow.baseline_distinct_readings == 5
    assert fast.sample_count == 5 and fast.distinct_readings == 5
    assert slow.energy_per_inference_mj == pytest.approx(fast.energy_per_inference_mj)
    assert slow.uncertainty_mj == pytest.approx(fast.uncertainty_mj)
    # A gauge that updated once during the run: one observation, so a larger uncertainty than five give.
    frozen = compute_energy(parse_power_samples(trace(base_readings, 20, 0), conv),
                            parse_power_samples(trace([-620_000], 100, 10), conv), 2.0, conv)
    assert frozen.distinct_readings == 1 and frozen.uncertainty_mj > slow.uncertainty_mj


def test_too_few_samples_refused():
    conv = Conventions("uA", -1, "uV", False)
    with pytest.raises(EnergyMeasurementError, match="Too few power samples"):
        compute_energy(parse_power_samples(lines(-1, n=2), conv), parse_power_samples(lines(-1), conv), 1.0, conv)


def test_odpm_rails_net_power_and_counter_reset():
    base_start = {"CPU": (0, 0), "MIF": (0, 0)}
    base_end = {"CPU": (1000, 50_000), "MIF": (1000, 20_000)}       # 50 mW and 20 mW idle
    run_start = {"CPU": (2000, 100_000), "MIF": (2000, 40_000)}
    run_end = {"CPU": (4000, 2_100_000), "MIF": (4000, 80_000)}      # 1000 mW and 20 mW
    rails = {r.rail: r.power_mw for r in odpm_net_power(base_start, base_end, run_start, run_end)}
    assert rails == pytest.approx({"CPU": 950.0, "MIF": 0.0})
    with pytest.raises(EnergyMeasurementError, match="went backwards"):
        odpm_net_power(base_start, base_end, run_start, {"CPU": (4000, 1), "MIF": (4000, 80_000)})
