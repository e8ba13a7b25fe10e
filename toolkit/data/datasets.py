"""Dataset loaders: every loader returns a :class:`Dataset` of float32 NHWC images in [0, 1].

Fashion-MNIST is searched, in order: an explicit ``path``, ``$FERMINET_DATA`` (the folder itself or its
``fashion-mnist`` sub-folder), the Keras cache ``~/.keras/datasets/fashion-mnist``, Debian's
``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``), and last the Keras download.
When nothing is found offline and the download fails, one error lists every place looked and how to get it.
"""
from __future__ import annotations

import gzip
import logging
import os
import pickle
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from toolkit.errors import DatasetNotFoundError, InvalidArgumentError

log = logging.getLogger(__name__)

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
NAMED_DATASETS = ("fashion_mnist", "mnist", "cifar10")


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits plus what a model needs to know about the inputs.

    Images are float32 NHWC in [0, 1]; labels are int64 class indices.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    x_val: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    y_val: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "Dataset":
        """A class-stratified random subset (same class mix as the full split), reproducible by ``seed``."""
        rng = np.random.default_rng(seed)
        x_tr, y_tr = _take(self.x_train, self.y_train, n_train, rng, "n_train")
        x_te, y_te = _take(self.x_test, self.y_test, n_test, rng, "n_test")
        return replace(self, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)

    def with_validation(self, fraction: float, seed: int = 0) -> "Dataset":
        """Move ``fraction`` of the training split into a validation split."""
        if not 0.0 <= fraction < 1.0:
            raise InvalidArgumentError(
                f"validation_split must be in [0, 1). Received: validation_split={fraction!r}")
        if fraction == 0.0:
            return self
        order = np.random.default_rng(seed).permutation(len(self.x_train))
        n_val = max(1, int(round(fraction * len(order))))
        val, tr = order[:n_val], order[n_val:]
        return replace(self, x_train=self.x_train[tr], y_train=self.y_train[tr],
                       x_val=self.x_train[val], y_val=self.y_train[val])

    def holdout(self, n_val: int, seed: int = 0) -> "Dataset":
        """Carve a class-stratified validation split of ``n_val`` images out of the training split.

        The images moved to ``x_val`` leave ``x_train``; the same ``seed`` always picks the same images."""
        if isinstance(n_val, bool) or not isinstance(n_val, int) or not 0 < n_val < len(self.x_train):
            raise InvalidArgumentError(f"The validation split must hold between 1 and {len(self.x_train) - 1} "
                                       f"training images. Received: n_val={n_val!r}")
        rng = np.random.default_rng(seed)
        _, _, idx = _take(self.x_train, self.y_train, n_val, rng, "n_val", return_index=True)
        keep = np.ones(len(self.x_train), bool)
        keep[idx] = False
        return replace(self, x_train=self.x_train[keep], y_train=self.y_train[keep],
                       x_val=self.x_train[idx], y_val=self.y_train[idx])

    def validation_as_test(self, n: int | None = None) -> "Dataset":
        """This dataset with its validation split (first ``n`` images) in the place of the test split, for code
        that evaluates on ``x_test`` (conversion checks) while a search must not see the test split."""
        if len(self.x_val) == 0:
            raise InvalidArgumentError(f"Dataset {self.name!r} has no validation split; call holdout(n_val) first")
        n = len(self.x_val) if n is None else min(int(n), len(self.x_val))
        return replace(self, x_test=self.x_val[:n], y_test=self.y_val[:n])

    def representative(self, n: int = 200, seed: int = 0) -> Callable[[], Iterator[list[np.ndarray]]]:
        """A zero-argument generator of ``n`` training images, one per batch, for int8 calibration."""
        if n < 1:
            raise InvalidArgumentError(f"representative samples must be >= 1. Received: n={n!r}")
        idx = np.random.default_rng(seed).choice(len(self.x_train), size=min(n, len(self.x_train)), replace=False)
        samples = self.x_train[idx]

        def generator() -> Iterator[list[np.ndarray]]:
            for sample in samples:
                yield [sample[None, ...].astype(np.float32)]

        return generator


def _take(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator, name: str,
          return_index: bool = False):
    if n is None or n >= len(x):
        return (x, y, np.arange(len(x))) if return_index else (x, y)
    if n < 1:
        raise InvalidArgumentError(f"{name} must be >= 1 or None. Received: {name}={n!r}")
    picked = []
    classes = np.unique(y)
    per_class = np.bincount(y, minlength=int(classes.max()) + 1) / len(y)
    for cls in classes:
        members = np.flatnonzero(y == cls)
        k = max(1, int(round(per_class[cls] * n)))
        picked.append(rng.choice(members, size=min(k, len(members)), replace=False))
    idx = rng.permutation(np.concatenate(picked))[:n]
    return (x[idx], y[idx], idx) if return_index else (x[idx], y[idx])


