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
                                            max_results=1)
    classifier = vision.ImageClassifier.create_from_options(options)
    try:
        pixels = (data.x_test * 255).round().astype(np.uint8)
        names = []
        for img in pixels:
            rgb = np.ascontiguousarray(np.repeat(img, 3, axis=-1))
            names.append(classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
                         .classifications[0].categories[0].category_name)
    finally:
        classifier.close()
    assert set(names) <= set(data.class_names)  # class names come from the labels file
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
