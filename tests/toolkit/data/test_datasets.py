import numpy as np
import pytest

from toolkit.data import load_dataset
from toolkit.errors import DatasetNotFoundError, InvalidArgumentError


def test_fashion_mnist_full_splits_and_metadata():
    ds = load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    # The real test split is balanced: 1,000 images per class.
    assert np.bincount(ds.y_test).tolist() == [1000] * 10


def test_subset_is_stratified_and_reproducible():
    a = load_dataset("fashion_mnist", n_train=1000, n_test=200, seed=3)
    b = load_dataset("fashion_mnist", n_train=1000, n_test=200, seed=3)
    assert len(a.x_train) == 1000 and len(a.x_test) == 200
    assert np.array_equal(a.y_train, b.y_train)
    counts = np.bincount(a.y_train, minlength=10)
    assert counts.min() >= 90 and counts.max() <= 110


def test_validation_split_moves_training_images():
    ds = load_dataset("fashion_mnist", n_train=1000, validation_split=0.2)
    assert len(ds.x_val) == 200 and len(ds.x_train) == 800
    with pytest.raises(InvalidArgumentError, match="validation_split"):
        load_dataset("fashion_mnist", n_train=100, validation_split=1.5)


def test_representative_generator_yields_single_float_batches(fmnist_small):
    gen = fmnist_small.representative(120)
    batches = list(gen())
    assert len(batches) == 120
    assert batches[0][0].shape == (1, 28, 28, 1) and batches[0][0].dtype == np.float32


def test_npz_dataset(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "toy.npz"
    np.savez(path, x_train=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8), y_train=np.arange(20) % 4,
             x_test=rng.integers(0, 256, (8, 8, 8), dtype=np.uint8), y_test=np.arange(8) % 4)
    ds = load_dataset(str(path))
    assert ds.input_shape == (8, 8, 1) and ds.num_classes == 4 and ds.x_train.max() <= 1.0
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 2)))
    with pytest.raises(InvalidArgumentError, match="y_train"):
        load_dataset(str(tmp_path / "bad.npz"))


def test_image_folder_dataset(tmp_path):
    import keras

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(3):
                keras.utils.save_img(folder / f"{i}.png", rng.integers(0, 256, (10, 10, 3)).astype("uint8"))
    ds = load_dataset(str(tmp_path), image_size=(10, 10))
    assert ds.class_names == ("cat", "dog") and ds.x_train.shape == (6, 10, 10, 3) and len(ds.x_test) == 6


def test_missing_dataset_lists_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FERMINET_OFFLINE", "1")
    monkeypatch.setenv("FERMINET_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("toolkit.data.datasets.DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion_mnist", path=tmp_path / "explicit")
    message = str(err.value)
    for place in ("explicit", str(tmp_path / "data"), ".keras/datasets/fashion-mnist", "nowhere"):
        assert place in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_unknown_dataset_name():
    with pytest.raises(InvalidArgumentError, match="Unknown dataset 'imagenet'"):
        load_dataset("imagenet")
