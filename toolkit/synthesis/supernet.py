"""A weight-sharing supernet over the decision space: the search's evaluator.

After the prototype is trained it is trained once more as a *supernet*: the prototype's own layers, with a
channel mask after every batch norm and a gate around every skippable block. A sub-network (one option per
decision) is the supernet with the masks of its channels set (:func:`toolkit.synthesis.inherit.channel_plan`:
within each width group the most important channels first) and its skipped blocks gated off
(``out = in + g * (block(in) - in)``, g = 0), fed the image at its resolution (the supernet takes any height
and width; the images are resized before they enter it). Masked-out channels are exact zeros, so the sub-network
*extracted* from the supernet (its channels' weights sliced out by the same plan, its own resize layer in front)
computes what the masked supernet computed.

Training follows the sandwich rule with in-place distillation (Yu et al.'s slimmable networks / BigNAS,
Once-for-All): every step trains the largest sub-network on the labels, and the smallest plus ``n_random``
uniformly sampled sub-networks on the largest one's soft predictions; the gradients of all of them are summed
into one update. A checkpoint is written after every epoch; training resumes from the last one.

A candidate is then evaluated without training: extract, re-estimate batch-norm statistics on a few training
batches (the supernet's running statistics belong to no single sub-network), convert, measure.

Known gap: the builder adds a residual to an inverted-residual block whenever its input and output widths are
equal, so a MobileNetV2 child whose rounded widths happen to match where the prototype's did not (stage 5's first
block) has an add the supernet lacks; its proxy is then slightly off (final training is unaffected).

A separable decision (``separable:<block>``) gives that block a second form in the supernet, built from the same
input: the depthwise-separable convs, with their own layers (``<block>_sep1_dw`` ...) and their own shortcut
when the block has one; an ``op_<block>`` input picks the form (``out = y + op * (y_sep - y)``). The separable
layers start from random weights (the prototype has none to give) and are trained here by the sub-networks that
pick them (the smallest always does); their channels follow the same plan as the plain form's.

A kernel decision is not trained here: a larger kernel than the prototype's starts as the prototype's kernel
padded with zeros, so its proxy equals the smaller kernel's at a higher cost (final training can use it).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from toolkit.errors import InvalidArgumentError, ToolkitError
from toolkit.synthesis.inherit import channel_plan, inherit_weights
from toolkit.synthesis.space import DecisionSpace

log = logging.getLogger(__name__)

CHECKPOINT = "supernet.weights.h5"
STATE = "supernet.json"


@dataclass(frozen=True)
class SupernetEpoch:
    epoch: int
    loss: float
    seconds: float


@dataclass(frozen=True)
class SupernetTraining:
    """What supernet training did: epochs run (resumed ones included), per-epoch loss and time."""

    epochs_done: int
    epochs: int
    history: tuple[SupernetEpoch, ...]
    resumed_from: int
    wall_s: float


def smallest_choices(space: DecisionSpace) -> dict:
    """The cheapest option of every decision (narrowest, blocks skipped, separable convs, smallest
    kernel/expansion/resolution)."""
    cheapest = {"keep": False, "separable": True}
    return {d.name: cheapest[d.kind] if d.kind in cheapest else min(d.options) for d in space.decisions}


def random_choices(space: DecisionSpace, rng: np.random.Generator) -> dict:
    return {d.name: d.options[int(rng.integers(len(d.options)))] for d in space.decisions}


class Supernet:
    """The masked prototype (``model``) plus what it takes to address one sub-network in it."""

    def __init__(self, space: DecisionSpace, importance: dict[str, np.ndarray], seed: int = 0):
        import keras
        from keras import layers

        from toolkit.arch import build_model
        from toolkit.arch.builder import build_block

        self.space = space
        self.importance = importance
        self.mask_widths: dict[str, int] = {}  # mask input name -> channels
        self.gated: list[str] = [d.target for d in space.decisions if d.kind == "keep"]
        self.selectable: list[str] = [d.target for d in space.decisions if d.kind == "separable"]
        inputs: list = []

        def post_bn(x, bn_name: str):
            channels = int(x.shape[-1])
            m = keras.Input((channels,), name=f"mask_{bn_name}")
            inputs.append(m)
            self.mask_widths[m.name] = channels
            r = layers.Reshape((1, 1, channels), name=f"mask_{bn_name}_reshape")(m)
            return layers.Multiply(name=f"mask_{bn_name}_apply")([x, r])

        counter = iter(range(10_000))

        def init():  # the separable forms' own layers: the prototype has none to give them
            return keras.initializers.HeNormal(seed=seed * 10_000 + 5_000 + next(counter))

        def gate(x_in, y, block):
            if block.name in self.selectable:  # both forms from the same input; op = 1 picks the separable one
                y_sep = build_block(x_in, replace(block, separable=True), space.prototype.num_classes, init, post_bn)
                op = keras.Input((1,), name=f"op_{block.name}")
                inputs.append(op)
                r = layers.Reshape((1, 1, 1), name=f"op_{block.name}_reshape")(op)
                delta = layers.Subtract(name=f"op_{block.name}_delta")([y_sep, y])
                y = layers.Add(name=f"op_{block.name}_out")([y, layers.Multiply(name=f"op_{block.name}_apply")(
                    [delta, r])])
            if block.name not in self.gated:
                return y
            g = keras.Input((1,), name=f"gate_{block.name}")
            inputs.append(g)
            r = layers.Reshape((1, 1, 1), name=f"gate_{block.name}_reshape")(g)
            delta = layers.Subtract(name=f"gate_{block.name}_delta")([y, x_in])
            return layers.Add(name=f"gate_{block.name}_out")([x_in, layers.Multiply(
                name=f"gate_{block.name}_apply")([delta, r])])

        self.model = build_model(space.prototype, seed=seed, post_bn=post_bn, gate=gate, extra_inputs=inputs,
                                 any_resolution=True)
        self.input_names = [t.name for t in inputs]
        self.largest = space.prototype_choices()
        self.smallest = smallest_choices(space)

    @classmethod
    def from_prototype(cls, prototype_model, space: DecisionSpace, importance: dict[str, np.ndarray]) -> "Supernet":
        """A supernet whose weights are the trained prototype's (same layer names)."""
        sn = cls(space, importance)
        own = {layer.name: layer for layer in sn.model.layers}
        for layer in prototype_model.layers:
            if layer.get_weights() and layer.name in own:
                own[layer.name].set_weights(layer.get_weights())
        return sn

    def masks(self, choices: dict) -> list[np.ndarray]:
        """The mask inputs (each shaped (1, C)) that make the supernet compute sub-network ``choices``."""
        child = self.space.apply(choices)
        values = {name: np.zeros((1, width), np.float32) for name, width in self.mask_widths.items()}
        for p in channel_plan(self.space, child, self.importance):
            key = f"mask_{p.bn}"
            if p.bn is not None and key in values:
                values[key][0, p.channels] = 1.0
        enabled = {b.name: b.enabled for b in child.blocks}
        for block in self.gated:
            values[f"gate_{block}"] = np.array([[1.0 if enabled[block] else 0.0]], np.float32)
        separable = {b.name: b.separable for b in child.blocks}
        for block in self.selectable:
            values[f"op_{block}"] = np.array([[1.0 if separable[block] else 0.0]], np.float32)
        return [values[name] for name in self.input_names]

    def images(self, x, choices: dict):
        """``x`` (a batch at the input's size) as sub-network ``choices`` sees it: resized to its resolution with
        the resize its extracted model has in front (bilinear, ``tf.image.resize``)."""
        import tensorflow as tf

        side = self.space.resolution_of(choices)
        if tuple(x.shape[1:3]) == (side, side):
            return tf.convert_to_tensor(x)
        return tf.image.resize(x, (side, side), method="bilinear")

    def __call__(self, x, choices: dict, training: bool = False):
        """The masked supernet's logits for sub-network ``choices`` on images ``x`` (input size)."""
        import tensorflow as tf

        masks = [tf.constant(m) for m in self.masks(choices)]
        return self.model([self.images(x, choices), *masks], training=training)

    def extract(self, choices: dict, name: str | None = None):
        """The sub-network ``choices`` as a plain Keras model with the supernet's weights for its channels.

        Its batch-norm statistics are the supernet's; call :func:`recalibrate_bn` before evaluating it."""
        from toolkit.arch import build_model

        spec = self.space.apply(choices, name=name)
        child = build_model(spec, seed=0)
        inherit_weights(self.model, child, self.space, spec, self.importance)
        return child, spec

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, folder: Path, state: dict) -> None:
        tmp = folder / f".{CHECKPOINT}.tmp.weights.h5"
        self.model.save_weights(tmp)
        tmp.replace(folder / CHECKPOINT)  # atomic: a kill never leaves a half-written checkpoint
        tmp_state = folder / f".{STATE}.tmp"
        tmp_state.write_text(json.dumps(state, indent=2))
        tmp_state.replace(folder / STATE)

    def load(self, folder: Path) -> dict:
        state = read_state(folder)
        self.model.load_weights(folder / CHECKPOINT)
        return state


