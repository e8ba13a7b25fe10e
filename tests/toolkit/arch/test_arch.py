import keras
import numpy as np
import pytest

from toolkit.arch import ArchSpec, BlockSpec, build_model, count_macs, count_params, get_prototype
from toolkit.errors import InvalidArgumentError


@pytest.mark.parametrize("factory,published", [(keras.applications.MobileNetV2, 300e6),
                                               (keras.applications.MobileNet, 569e6)])
def test_macs_of_published_networks_within_2_percent(factory, published):
    model = factory(weights=None)
    assert abs(count_macs(model) / published - 1) < 0.02
    assert count_params(model) == model.count_params()


def test_conv_mac_formula_with_groups_depthwise_separable_and_dense():
    inp = keras.Input((10, 10, 8))
    x = keras.layers.Conv2D(16, 3, padding="same", groups=2)(inp)            # 10*10*16*3*3*8/2
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same")(x)        # 5*5*16*3*3
    x = keras.layers.SeparableConv2D(4, 3, padding="valid")(x)               # 3*3*(16*9 + 16*4)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(5)(x)                                            # 36*5
    model = keras.Model(inp, out)
    assert count_macs(model) == 10 * 10 * 16 * 9 * 8 // 2 + 5 * 5 * 16 * 9 + 3 * 3 * (16 * 9 + 16 * 4) + 36 * 5
    assert count_params(model) == model.count_params()


def test_nested_model_is_counted():
    inner = keras.Sequential([keras.Input((4, 4, 2)), keras.layers.Conv2D(3, 1)])
    outer = keras.Sequential([keras.Input((4, 4, 2)), inner, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    assert count_macs(outer) == 4 * 4 * 3 * 2 + 3 * 2


def test_unknown_layer_is_named_not_guessed():
    inp = keras.Input((8, 8, 1))
    model = keras.Model(inp, keras.layers.Conv2DTranspose(2, 3)(inp))
    with pytest.raises(InvalidArgumentError, match="Conv2DTranspose"):
        count_macs(model)


def test_resnet20_matches_published_size_on_cifar_shape():
    model = build_model(get_prototype("resnet20", (32, 32, 3), 10), seed=0)
    assert 40e6 < count_macs(model) < 42e6           # He et al.: ~41M MACs
    assert 0.26e6 < count_params(model) < 0.28e6     # ~0.27M parameters


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2", "vgg_small"])
def test_prototypes_build_for_dataset_shape_and_run(name):
    spec = get_prototype(name, (28, 28, 1), 7, width_multiplier=0.5)
    model = build_model(spec, seed=1)
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 7)
    assert model(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 7)


def test_width_multiplier_shrinks_cost():
    full = build_model(get_prototype("mobilenetv2", (28, 28, 1), 10), seed=0)
    half = build_model(get_prototype("mobilenetv2", (28, 28, 1), 10, width_multiplier=0.5), seed=0)
    assert count_macs(half) < 0.5 * count_macs(full)


def test_spec_json_round_trip_hash_and_skip():
    spec = get_prototype("resnet20", (28, 28, 1), 10)
    assert ArchSpec.from_json(spec.to_json()) == spec
    skipped = spec.replace_block("s1b1", enabled=False)
    assert skipped.spec_hash() != spec.spec_hash()
    assert spec.blocks[2].removable(spec.in_channels()["s1b1"])
    assert not spec.blocks[4].removable(spec.in_channels()["s2b0"])  # strided, widening
    assert count_macs(build_model(skipped)) < count_macs(build_model(spec))
    # Same seed, same weights.
    a, b = build_model(spec, seed=3), build_model(spec, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))


def test_bad_specs():
    with pytest.raises(InvalidArgumentError, match="Unknown prototype 'resnet50'.*resnet20"):
        get_prototype("resnet50")
    with pytest.raises(InvalidArgumentError, match="Unknown block kind"):
        BlockSpec("transformer", "t", 8)
    with pytest.raises(InvalidArgumentError, match="classifier"):
        ArchSpec("x", (8, 8, 1), 2, (BlockSpec("conv_bn_relu", "c", 4),))


def test_residual_separable_block_adds_its_input_and_keeps_old_hashes():
    plain = BlockSpec("depthwise_separable", "b", 4)
    spec = ArchSpec("r", (6, 6, 4), 2, (BlockSpec("depthwise_separable", "b", 4, residual=True),
                                        BlockSpec("classifier", "head")))
    model = build_model(spec, seed=0)
    # With the 1x1 conv zeroed the separable path gives 0 (BN in inference mode keeps 0 with its initial
    # statistics), so the block's output is ReLU(input): the input was added.
    pw = model.get_layer("b_pw")
    pw.set_weights([np.zeros_like(w) for w in pw.get_weights()])
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 4)).astype(np.float32)
    block_out = keras.Model(model.input, model.get_layer("b_pw_relu").output)(x)
    np.testing.assert_allclose(block_out, np.maximum(x, 0), atol=1e-5)
    # A widening or strided block has no shortcut to add: it builds without one.
    wide = ArchSpec("w", (6, 6, 4), 2, (BlockSpec("depthwise_separable", "b", 8, residual=True),
                                        BlockSpec("classifier", "head")))
    assert "b_add" not in [layer.name for layer in build_model(wide).layers]
    # The flag is written only when set: a plain block hashes as before the flag existed.
    assert "residual" not in ArchSpec("p", (6, 6, 4), 2, (plain, BlockSpec("classifier", "head"))).to_json()
    assert ArchSpec.from_json(spec.to_json()) == spec
    with pytest.raises(InvalidArgumentError, match="residual=True in block 'c'"):
        BlockSpec("conv_bn_relu", "c", 4, residual=True)


def test_dsnet_stride_one_blocks_are_residual():
    spec = get_prototype("dsnet", (28, 28, 1), 10)
    blocks = {b.name: b for b in spec.blocks}
    assert [n for n, b in blocks.items() if b.residual] == ["s1b1", "s1b2", "s2b1", "s2b2", "s2b3", "s2b4"]
    assert not blocks["s1b0"].residual and blocks["s1b0"].stride == 2
    model = build_model(spec, seed=0)
    assert sum(layer.name.endswith("_add") for layer in model.layers) == 6
