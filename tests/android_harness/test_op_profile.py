"""Per-op timings from LiteRT's op profiler: the module itself, and the virtual phone's benchmark_model tables."""
import pytest

from android_harness.connection import AdbShellConnection
from android_harness.errors import BenchmarkError
from android_harness.litert_profile import benchmark_tables, profile_ops
from android_harness.parsers import parse_benchmark_output


@pytest.fixture(scope="module")
def named_int8(tmp_path_factory):
    """A real int8 .tflite of a small residual Keras model with layer names like resnet20's."""
    import keras
    import numpy as np
    import tensorflow as tf

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="stem_conv")(inp)
    y = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="s1b0_conv1")(x)
    y = keras.layers.Conv2D(16, 3, padding="same", name="s1b0_conv2")(y)
    x = keras.layers.Add(name="s1b0_add")([x, y])
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="s2b0_conv1")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, keras.layers.Dense(10, name="logits")(x))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.random((1, 32, 32, 3), dtype=np.float32)] for _ in range(10))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path_factory.mktemp("op_profile") / "named_int8.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.mark.parametrize("use_xnnpack", [False, True])
def test_profile_ops_times_every_node_with_its_keras_names(named_int8, use_xnnpack):
    p = profile_ops(named_int8, use_xnnpack=use_xnnpack, runs=20)
    assert p.kernels == ("xnnpack" if use_xnnpack else "builtin") and p.runs + p.disturbed_runs == 20
    assert p.runs >= 10 and len(p.invoke_ms) == p.runs  # preempted runs (over 2x the median) are left out
    convs = [o for o in p.ops if "conv" in o.node_type.lower()]
    assert len(convs) == 4  # stem, s1b0 x2, s2b0: one timed operator per Conv2D layer
    for layer in ("stem_conv", "s1b0_conv1", "s1b0_conv2", "s2b0_conv1"):
        assert sum(layer in o.name for o in convs) == 1, (layer, [o.name for o in convs])
    assert all(o.times_called == p.runs for o in p.ops)
    assert all(o.min_ms - 1e-9 <= o.avg_ms <= o.max_ms + 1e-9 for o in p.ops)
    # The convolutions are where the time goes, and the ops' sum is the run's time spent in kernels: it cannot
    # exceed the whole Invoke, and (a few us of interpreter overhead per node aside) is most of it.
    assert sum(o.avg_ms for o in convs) > 0 and sum(o.avg_ms for o in convs) >= 0.5 * p.total_op_ms
    assert p.total_op_ms <= p.invoke_avg_ms * 1.05
    if not use_xnnpack:  # per-node µs events are resolvable on the builtin kernels
        assert all(o.avg_ms > 0 for o in convs) and p.total_op_ms >= 0.5 * p.invoke_avg_ms


def test_profile_ops_refuses_what_is_not_a_model(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 8)
    with pytest.raises(BenchmarkError, match="could not load"):
        profile_ops(bad, runs=1)
    with pytest.raises(ValueError, match="num_threads=0"):
        profile_ops(bad, num_threads=0)
    with pytest.raises(BenchmarkError, match="No model file"):
        profile_ops(tmp_path / "missing.tflite")


def test_tables_parse_with_the_unchanged_parser(named_int8):
    p = profile_ops(named_int8, runs=5)
    text = "\n".join(["INFO: Inference timings in us: Init: 1, First inference: 2, Warmup (avg): 3, "
                      "Inference (avg): 4"] + [f"INFO: {line}" if line else "" for line in benchmark_tables(p)])
    result = parse_benchmark_output(text)
    assert [r.name for r in result.op_profile] == [o.label for o in p.ops]
    assert [o.order for o in p.ops] == [o.node_index for o in p.ops] == list(range(len(p.ops)))  # builtin
    assert [r.avg_ms for r in result.op_profile] == pytest.approx([o.avg_ms for o in p.ops], abs=1e-3)
    assert sum(r.percent for r in result.op_profile) == pytest.approx(100, abs=0.1)
    assert {s.node_type for s in result.op_summary} == {o.node_type for o in p.ops}
    assert result.inference_count is None  # the tables' "Timings" line is not taken for the benchmark's runs