def _read_idx_gz(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _has_idx(folder: Path) -> bool:
    return all((folder / f).is_file() for f in _IDX_FILES.values())


def _mnist_like_candidates(path: str | Path | None, folder_name: str) -> list[Path]:
    places: list[Path] = []
    if path is not None:
        places.append(Path(path).expanduser())
    env = os.environ.get("FERMINET_DATA")
    if env:
        places += [Path(env).expanduser(), Path(env).expanduser() / folder_name]
    places.append(Path("~/.keras/datasets").expanduser() / folder_name)
    if folder_name == "fashion-mnist":
        places.append(DEBIAN_FASHION_MNIST)
    return places


def _images(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float32) / 255.0
    return x[..., None] if x.ndim == 3 else x


def _load_fashion_mnist(path: str | Path | None) -> Dataset:
    places = _mnist_like_candidates(path, "fashion-mnist")
    for place in places:
        if _has_idx(place):
            arrays = {k: _read_idx_gz(place / f) for k, f in _IDX_FILES.items()}
            log.info("Fashion-MNIST from %s", place)
            return Dataset("fashion_mnist", _images(arrays["x_train"]), arrays["y_train"].astype(np.int64),
                           _images(arrays["x_test"]), arrays["y_test"].astype(np.int64), FASHION_MNIST_CLASSES,
                           source=str(place))
    return _download("fashion_mnist", places, FASHION_MNIST_CLASSES,
                     "apt-get install dataset-fashion-mnist (Debian/Ubuntu), or put the four "
                     "*-ubyte.gz files in a folder and pass --data-path / set FERMINET_DATA")


def _load_mnist(path: str | Path | None) -> Dataset:
    places = _mnist_like_candidates(path, "mnist")
    for place in places:
        if _has_idx(place):
            arrays = {k: _read_idx_gz(place / f) for k, f in _IDX_FILES.items()}
            return Dataset("mnist", _images(arrays["x_train"]), arrays["y_train"].astype(np.int64),
                           _images(arrays["x_test"]), arrays["y_test"].astype(np.int64), MNIST_CLASSES,
                           source=str(place))
        npz = place / "mnist.npz" if place.is_dir() else place
        if npz.suffix == ".npz" and npz.is_file():
            return _load_npz(npz, "mnist", MNIST_CLASSES)
    places.append(Path("~/.keras/datasets/mnist.npz").expanduser())
    if places[-1].is_file():
        return _load_npz(places[-1], "mnist", MNIST_CLASSES)
    return _download("mnist", places, MNIST_CLASSES,
                     "put mnist.npz (Keras format) or the four *-ubyte.gz files in a folder and pass --data-path")


def _load_cifar10(path: str | Path | None) -> Dataset:
    places = []
    if path is not None:
        places.append(Path(path).expanduser())
    if os.environ.get("FERMINET_DATA"):
        places.append(Path(os.environ["FERMINET_DATA"]).expanduser() / "cifar-10-batches-py")
    places.append(Path("~/.keras/datasets/cifar-10-batches-py").expanduser())
    for place in places:
        if place.is_file() and place.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(place) as tar:
                tar.extractall(place.parent, filter="data")
            place = place.parent / "cifar-10-batches-py"
        if (place / "data_batch_1").is_file() and (place / "test_batch").is_file():
            def batch(name: str):
                with open(place / name, "rb") as fh:
                    d = pickle.load(fh, encoding="bytes")
                return d[b"data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(d[b"labels"])
            parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
            x_te, y_te = batch("test_batch")
            return Dataset("cifar10", _images(np.concatenate([p[0] for p in parts])),
                           np.concatenate([p[1] for p in parts]).astype(np.int64), _images(x_te),
                           y_te.astype(np.int64), CIFAR10_CLASSES, source=str(place))
    return _download("cifar10", places, CIFAR10_CLASSES,
                     "download cifar-10-python.tar.gz and pass its path (or its extracted folder) with --data-path")


def _download(name: str, places: list[Path], class_names: tuple[str, ...], how: str) -> Dataset:
    if os.environ.get("FERMINET_OFFLINE"):
        error: Exception | None = RuntimeError("FERMINET_OFFLINE is set")
    else:
        try:
            import keras

            loader = {"fashion_mnist": keras.datasets.fashion_mnist, "mnist": keras.datasets.mnist,
                      "cifar10": keras.datasets.cifar10}[name]
            (x_tr, y_tr), (x_te, y_te) = loader.load_data()
            return Dataset(name, _images(x_tr), y_tr.reshape(-1).astype(np.int64), _images(x_te),
                           y_te.reshape(-1).astype(np.int64), class_names, source="keras download")
        except Exception as exc:  # noqa: BLE001 - any download failure becomes the one error below
            error = exc
    looked = "; ".join(str(p) for p in places)
    raise DatasetNotFoundError(
        f"Dataset {name!r} not found offline (looked in: {looked}) and the download failed "
        f"({type(error).__name__}: {str(error)[:120]}). To get it: {how}"
    )


def _load_npz(path: Path, name: str | None = None, class_names: tuple[str, ...] | None = None) -> Dataset:
    if not path.is_file():
        raise DatasetNotFoundError(f"No .npz file at {str(path)!r}. Pass an existing file with x_train, y_train, x_test, y_test")
    with np.load(path, allow_pickle=False) as npz:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in npz.files]
        if missing:
            raise InvalidArgumentError(
                f"{str(path)!r} lacks arrays {missing}; an .npz dataset needs x_train, y_train, x_test, y_test. "
                f"Received arrays: {sorted(npz.files)}")
        arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        names = tuple(str(c) for c in npz["class_names"]) if "class_names" in npz.files else None
    x_tr, x_te = (arrays[k] for k in ("x_train", "x_test"))
    if x_tr.dtype == np.uint8:
        x_tr, x_te = _images(x_tr), _images(x_te)
    else:
        x_tr = (x_tr[..., None] if x_tr.ndim == 3 else x_tr).astype(np.float32)
        x_te = (x_te[..., None] if x_te.ndim == 3 else x_te).astype(np.float32)
    y_tr = arrays["y_train"].reshape(-1).astype(np.int64)
    y_te = arrays["y_test"].reshape(-1).astype(np.int64)
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    return Dataset(name or path.stem, x_tr, y_tr, x_te, y_te,
                   class_names or names or tuple(str(i) for i in range(n_classes)), source=str(path))


def _load_image_folder(path: Path, image_size: tuple[int, int] | None, color_mode: str) -> Dataset:
    """An image folder: ``train/<class>/*`` and ``test/<class>/*`` (or one folder split 80/20)."""
    import keras

    def read(folder: Path, subset: str | None = None, split: float | None = None):
        ds = keras.utils.image_dataset_from_directory(
            folder, labels="inferred", label_mode="int", color_mode=color_mode, batch_size=None,
            image_size=image_size or (224, 224), shuffle=True, seed=0, validation_split=split, subset=subset)
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds)) if len(ds) else ((), ())
        return np.stack(xs) / 255.0, np.asarray(ys, np.int64), tuple(ds.class_names)

    if (path / "train").is_dir() and (path / "test").is_dir():
        x_tr, y_tr, names = read(path / "train")
        x_te, y_te, _ = read(path / "test")
    else:
        x_tr, y_tr, names = read(path, "training", 0.2)
        x_te, y_te, _ = read(path, "validation", 0.2)
    return Dataset(path.name, x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te, names, source=str(path))


