"""Parsers on recorded real outputs (tests/recordings, sources in SOURCES.md) and on format variants."""
from pathlib import Path

import pytest

from android_harness.parsers import (
    BatteryStatus,
    parse_adb_devices,
    parse_benchmark_output,
    parse_dumpsys_battery,
    parse_getprop,
    parse_odpm_energy,
    parse_power_supply_uevent,
    parse_thermalservice,
)

REC = Path(__file__).resolve().parents[1] / "recordings"


def rec(name: str) -> str:
    return (REC / name).read_text()


def test_op_profiling_run_with_scientific_notation():
    r = parse_benchmark_output(rec("benchmark_model/yocto_qemu_mobilenet_v1_op_profiling.txt"))
    assert not r.failed and r.num_threads == 4 and r.model_size_mb == pytest.approx(16.9008)
    assert r.init_us == 17187 and r.first_inference_us == 3512391
    assert r.inference_avg_us == pytest.approx(2.95034e6) and r.inference_std_us == 109798
    assert r.inference_count == 50 and r.inference_min_us == 2727568 and r.inference_max_us == 3189954
    assert r.memory_delta_mb == pytest.approx(46.0859) and r.peak_memory_mb is None
    # The regular-run op table only (31 nodes), not the initialisation table (AllocateTensors).
    assert len(r.op_profile) == 31 and r.op_profile[0].node_type == "CONV_2D"
    assert r.op_profile[10].avg_ms == pytest.approx(277.374) and "Conv2d_5_pointwise" in r.op_profile[10].name
    assert {s.node_type: s.count for s in r.op_summary}["DEPTHWISE_CONV_2D"] == 13
    assert sum(o.percent for o in r.op_profile) == pytest.approx(100, abs=0.05)


def test_qualcomm_phone_run_with_peak_memory():
    r = parse_benchmark_output(rec("benchmark_model/yolov5s_fp32_nnapi_readme.txt"))
    assert r.inference_avg_us == 249684 and r.warmup_avg_us == 304586
    # Older benchmark_model printed the growth of the peak since the tool started as "Peak memory footprint (MB):
    # init=.. overall=.." (later renamed "Memory footprint delta ..."): the model's increment, not a process peak.
    assert r.memory_delta_mb == pytest.approx(138.809) and r.peak_memory_mb is None
    assert r.inference_count == 50 and r.op_profile == ()
    # No percentiles printed: none are made up (no median from the mean, no p90 from p95 or the max).
    assert r.percentiles == () and r.percentile("median") is None and r.percentile("p90") is None


def test_whole_process_peak_is_the_periodic_monitoring_line():
    r = parse_benchmark_output("INFO: Memory footprint delta from the start of the tool (MB): init=3.5 overall=20.25\n"
                               "INFO: Overall peak memory footprint (MB) via periodic monitoring: 61.5\n"
                               "INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
                               "Inference (avg): 4\n")
    assert r.memory_delta_mb == pytest.approx(20.25) and r.peak_memory_mb == pytest.approx(61.5)


def test_gpu_requested_but_unsupported_runs_on_xnnpack():
    """A real run (Raspberry Pi 4, --use_gpu=true): the GPU delegate never ran, XNNPACK ran part of the graph."""
    r = parse_benchmark_output(rec("benchmark_model/rpi4_gpu_requested_unsupported_xnnpack_partial.txt"))
    assert not r.failed and r.inference_avg_us == pytest.approx(74481.6) and r.inference_count == 50
    assert r.delegate_ran("gpu") is False and r.delegate_ran("xnnpack") is True
    assert {(d.name, d.coverage) for d in r.delegates} == {("gpu", "failed"), ("xnnpack", "partial")}
    assert r.memory_delta_mb == pytest.approx(64.8633) and r.percentile("median") is None


@pytest.mark.parametrize("line,name,ran,coverage", [
    # The messages of tensorflow/lite/tools/benchmark/benchmark_tflite_model.cc (BenchmarkTfLiteModel::Init).
    ("INFO: Explicitly applied GPU delegate, and the model graph will be completely executed by the delegate.",
     "gpu", True, "full"),
    ("INFO: Explicitly applied NNAPI delegate, and the model graph will be partially executed by the delegate w/ "
     "3 delegate kernels.", "nnapi", True, "partial"),
    ("INFO: Though NNAPI delegate is explicitly applied, the model graph will not be executed by the delegate.",
     "nnapi", False, "none"),
    ("ERROR: Failed to apply GPU delegate.", "gpu", False, "failed"),
    ("VERBOSE: Replacing 0 out of 31 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 0 partitions.",
     "gpu", False, "none"),
])
def test_delegate_messages(line, name, ran, coverage):
    r = parse_benchmark_output("INFO: Created TensorFlow Lite delegate for GPU.\nINFO: Created TensorFlow Lite "
                               "delegate for NNAPI.\n" + line + "\nINFO: Inference timings in us: Init: 1, First "
                               "inference: 2, Warmup (avg): 3, Inference (avg): 4\n")
    assert r.delegate_ran(name) is ran and r.delegates[-1].coverage == coverage


def test_benchmark_app_logcat_lines_with_percentiles():
    r = parse_benchmark_output(rec("benchmark_model/android_app_logcat_lines.txt"))
    assert r.inference_avg_us == 145528 and r.init_us == 92318
    assert r.percentile("median") == 141253 and r.percentile("p95") == 187533 and r.inference_count == 25
    assert r.memory_delta_mb == pytest.approx(73.4102)