def test_virtual_phone_benchmark_model_prints_real_op_tables(phone, named_int8):
    from toolkit.targets import ProfileOptions
    from toolkit.targets.android import AndroidTarget

    conn = AdbShellConnection(phone.serial)
    conn.push(named_int8, "/data/local/tmp/m.tflite")
    out = conn.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite --num_runs=20 "
                     "--min_secs=0.1 --use_xnnpack=false --enable_op_profiling=true", timeout_s=120)
    xnn = parse_benchmark_output(conn.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite "
                                            "--num_runs=10 --enable_op_profiling=true", timeout_s=120).stdout)
    conn.close()
    # The tool's default (XNNPACK): XNNPACK's operators, each convolution paired with its layer's node.
    xnn_convs = [r for r in xnn.op_profile if r.node_type.startswith("Convolution")]
    assert not xnn.failed and len(xnn_convs) == 4
    assert all(any(layer in r.name for r in xnn_convs) for layer in ("stem_conv", "s1b0_conv1", "s2b0_conv1"))
    assert out.exit_code == 0 and "Operator-wise Profiling Info for Regular Benchmark Runs" in out.stdout
    assert "environment.cc" not in out.stdout  # LiteRT's own log lines stay out of the tool's output
    result = parse_benchmark_output(out.stdout)
    assert not result.failed and len(result.op_profile) >= 6
    names = " ".join(r.name for r in result.op_profile)
    assert all(layer in names for layer in ("stem_conv", "s1b0_conv1", "s1b0_conv2", "s2b0_conv1"))
    assert all(r.avg_ms > 0 for r in result.op_profile if r.node_type == "CONV_2D")
    op_sum_us = 1000 * sum(r.avg_ms for r in result.op_profile)
    median_us = result.percentile("median")  # not the mean: one preempted run on this shared machine moves it
    assert median_us / 4 <= op_sum_us <= median_us * 4

    # Through the Android target: op_profile filled, labelled virtual:, same names.
    m = AndroidTarget(phone.serial).profile(named_int8, ProfileOptions(num_runs=10, op_profiling=True,
                                                                       measure_energy=False))
    assert m.source.startswith("virtual:") and m.op_profile
    assert any("s1b0_conv1" in o.name and o.avg_ms > 0 for o in m.op_profile)
    assert 0.25 * m.latency.median_ms <= sum(o.avg_ms for o in m.op_profile) <= 4 * m.latency.median_ms


def test_xnnpack_operators_pair_with_nodes_without_drifting():
    from android_harness.litert_profile import _align

    nodes = [("CONV_2D", "a"), ("FULLY_CONNECTED", "b"), ("RESHAPE", "c")]
    ops = ["Convolution (NHWC, QC8) IGEMM", "Static Reshape (NC)", "Fully Connected (NC, QS8, QC8W) GEMM"]
    # The inserted reshape stays unpaired; a greedy walk would pair it with the later RESHAPE and lose the FC.
    assert _align(ops, [0, 1, 2], nodes) == [0, None, 1]


def test_partly_delegated_graph_times_both_kinds_once(tmp_path):
    """An fp32 Flatten leaves shape ops to the builtin kernels between two XNNPACK partitions: every row appears
    once, in run order, and the TFLite nodes keep their names."""
    import keras
    import tensorflow as tf

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="s1b0_conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Flatten(name="flat")(x)
    model = keras.Model(inp, keras.layers.Dense(4, name="logits")(x))
    path = tmp_path / "f32.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    p = profile_ops(path, use_xnnpack=True, runs=10)
    kinds = {o.node_type for o in p.ops}
    assert any(k.startswith("Convolution") for k in kinds) and "SHAPE" in kinds  # XNNPACK rows and node rows
    assert [o.order for o in p.ops] == list(range(len(p.ops)))
    paired = [o.node_index for o in p.ops if o.node_index >= 0]
    assert paired == sorted(set(paired))  # each TFLite node at most once, in execution order
    assert sum("s1b0_conv1" in o.name for o in p.ops) == 1
    # The model's output tensor carries the signature's name (StatefulPartitionedCall...), not the layer's; the
    # Dense layer's operator is still paired with its node.
    assert [o.node_index >= 0 for o in p.ops if o.node_type.startswith("Fully Connected")] == [True]
    assert p.total_op_ms <= p.invoke_avg_ms * 1.05


def test_a_preempted_run_is_left_out_of_every_row():
    from android_harness.litert_profile import _summarise

    nodes = [("CONV_2D", "m/s1b0_conv1/Conv"), ("ADD", "m/s1b0_add/Add")]
    events = []
    for run, (conv_us, add_us) in enumerate([(100, 10), (110, 12), (90_000, 11), (105, 9)]):  # run 2: preempted
        t0 = 1_000_000 * (run + 1)
        events += [("Invoke", 1, t0, conv_us + add_us + 5, 0), ("CONV_2D", 2, t0 + 2, conv_us, 0),
                   ("ADD", 2, t0 + 2 + conv_us, add_us, 1)]
    p = _summarise("m.tflite", events, [0.0] * 4, nodes, False, 1, 4)
    assert p.runs == 3 and p.disturbed_runs == 1 and all(o.times_called == 3 for o in p.ops)
    assert p.ops[0].avg_ms == pytest.approx(0.105) and p.ops[0].max_ms == pytest.approx(0.110)
    assert [o.name for o in p.ops] == ["m/s1b0_conv1/Conv", "m/s1b0_add/Add"] and p.ops[1].start_ms > 0
