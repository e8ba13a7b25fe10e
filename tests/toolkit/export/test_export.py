"""Export for apps: metadata readable, runs in MediaPipe Tasks' ImageClassifier like in LiteRT."""
import json

import numpy as np
import pytest

from toolkit.convert import evaluate_tflite
from toolkit.errors import InvalidArgumentError, ModelFileError
from toolkit.export import export_model, read_metadata


@pytest.fixture(scope="module")
def exported(trained_small, tmp_path_factory):
    model, _ = trained_small
    ws = tmp_path_factory.mktemp("export")
    model.save(ws / "small.keras")
    app = ws / "app"
    (app / "src" / "main").mkdir(parents=True)
    return export_model(ws / "small.keras", ws / "out", dataset="fashion_mnist", name="fmnist_small",
                        license="Apache-2.0", android_assets=app, db=None), ws


def test_metadata_labels_and_card(exported):
    result, ws = exported
    meta, files = read_metadata(open(result.tflite_path, "rb").read())
    assert meta.name == b"fmnist_small" and meta.license == b"Apache-2.0"
    norm = meta.subgraphMetadata[0].inputTensorMetadata[0].processUnits[0].options
    assert list(norm.mean) == [0.0] and list(norm.std) == [255.0]
    assert files["labels.txt"].decode().splitlines()[0] == "T-shirt/top"
    card = json.loads(open(result.model_card_path).read())
    assert card["dataset"] == "fashion_mnist" and card["input"]["shape"] == [1, 28, 28, 3]
    assert card["macs"] > 0 and card["fully_int8_compute"] and "input_adapter" in card
    assert (ws / "app" / "src" / "main" / "assets" / "fmnist_small.tflite").is_file()


def test_mediapipe_image_classifier_matches_litert(exported, fmnist_small):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    result, _ = exported
    from toolkit.data import load_dataset

    data = load_dataset("fashion_mnist", n_test=1000, seed=1)
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=result.tflite_path),
                                            max_results=-1)  # every class, best first
    classifier = vision.ImageClassifier.create_from_options(options)
    try:
        pixels = (data.x_test * 255).round().astype(np.uint8)
        names, scores = [], []
        for img in pixels:
            rgb = np.ascontiguousarray(np.repeat(img, 3, axis=-1))
            categories = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)) \
                .classifications[0].categories
            names.append(categories[0].category_name)
            scores.append([c.score for c in categories])
    finally:
        classifier.close()
    assert set(names) <= set(data.class_names)  # class names come from the labels file
    scores = np.array(scores)
    # Class probabilities, not logits: an app's `score > 0.5` means something. (int8 softmax: steps of 1/256.)
    assert scores.shape == (len(pixels), len(data.class_names))
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=0.03)
    assert result.model_card["output_probabilities"] is True
    mp_top1 = np.mean([n == data.class_names[y] for n, y in zip(names, data.y_test)])
    lite_top1 = evaluate_tflite(result.tflite_path, np.repeat(data.x_test, 3, axis=-1), data.y_test)
    assert abs(mp_top1 - lite_top1) * 100 <= 0.5


def test_bad_exports(tmp_path, int8_tflite):
    notes = tmp_path / "notes.tflite"
    notes.write_text("not a model")
    with pytest.raises(ModelFileError, match="not a TFLite model"):
        export_model(notes, tmp_path / "o1", labels=None, db=None)
    with pytest.raises(InvalidArgumentError, match="1-channel images"):
        export_model(int8_tflite[0], tmp_path / "o2", db=None)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def _mode(path) -> int:
    import os

    return os.stat(path).st_mode & 0o777


def test_app_files_are_kept_unless_forced_and_get_normal_permissions(exported, tmp_path):
    import os

    from toolkit.export.exporter import tflite_outputs_probabilities

    result, _ = exported
    assert tflite_outputs_probabilities(result.tflite_path)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    app = tmp_path / "app"
    assets = app / "src" / "main" / "assets"
    assets.mkdir(parents=True)
    mine = assets / "shipped.tflite"
    mine.write_bytes(b"the app's own model")
    kwargs = dict(labels=labels, name="shipped", android_assets=app, db=None)
    with pytest.raises(InvalidArgumentError, match="already has shipped.tflite"):
        export_model(result.tflite_path, tmp_path / "o", **kwargs)
    assert mine.read_bytes() == b"the app's own model" and not (tmp_path / "o").exists()
    old = os.umask(0o027)
    try:
        r = export_model(result.tflite_path, tmp_path / "o", force=True, **kwargs)
    finally:
        os.umask(old)
    for path in (r.tflite_path, r.labels_path, r.model_card_path, mine, assets / "labels.txt"):
        assert _mode(path) == 0o640, path  # 0o666 & ~umask, not mkstemp's 0600
    assert mine.read_bytes() != b"the app's own model" and (assets / "labels.txt").read_text().startswith("c0")
    (tmp_path / "o" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="is not empty"):
        export_model(result.tflite_path, tmp_path / "o", labels=labels, name="other", db=None)
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine"
    leftovers = [p for p in tmp_path.rglob("*") if "ferminet-tmp" in p.name]
    assert not leftovers


def test_a_tflite_with_logits_is_refused_unless_allowed(tmp_path):
    import keras
    import tensorflow as tf

    from toolkit.export.exporter import tflite_outputs_probabilities

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    path = tmp_path / "logits.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    assert not tflite_outputs_probabilities(path)
    with pytest.raises(InvalidArgumentError, match="outputs logits, not class probabilities"):
        export_model(path, tmp_path / "o", labels=labels, db=None)
    assert not (tmp_path / "o").exists()
    r = export_model(path, tmp_path / "o", labels=labels, db=None, allow_logits=True)
    assert r.model_card["output_probabilities"] is False
    meta, _ = read_metadata(open(r.tflite_path, "rb").read())
    assert b"logits" in meta.subgraphMetadata[0].outputTensorMetadata[0].description
