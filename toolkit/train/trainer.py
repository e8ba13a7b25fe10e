"""Budgeted training and fine-tuning of Keras classifiers.

A budget is epochs and/or wall seconds: training stops at whichever comes first, always
after a whole epoch has finished when ``seconds`` is hit mid-epoch (the epoch's batches stop early).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from toolkit.data import Dataset
from toolkit.errors import InvalidArgumentError, check_positive_int

log = logging.getLogger(__name__)

AUGMENTATIONS = ("flip", "shift")


@dataclass(frozen=True)
class TrainBudget:
    """How much training to do: up to ``epochs`` epochs, and at most ``seconds`` of wall time."""

    epochs: int | None = 3
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.seconds is None:
            raise InvalidArgumentError("A training budget needs epochs or seconds. Received: epochs=None, seconds=None")
        if self.epochs is not None:
            check_positive_int("epochs", self.epochs)
        if self.seconds is not None and (not isinstance(self.seconds, (int, float)) or self.seconds <= 0):
            raise InvalidArgumentError(f"seconds must be > 0. Received: seconds={self.seconds!r}")


@dataclass(frozen=True)
class EpochStat:
    epoch: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced. Accuracies are fractions in [0, 1]."""

    test_top1: float
    val_top1: float | None
    history: tuple[EpochStat, ...]
    wall_s: float
    epochs_run: int
    stopped_reason: str  # "epochs" | "seconds" | "early_stopping"


class _Budget:
    """Keras callback: stop when the wall-clock budget runs out; feed the progress bar."""

    def __init__(self, seconds: float | None, total_epochs: int | None, progress: bool):
        import keras

        class Callback(keras.callbacks.Callback):
            pass

        self.seconds = seconds
        self.start = time.perf_counter()
        self.timed_out = False
        self.epoch_started = 0.0
        self.epoch_seconds: list[float] = []
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_epochs, desc="train", unit="epoch", leave=False)
        owner = self

        def on_epoch_begin(cb, epoch, logs=None):
            owner.epoch_started = time.perf_counter()

        def on_train_batch_end(cb, batch, logs=None):
            if owner.seconds is not None and time.perf_counter() - owner.start > owner.seconds:
                owner.timed_out = True
                cb.model.stop_training = True

        def on_epoch_end(cb, epoch, logs=None):
            owner.epoch_seconds.append(time.perf_counter() - owner.epoch_started)
            if owner.bar is not None:
                owner.bar.update(1)
                owner.bar.set_postfix(acc=f"{(logs or {}).get('accuracy', 0):.3f}")

        Callback.on_epoch_begin = on_epoch_begin
        Callback.on_train_batch_end = on_train_batch_end
        Callback.on_epoch_end = on_epoch_end
        self.callback = Callback()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _augmenter(augment: tuple[str, ...], seed: int):
    import keras

    unknown = [a for a in augment if a not in AUGMENTATIONS]
    if unknown:
        raise InvalidArgumentError(f"Unknown augmentation {unknown}. Use any of {AUGMENTATIONS}. Received: augment={augment}")
    layers = []
    if "flip" in augment:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if "shift" in augment:
        layers.append(keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed))
    return keras.Sequential(layers) if layers else None


def evaluate_keras(model, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> float:
    """Top-1 accuracy (fraction) of a Keras model on arrays."""
    if len(x) == 0:
        raise InvalidArgumentError("Cannot evaluate on an empty split. Received: len(x)=0")
    pred = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(pred, axis=-1) == y))


