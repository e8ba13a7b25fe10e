import os

import keras
import numpy as np
import pytest

from toolkit.convert import convert_model, evaluate_tflite, inspect_tflite, load_interpreter
from toolkit.errors import AccuracyDropError, ConversionError, InvalidArgumentError, ModelFileError


def test_int8_conversion_is_fully_quantized_and_validated(int8_tflite, trained_small, fmnist_small):
    path, result = int8_tflite
    assert path.is_file() and result.fully_int8 and result.mode == "int8"
    assert result.eval_samples == len(fmnist_small.x_test)
    # The validation number is the interpreter's, recomputed independently here.
    assert result.tflite_top1 == pytest.approx(evaluate_tflite(path, fmnist_small.x_test, fmnist_small.y_test))
    assert result.drop_pt == pytest.approx((result.keras_top1 - result.tflite_top1) * 100)
    assert abs(result.drop_pt) < 3.0
    info = inspect_tflite(path)
    assert info.inputs[0].dtype == "int8" and info.inputs[0].scale > 0
    assert info.inputs[0].shape == (1, 28, 28, 1)
    assert dict(info.op_histogram)["CONV_2D"] == 2


def test_int8_is_smaller_than_fp32(int8_tflite, fp32_tflite):
    assert int8_tflite[1].size_kb < 0.5 * fp32_tflite[1].size_kb
    assert fp32_tflite[1].drop_pt == pytest.approx(0.0, abs=0.5)
    assert not inspect_tflite(fp32_tflite[0]).fully_int8


@pytest.mark.parametrize("mode,io", [("int8", "float32"), ("int8", "uint8"), ("fp16", "float32"),
                                     ("dynamic", "float32")])
def test_other_modes_and_io_types(mode, io, trained_small, fmnist_small, tmp_path):
    model, _ = trained_small
    result = convert_model(model, fmnist_small, tmp_path / "m.tflite", mode=mode, io_dtype=io, eval_samples=100)
    info = inspect_tflite(result.path)
    assert info.inputs[0].dtype == io
    assert result.eval_samples == 100 and abs(result.drop_pt) < 5


def test_drop_over_limit_raises_and_writes_nothing(trained_small, fmnist_small, tmp_path):
    model, _ = trained_small
    out = tmp_path / "m.tflite"
    # Claiming the Keras model scored 100% forces a drop far over the limit.
    with pytest.raises(AccuracyDropError, match="over the allowed 0.5 pt"):
        convert_model(model, fmnist_small, out, mode="int8", max_drop_pt=0.5, keras_top1=1.0, eval_samples=50)
    assert list(tmp_path.iterdir()) == []


def test_model_that_cannot_be_fully_quantized(fmnist_small, tmp_path):
    import tensorflow as tf

    inp = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Lambda(lambda t: tf.math.sin(t))(x)  # no int8 kernel for SIN
    model = keras.Model(inp, keras.layers.Dense(10)(x))
    with pytest.raises(ConversionError, match="cannot be fully quantized"):
        convert_model(model, fmnist_small, tmp_path / "m.tflite", mode="int8", eval_samples=10)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments(trained_small, fmnist_small, tmp_path):
    model, _ = trained_small
    with pytest.raises(InvalidArgumentError, match="mode must be one of"):
        convert_model(model, fmnist_small, tmp_path / "m.tflite", mode="int4")
    with pytest.raises(InvalidArgumentError, match="representative_samples=10"):
        convert_model(model, fmnist_small, tmp_path / "m.tflite", representative_samples=10)
    with pytest.raises(InvalidArgumentError, match="output folder does not exist"):
        convert_model(model, fmnist_small, tmp_path / "no" / "m.tflite")


def test_unreadable_model_files(tmp_path, int8_tflite):
    text = tmp_path / "notes.tflite"
    text.write_text("hello world, not a model")
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        load_interpreter(text)
    corrupt = tmp_path / "cut.tflite"
    corrupt.write_bytes(int8_tflite[0].read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="could not be loaded"):
        load_interpreter(corrupt)
    with pytest.raises(ModelFileError, match="No such model file"):
        load_interpreter(tmp_path / "missing.tflite")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny RGB model and an .npz dataset: conversions in about a second."""
    from toolkit.data import load_dataset

    ws = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    np.savez(ws / "rgb8.npz", x_train=rng.integers(0, 255, (120, 8, 8, 3), dtype=np.uint8),
             y_train=np.arange(120) % 3, x_test=rng.integers(0, 255, (30, 8, 8, 3), dtype=np.uint8),
             y_test=np.arange(30) % 3)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    model.save(ws / "tiny.keras")
    return ws, model, load_dataset(str(ws / "rgb8.npz"))


def test_output_file_is_never_the_input_a_folder_or_silently_replaced(tiny, tmp_path):
    ws, model, data = tiny
    mine = tmp_path / "mine.tflite"
    mine.write_bytes(b"the user's model")
    with pytest.raises(InvalidArgumentError, match="already exists; pass --force"):
        convert_model(model, data, mine, mode="fp32", overwrite=False)
    assert mine.read_bytes() == b"the user's model"
    with pytest.raises(InvalidArgumentError, match="is a folder; pass a file path"):
        convert_model(model, data, tmp_path, mode="fp32")
    keras_file = ws / "tiny.keras"
    before = keras_file.read_bytes()
    with pytest.raises(InvalidArgumentError, match="is the input file itself"):
        convert_model(keras_file, data, keras_file, mode="fp32")
    assert keras_file.read_bytes() == before
    convert_model(model, data, mine, mode="fp32", overwrite=True)
    assert inspect_tflite(mine).num_ops > 0


def test_written_file_has_normal_permissions_and_stale_temps_are_removed(tiny, tmp_path):
    import subprocess

    ws, model, data = tiny
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".m.tflite.ferminet-tmp-{dead.pid}"  # a killed conversion's leftover
    stale.write_bytes(b"half a model")
    alive = tmp_path / f".m.tflite.ferminet-tmp-{os.getppid()}"  # a running process's: not ours to remove
    alive.write_bytes(b"in progress")
    keep = tmp_path / ".hidden-notes"
    keep.write_text("mine")
    old = os.umask(0o022)
    try:
        result = convert_model(model, data, tmp_path / "m.tflite", mode="int8", eval_samples=30)
    finally:
        os.umask(old)
    assert os.stat(result.path).st_mode & 0o777 == 0o644  # not mkstemp's 0600
    assert not stale.exists() and alive.exists() and keep.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".hidden-notes", alive.name, "m.tflite"])