def test_full_logcat_prefix_and_info_prefix_variants():
    text = ("11-20 10:01:02.345  4242  4242 I tflite  : INFO: Inference timings in us: Init: 5, First inference: 7, "
            "Warmup (avg): 6.5, Inference (avg): 1.25e+03\n"
            "INFO: Peak memory footprint (MB): init=1.5 overall=9.75\n")
    r = parse_benchmark_output(text)
    assert r.inference_avg_us == 1250 and r.memory_delta_mb == pytest.approx(9.75)


def test_old_average_timings_format():
    r = parse_benchmark_output("Average inference timings in us: Warmup: 41890.5, Init: 33410, no stats: 40021.7")
    assert (r.warmup_avg_us, r.init_us, r.inference_avg_us) == (41890.5, 33410, 40021.7)


def test_op_profiling_csv_mode():
    text = ("node type,first,avg_ms,%,cdf%,mem KB,times called,name\n"
            "CONV_2D,1.2,1.1,60.0,60.0,0,1,conv1\nADD,0.5,0.7,40.0,100.0,0,1,add\n"
            "Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, Inference (avg): 4\n")
    text = text.replace("avg_ms", "avg ms")
    r = parse_benchmark_output(text)
    assert [o.node_type for o in r.op_profile] == ["CONV_2D", "ADD"] and r.op_profile[1].avg_ms == 0.7


@pytest.mark.parametrize("text,reason", [
    ("/system/bin/sh: /data/local/tmp/benchmark_model: not executable: 64-bit ELF file", "another ABI"),
    ("ERROR: Failed to allocate tensors!\nERROR: Benchmarking failed.", "allocate tensors"),
    ("ERROR: Could not open '/x.tflite'.\nERROR: Failed to mmap model /x.tflite", "could not load the model"),
])
def test_failures(text, reason):
    r = parse_benchmark_output(text)
    assert r.failed and reason in r.failure_reason


def test_delegates_reported():
    r = parse_benchmark_output("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
                               "ERROR: Failed to apply GPU delegate.\n"
                               "INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
                               "Inference (avg): 4\n")
    assert not r.failed
    assert {(d.name, d.applied) for d in r.delegates} == {("xnnpack", True), ("gpu", False)}


def test_dumpsys_battery_two_vendors():
    usb = parse_dumpsys_battery(rec("dumpsys/battery_usb_full_liion.txt"))
    assert usb.plugged == "usb" and usb.status == BatteryStatus.FULL and usb.temperature_c == pytest.approx(27.4)
    assert usb.voltage_mv == 4352 and usb.charge_counter_uah == 3270000 and usb.charging
    ac = parse_dumpsys_battery(rec("dumpsys/battery_ac_charging_lipoly.txt"))
    assert ac.plugged == "ac" and ac.status == BatteryStatus.CHARGING and ac.level == 15 and ac.technology == "Li-poly"


def test_thermalservice_hal_block_and_stale_cache():
    tv = parse_thermalservice(rec("dumpsys/thermalservice_tv_hal_block.txt"))
    assert [t.name for t in tv.temperatures] == ["CPU0", "CPU1", "GPU"] and tv.temperatures[0].value_c == 62.500004
    pixel = parse_thermalservice(rec("dumpsys/thermalservice_pixel_virtual_skin.txt"))
    assert [t.name for t in pixel.temperatures] == ["VIRTUAL-SKIN", "VIRTUAL-USB-UI"]  # not the cached MID
    assert parse_thermalservice("Thermal Status: 3\n").status_name == "SEVERE"


def test_getprop_uevent_devices_odpm():
    props = parse_getprop("[ro.product.model]: [Pixel 6]\n[ro.build.description]: [line one\nline two]\n")
    assert props["ro.product.model"] == "Pixel 6" and props["ro.build.description"] == "line one\nline two"
    ps = parse_power_supply_uevent("POWER_SUPPLY_NAME=battery\nPOWER_SUPPLY_CURRENT_NOW=-412000\n"
                                   "POWER_SUPPLY_VOLTAGE_NOW=3912000\nPOWER_SUPPLY_STATUS=Discharging\n")
    assert ps.current_now == -412000 and ps.status == "Discharging"
    devices = parse_adb_devices("* daemon not running; starting now at tcp:5037\n* daemon started successfully\n"
                                "List of devices attached\n1A2B3C\tdevice usb:1-1 product:oriole model:Pixel_6 "
                                "device:oriole transport_id:1\n127.0.0.1:5555\toffline\n")
    assert [(d.serial, d.state) for d in devices] == [("1A2B3C", "device"), ("127.0.0.1:5555", "offline")]
    assert dict(devices[0].properties)["model"] == "Pixel_6"
    odpm = parse_odpm_energy("t=1000\nCH0(T=1000)[S4M_VDD_CPUCL0], 52000\nCH1(T=1000)[S2M_VDD_CPUCL2], 900\n")
    assert odpm == {"S4M_VDD_CPUCL0": (1000, 52000), "S2M_VDD_CPUCL2": (1000, 900)}


def test_unknown_lines_never_crash():
    r = parse_benchmark_output("garbage\n\t\tmore\n==== odd ====\ncount=abc")
    assert r.failed and r.failure_reason == "no inference timings in the output"
