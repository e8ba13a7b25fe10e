import os
import shutil
import socket
import subprocess

import pytest

from android_harness.virtual import VirtualPhone


@pytest.fixture
def phone():
    with VirtualPhone("pixel_6") as p:
        yield p


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def adb_server(tmp_path):
    """Debian's real adb server on a private port (the test FAILS, not skips, without `adb`)."""
    adb = shutil.which("adb")
    assert adb, "Debian's adb is required for this test: apt-get install adb"
    port = _free_port()
    env = dict(os.environ, HOME=str(tmp_path), ANDROID_USER_HOME=str(tmp_path / ".android"))

    def run(*args, timeout=60):
        return subprocess.run([adb, "-P", str(port), *args], capture_output=True, text=True, env=env, timeout=timeout)

    run("start-server")
    try:
        yield port, run
    finally:
        run("kill-server")
