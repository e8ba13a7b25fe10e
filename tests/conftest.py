"""Shared fixtures: a small real Fashion-MNIST subset and a small model trained on it for real.

Session-scoped so that the suite trains and converts once; tests that need their own model build one.
"""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session", autouse=True)
def _private_adb_key_folder(tmp_path_factory):
    """Virtual phones and the harness keep the adb key in $ANDROID_USER_HOME: a temporary one, so the tests
    never create or read the machine's ~/.android."""
    old = os.environ.get("ANDROID_USER_HOME")
    os.environ["ANDROID_USER_HOME"] = str(tmp_path_factory.mktemp("android-user-home"))
    yield
    if old is None:
        os.environ.pop("ANDROID_USER_HOME", None)
    else:
        os.environ["ANDROID_USER_HOME"] = old


@pytest.fixture(scope="session")
def tiny_tflite(tmp_path_factory):
    """A real, small int8 .tflite (TensorFlow imported only for this fixture)."""
    import keras
    import numpy as np
    import tensorflow as tf

    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([np.random.rand(1, 16, 16, 1).astype("float32")] for _ in range(20))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path = tmp_path_factory.mktemp("tflite") / "tiny_int8.tflite"
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="session")
def fmnist_small():
    """3,000 training / 500 test images of the real Fashion-MNIST (class-stratified)."""
    from toolkit.data import load_dataset

    return load_dataset("fashion_mnist", n_train=3000, n_test=500, seed=0)


def small_cnn(input_shape=(28, 28, 1), num_classes=10):
    import keras

    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),
    ])


@pytest.fixture(scope="session")
def trained_small(fmnist_small):
    """(model, TrainResult): the small CNN trained 4 epochs on the subset."""
    import keras

    from toolkit.train import TrainBudget, train

    keras.utils.set_random_seed(0)
    model = small_cnn()
    result = train(model, fmnist_small, TrainBudget(epochs=4), batch_size=64, learning_rate=3e-3, progress=False)
    return model, result


@pytest.fixture(scope="session")
def int8_tflite(trained_small, fmnist_small, tmp_path_factory):
    """A validated full-int8 .tflite of the trained small CNN, and its ConversionResult."""
    from toolkit.convert import convert_model

    model, _ = trained_small
    path = tmp_path_factory.mktemp("models") / "small_int8.tflite"
    return path, convert_model(model, fmnist_small, path, mode="int8")


@pytest.fixture(scope="session")
def fp32_tflite(trained_small, fmnist_small, tmp_path_factory):
    from toolkit.convert import convert_model

    model, _ = trained_small
    path = tmp_path_factory.mktemp("models") / "small_fp32.tflite"
    return path, convert_model(model, fmnist_small, path, mode="fp32")