def train(model, data: Dataset, budget: TrainBudget | None = None, *, batch_size: int = 128,
          learning_rate: float = 1e-3, seed: int = 0, augment: tuple[str, ...] = (),
          early_stopping_patience: int | None = None, label_smoothing: float = 0.0,
          progress: bool = True, teacher=None, distill_alpha: float = 0.5,
          distill_temperature: float = 2.0) -> TrainResult:
    """Compile and train ``model`` on ``data`` within ``budget``; evaluate top-1 on the test split.

    Compiles with Adam (cosine-decayed ``learning_rate``) and sparse categorical cross-entropy. With a
    ``teacher`` (a Keras model with logit outputs) the loss is knowledge distillation (Hinton et al. 2015):
    ``alpha * CE(labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`` at temperature ``T``. ``seed``
    fixes the shuffling and weight-independent randomness. Returns fractions, not percent.

    >>> res = train(model, load_dataset("fashion_mnist", n_train=2000), TrainBudget(epochs=1))  # doctest: +SKIP
    >>> 0.0 <= res.test_top1 <= 1.0                                                                # doctest: +SKIP
    True
    """
    import keras
    import tensorflow as tf

    budget = budget or TrainBudget()
    check_positive_int("batch_size", batch_size)
    if not learning_rate > 0:
        raise InvalidArgumentError(f"learning_rate must be > 0. Received: learning_rate={learning_rate!r}")
    expected = tuple(model.input_shape[1:])
    if expected != data.input_shape:
        raise InvalidArgumentError(
            f"The model takes inputs of shape {expected} but dataset {data.name!r} has {data.input_shape}. "
            f"Build the model for the dataset's input shape")
    if len(data.x_train) == 0:
        raise InvalidArgumentError("The training split is empty. Received: n_train=0")

    keras.utils.set_random_seed(seed)
    epochs = budget.epochs if budget.epochs is not None else 10_000
    steps = max(1, int(np.ceil(len(data.x_train) / batch_size)))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps * epochs, alpha=0.05) \
        if budget.epochs is not None else learning_rate
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=_outputs_logits(model))
    if label_smoothing:
        loss = keras.losses.CategoricalCrossentropy(from_logits=_outputs_logits(model), label_smoothing=label_smoothing)
    metrics: list = ["accuracy"]

    y_train = data.y_train if not label_smoothing else keras.utils.to_categorical(data.y_train, data.num_classes)
    y_val = data.y_val if not label_smoothing else keras.utils.to_categorical(data.y_val, data.num_classes)
    if teacher is not None:
        if label_smoothing:
            raise InvalidArgumentError("Distillation and label smoothing do not combine; drop one. "
                                       f"Received: label_smoothing={label_smoothing}, teacher={teacher.name!r}")
        if not 0.0 <= distill_alpha <= 1.0 or not distill_temperature > 0:
            raise InvalidArgumentError(f"distill_alpha must be in [0, 1] and distill_temperature > 0. Received: "
                                       f"distill_alpha={distill_alpha}, distill_temperature={distill_temperature}")
        loss = _distillation_loss(data.num_classes, distill_alpha, distill_temperature)
        y_train = _with_teacher(teacher, data.x_train, data.y_train, data.num_classes, distill_temperature)
        y_val = _with_teacher(teacher, data.x_val, data.y_val, data.num_classes, distill_temperature)
        metrics = [_distill_accuracy(data.num_classes)]
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=metrics)
    train_ds = tf.data.Dataset.from_tensor_slices((data.x_train, y_train)).shuffle(
        min(len(data.x_train), 20_000), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    aug = _augmenter(tuple(augment), seed)
    if aug is not None:
        train_ds = train_ds.map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)
    has_val = len(data.x_val) > 0
    callbacks = []
    tracker = _Budget(budget.seconds, budget.epochs, progress)
    callbacks.append(tracker.callback)
    early = None
    if early_stopping_patience is not None:
        check_positive_int("early_stopping_patience", early_stopping_patience)
        early = keras.callbacks.EarlyStopping(
            monitor="val_accuracy" if has_val else "accuracy", patience=early_stopping_patience,
            restore_best_weights=True)
        callbacks.append(early)

    started = time.perf_counter()
    try:
        hist = model.fit(train_ds, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False,
                         validation_data=(data.x_val, y_val) if has_val else None)
    finally:
        tracker.close()
    wall_s = time.perf_counter() - started
    h = hist.history
    n = len(h.get("loss", []))
    history = tuple(
        EpochStat(i + 1, float(h["loss"][i]), float(h["accuracy"][i]),
                  float(h["val_loss"][i]) if "val_loss" in h else None,
                  float(h["val_accuracy"][i]) if "val_accuracy" in h else None,
                  tracker.epoch_seconds[i] if i < len(tracker.epoch_seconds) else float("nan"))
        for i in range(n))
    if tracker.timed_out:
        reason = "seconds"
    elif early is not None and early.stopped_epoch > 0:
        reason = "early_stopping"
    else:
        reason = "epochs"
    return TrainResult(
        test_top1=evaluate_keras(model, data.x_test, data.y_test),
        val_top1=evaluate_keras(model, data.x_val, data.y_val) if has_val else None,
        history=history, wall_s=wall_s, epochs_run=n, stopped_reason=reason)


def _with_teacher(teacher, x: np.ndarray, y: np.ndarray, num_classes: int, temperature: float) -> np.ndarray:
    """[one-hot labels | teacher's softened probabilities] per image: the distillation loss's targets."""
    onehot = np.eye(num_classes, dtype=np.float32)[y]
    if len(x) == 0:
        return np.zeros((0, 2 * num_classes), np.float32)
    logits = teacher.predict(x, batch_size=256, verbose=0) / temperature
    logits = logits - logits.max(axis=1, keepdims=True)
    soft = np.exp(logits)
    soft /= soft.sum(axis=1, keepdims=True)
    return np.concatenate([onehot, soft.astype(np.float32)], axis=1)


def _distillation_loss(num_classes: int, alpha: float, temperature: float):
    import keras
    from keras import ops

    def loss(y_true, logits):
        hard, soft = y_true[:, :num_classes], y_true[:, num_classes:]
        ce = keras.losses.categorical_crossentropy(hard, logits, from_logits=True)
        log_q = ops.log_softmax(logits / temperature, axis=-1)
        kl = ops.sum(soft * (ops.log(ops.maximum(soft, 1e-8)) - log_q), axis=-1)
        return alpha * ce + (1.0 - alpha) * temperature ** 2 * kl

    return loss


def _distill_accuracy(num_classes: int):
    from keras import ops

    def accuracy(y_true, logits):  # named so the history keeps its "accuracy" key
        return ops.cast(ops.equal(ops.argmax(y_true[:, :num_classes], axis=-1), ops.argmax(logits, axis=-1)),
                        "float32")

    return accuracy


def _outputs_logits(model) -> bool:
    """True when the last layer has no softmax (so the loss must apply it)."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    return name != "softmax" and last.__class__.__name__ != "Softmax"
