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


def test_constant_power_gives_exact_energy():
    conv = Conventions("uA", -1, "uV", False)
    base = parse_power_samples(lines(-100_000), conv)   # 0.1 A x 3.85 V = 385 mW idle
    run = parse_power_samples(lines(-600_000, t0=200), conv)  # 2310 mW while running
    report = compute_energy(base, run, inference_ms=2.0, conventions=conv)
    assert report.baseline_power_mw == pytest.approx(385.0) and report.avg_power_mw == pytest.approx(2310.0)
    assert report.energy_per_inference_mj == pytest.approx((2310 - 385) * 2.0 / 1000)
    assert report.inferences_per_joule == pytest.approx(1000 / report.energy_per_inference_mj)
    assert report.method == "fuel_gauge" and report.sample_count == 20 and report.sample_rate_hz == pytest.approx(20)


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
    assert report.uncertainty_mj > 0 and report.below_resolution and report.energy_per_inference_mj == 0.0


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