def load_dataset(name: str, *, path: str | Path | None = None, n_train: int | None = None,
                 n_test: int | None = None, validation_split: float = 0.0, seed: int = 0,
                 image_size: tuple[int, int] | None = None, color_mode: str = "rgb") -> Dataset:
    """Load a dataset by name (``fashion_mnist``, ``mnist``, ``cifar10``), an ``.npz`` file
    (``x_train, y_train, x_test, y_test``) or an image folder.

    ``n_train`` / ``n_test`` take a class-stratified subset; ``validation_split`` moves that fraction of the
    training split into ``x_val``/``y_val``.

    >>> ds = load_dataset("fashion_mnist", n_train=1000, n_test=500)   # doctest: +SKIP
    >>> ds.x_train.shape, ds.input_shape, ds.num_classes                # doctest: +SKIP
    ((1000, 28, 28, 1), (28, 28, 1), 10)
    """
    key = str(name).strip()
    normalized = key.lower().replace("-", "_")
    if normalized == "fashion_mnist":
        data = _load_fashion_mnist(path)
    elif normalized == "mnist":
        data = _load_mnist(path)
    elif normalized == "cifar10":
        data = _load_cifar10(path)
    elif key.endswith(".npz"):
        data = _load_npz(Path(key).expanduser())
    elif Path(key).expanduser().is_dir():
        data = _load_image_folder(Path(key).expanduser(), image_size, color_mode)
    else:
        raise InvalidArgumentError(
            f"Unknown dataset {name!r}. Use one of {', '.join(NAMED_DATASETS)}, a path to an .npz with "
            f"x_train/y_train/x_test/y_test, or an image folder (train/<class>/*, test/<class>/*)")
    if n_train is not None or n_test is not None:
        data = data.subset(n_train, n_test, seed=seed)
    return data.with_validation(validation_split, seed=seed)
