"""HostTarget with ProfileOptions(op_profiling=True): real per-op times from LiteRT's op profiler, named by layer,
and the inquisitor's cost shares taken from them."""
import pytest

from toolkit.targets import HostTarget, ProfileOptions


def test_host_op_profile_names_the_keras_layers(int8_tflite, trained_small):
    path, _ = int8_tflite
    model, _ = trained_small
    m = HostTarget().profile(path, ProfileOptions(num_runs=20, op_profiling=True, measure_energy=False))
    ops = m.op_profile
    assert ops and all(o.times_called == 1 for o in ops)
    convs = [o for o in ops if o.node_type == "CONV_2D"]
    conv_layers = [layer.name for layer in model.layers if "conv" in layer.name]
    assert len(convs) == len(conv_layers) == 2
    # Each Conv2D layer is one timed node, in order, named in the layer's name scope ("sequential_1/conv2d_1/...":
    # Keras 3 suffixes the scope, so the scope starts with the layer's name).
    scopes = [o.name.lstrip("[").split("/")[1] for o in convs]
    assert all(scope.startswith(layer) for scope, layer in zip(scopes, conv_layers)), (scopes, conv_layers)
    assert all(o.avg_ms > 0 for o in convs)
    assert sum(o.percent for o in ops) == pytest.approx(100, abs=0.01)
    total = sum(o.avg_ms for o in ops)
    assert 0.25 * m.latency.median_ms <= total <= 4 * m.latency.median_ms
    assert "LiteRT op profiler" in m.provenance_dict()["op_profile"]
    plain = HostTarget().profile(path, ProfileOptions(num_runs=5, measure_energy=False))
    assert plain.op_profile == () and "op_profile" not in plain.provenance_dict()


def test_inquisitor_costs_resnet20_from_the_host_op_profile(fmnist_small, tmp_path):
    from toolkit.arch import build_model, get_prototype
    from toolkit.convert import convert_model
    from toolkit.synthesis import DecisionSpace
    from toolkit.synthesis.inquisitor import form_insights, taylor_importance

    spec = get_prototype("resnet20", width_multiplier=0.25)
    model = build_model(spec, seed=0)
    path = tmp_path / "resnet20_w025_int8.tflite"
    convert_model(model, fmnist_small, path, mode="int8")
    m = HostTarget().profile(path, ProfileOptions(num_runs=10, op_profiling=True, measure_energy=False))
    space = DecisionSpace.from_prototype(spec)
    importance = taylor_importance(model, fmnist_small.x_train[:64], fmnist_small.y_train[:64])
    insights = form_insights(space, model, importance, op_profile=m.op_profile)
    assert insights.cost_basis == "op_profile"
    assert sum(insights.cost_share.values()) == pytest.approx(1.0)
    # Every width group's convolutions were timed: each group has a share of the measured cost.
    assert all(share > 0 for share in insights.cost_share.values()), insights.cost_share
    by_macs = form_insights(space, model, importance)
    assert by_macs.cost_basis == "macs" and by_macs.cost_share != insights.cost_share