def read_state(folder: Path) -> dict:
    """The checkpoint's state: epochs done, the training images' description, per-epoch history."""
    state_file = folder / STATE
    try:
        return json.loads(state_file.read_text())
    except (OSError, ValueError) as exc:
        raise ToolkitError(f"Cannot read the supernet checkpoint state {str(state_file)!r}: {exc}. "
                           f"Delete {str(folder / CHECKPOINT)!r} and {str(state_file)!r} to retrain it") from exc


def has_checkpoint(folder: Path) -> bool:
    return (folder / CHECKPOINT).is_file() and (folder / STATE).is_file()


def train_supernet(sn: Supernet, x: np.ndarray, y: np.ndarray, epochs: int, folder: Path, *,
                   batch_size: int = 128, learning_rate: float = 1e-3, n_random: int = 2, seed: int = 0,
                   progress: bool = False, data: dict | None = None) -> SupernetTraining:
    """Sandwich-rule training with in-place distillation (module docstring); checkpoint every epoch, resume.

    ``x``/``y`` are the training images (never the validation or test split); ``data`` describes which images
    they are and is kept in the checkpoint, so a run that reuses the supernet can check it splits the same way."""
    import keras
    import tensorflow as tf

    if not isinstance(epochs, int) or epochs < 0:
        raise InvalidArgumentError(f"supernet epochs must be an integer >= 0. Received: supernet_epochs={epochs!r}")
    if n_random < 0:
        raise InvalidArgumentError(f"n_random must be >= 0. Received: n_random={n_random!r}")
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    done, history = 0, []
    if has_checkpoint(folder):
        state = sn.load(folder)
        done = int(state.get("epochs_done", 0))
        history = [SupernetEpoch(**h) for h in state.get("history", [])]
        log.info("supernet: resumed after epoch %d of %d", done, epochs)
    resumed_from = done
    if done >= epochs:
        return SupernetTraining(done, epochs, tuple(history), resumed_from, time.perf_counter() - started)

    steps = max(1, int(np.ceil(len(x) / batch_size)))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps * epochs, alpha=0.05)
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build(sn.model.trainable_variables)
    optimizer.iterations.assign(steps * done)  # the schedule continues where the checkpoint stopped
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model = sn.model
    n_sub = 2 + n_random

    # One trace for every step: image sides vary with the sub-networks' resolutions and the last batch is smaller;
    # without a signature each new combination of sides was traced again (tens of seconds each, on 2 cores).
    mask_specs = [tf.TensorSpec((n_sub, width), tf.float32) for width in
                  (int(m.shape[1]) for m in sn.masks(sn.largest))]
    signature = ([tf.TensorSpec((None, None, None, int(x.shape[-1])), tf.float32)] * n_sub,
                 tf.TensorSpec((None,), tf.as_dtype(y.dtype)), mask_specs)

    @tf.function(input_signature=signature)
    def step(images, yb, stacked):  # images[i]: the batch at sub-network i's resolution
        with tf.GradientTape() as tape:
            logits = model([images[0], *[m[0:1] for m in stacked]], training=True)
            loss = ce(yb, logits)
            soft = tf.stop_gradient(tf.nn.softmax(logits))
            for i in range(1, n_sub):
                student = model([images[i], *[m[i:i + 1] for m in stacked]], training=True)
                loss += tf.reduce_mean(keras.losses.categorical_crossentropy(soft, student, from_logits=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss / n_sub

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=(epochs - done) * steps, desc="supernet", unit="step", leave=False)
    try:
        for epoch in range(done, epochs):
            t0 = time.perf_counter()
            rng = np.random.default_rng(seed * 7919 + epoch)
            order = rng.permutation(len(x))
            losses = []
            for s in range(steps):
                idx = order[s * batch_size:(s + 1) * batch_size]
                subnets = [sn.largest, sn.smallest] + [random_choices(sn.space, rng) for _ in range(n_random)]
                stacked = [np.concatenate(parts, axis=0) for parts in zip(*(sn.masks(c) for c in subnets))]
                xb = tf.constant(x[idx])
                losses.append(float(step([sn.images(xb, c) for c in subnets], tf.constant(y[idx]), stacked)))
                if bar is not None:
                    bar.update(1)
            history.append(SupernetEpoch(epoch + 1, float(np.mean(losses)), time.perf_counter() - t0))
            sn.save(folder, {"epochs_done": epoch + 1, "epochs": epochs, "data": data, "separable": sn.space.separable,
                             "root": sn.space.prototype.spec_hash(),
                             "history": [h.__dict__ for h in history]})
            log.info("supernet epoch %d/%d: loss %.4f in %.0f s", epoch + 1, epochs, history[-1].loss,
                     history[-1].seconds)
    finally:
        if bar is not None:
            bar.close()
    return SupernetTraining(epochs, epochs, tuple(history), resumed_from, time.perf_counter() - started)


def recalibrate_bn(model, x: np.ndarray, batch_size: int = 128) -> None:
    """Re-estimate every batch norm's moving mean/variance as the average over the batches of ``x``.

    Runs the model in training mode batch by batch with momentum i/(i+1) at batch i (a cumulative average);
    only the moving statistics change (no gradient step). Restores the layers' momentum afterwards."""
    import keras

    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns or len(x) == 0:
        return
    saved = [layer.momentum for layer in bns]
    try:
        for i, start in enumerate(range(0, len(x), batch_size)):
            for layer in bns:
                layer.momentum = i / (i + 1.0)
            model(x[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(bns, saved):
            layer.momentum = momentum

