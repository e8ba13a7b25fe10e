import json

import pytest

from device_profiles import SCHEMA_PATH, DeviceProfileError, list_profiles, load_profile


def test_bundled_profiles_load_and_cite_sources():
    names = list_profiles()
    assert {"pixel_6", "pixel_4a", "galaxy_s21", "moto_e_2020", "host"} <= set(names)
    for name in names:
        p = load_profile(name)
        assert p.sources and p.clusters and p.power_model.idle_mw >= 0
        if p.kind == "phone":
            assert p.battery is not None and p.abi == "arm64-v8a"


def test_pixel_6_numbers_are_its_power_profile():
    p = load_profile("pixel_6")
    assert [len(c.cpus) for c in p.clusters] == [4, 2, 2]
    assert p.big_cluster().core_power_ma[-1] == 2050.0  # cpu.core_power.cluster2, top frequency
    # 1 thread on an X1 at max: (2050 + 0 cluster + 2.35 active) mA x 3.85 V
    assert p.estimate_power_mw(1) == pytest.approx((2050 + 2.35) * 3.85)
    assert p.cpus_for_threads(3) == (5, 6, 7)
    assert "odpm" in p.energy_sources and p.odpm_rails


def test_power_rises_with_threads_and_spills_to_next_cluster():
    p = load_profile("pixel_4a")
    one, two, three = (p.estimate_power_mw(n) for n in (1, 2, 3))
    assert one < two < three
    assert p.cpus_for_threads(3) == (5, 6, 7)
    assert p.power_model.active_power_mw("cluster0", 1, freq_khz=300000) < p.power_model.active_power_mw("cluster0", 1)


def test_vendor_conventions_differ():
    assert load_profile("pixel_6").battery.current_sign_discharge == -1
    s21 = load_profile("galaxy_s21").battery
    assert s21.current_unit == "mA" and s21.current_sign_discharge == 1


def test_schema_file_lists_every_field_the_loader_requires():
    schema = json.loads(SCHEMA_PATH.read_text())
    data = json.loads((SCHEMA_PATH.parent.parent / "pixel_6.json").read_text())
    assert set(schema["required"]) == set(data)


def _broken(tmp_path, edit):
    data = json.loads(open(load_profile("pixel_6").path).read())
    edit(data)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.pop("soc"), "field soc: is missing"),
    (lambda d: d.update(sdk="34"), "field sdk: must be int. Received: '34'"),
    (lambda d: d.update(colour="blue"), "field colour: unknown field"),
    (lambda d: d["clusters"][1].update(cpus=[3, 4]), "CPUs [3] belong to two clusters"),
    (lambda d: d["clusters"][0]["core_power_ma"].__setitem__(0, -1.0), "currents must be >= 0"),
    (lambda d: d["clusters"][0]["core_power_ma"].pop(), "one current per frequency"),
    (lambda d: d.update(battery=None), "battery: is required for a phone"),
    (lambda d: d["battery"].update(current_sign_discharge=0), "must be -1 or 1"),
    (lambda d: d.update(odpm_rails=[]), "lists no rails"),
])
def test_invalid_profiles_name_file_field_and_value(tmp_path, edit, message):
    path = _broken(tmp_path, edit)
    with pytest.raises(DeviceProfileError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_profile_and_bad_json(tmp_path):
    with pytest.raises(DeviceProfileError, match="No device profile 'nokia_3310'.*pixel_6"):
        load_profile("nokia_3310")
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(DeviceProfileError, match="not valid JSON"):
        load_profile(bad)
