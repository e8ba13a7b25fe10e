"""Ship a model to an app: ``.tflite`` with standard metadata, ``labels.txt`` and ``model_card.json``.

Android image classifiers (MediaPipe Tasks, TFLite Support) take RGB images. A grayscale model exported
from its ``.keras`` file gets a fixed RGB -> gray input layer (a 1x1 convolution averaging the channels) and
is converted to int8 with float input/output (validated like every conversion), so the metadata's
normalisation (mean 0, std 255: pixels 0..255 -> the [0, 1] the model was trained on) applies. A ``.tflite``
with a single input channel is refused unless ``allow_grayscale`` (apps calling the interpreter directly).

Apps read the output as class probabilities (MediaPipe's ImageClassifier reports it as ``score``; a
``score > 0.5`` threshold must mean something), so a model that ends in logits gets a softmax: a ``.keras``
model is converted with a Softmax layer appended (computed in int8 like the rest of the graph; the top-1
validated against the Keras model is unchanged, softmax keeps the order), and a ``.tflite`` whose output is
not a softmax is refused unless ``allow_logits``.

Nothing the user owns is overwritten without ``force``: a non-empty ``out_dir``, or the model/labels files
already in an app's assets folder. Files are written through temporary names (``.NAME.ferminet-tmp-<pid>``)
with normal permissions and renamed into place.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit import safe_io
from toolkit.errors import InvalidArgumentError, ModelFileError
from toolkit.export.metadata import ImageClassifierMetadata, attach, build_metadata


@dataclass(frozen=True)
class ExportResult:
    out_dir: str
    tflite_path: str
    labels_path: str
    model_card_path: str
    android_assets: str | None
    model_card: dict


def _rgb_wrapper(model):
    import keras

    inp = keras.Input(tuple(model.input_shape[1:3]) + (3,), name="rgb")
    gray = keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="rgb_to_gray")
    x = gray(inp)
    gray.set_weights([np.full((1, 1, 3, 1), 1.0 / 3.0, np.float32)])
    return keras.Model(inp, model(x), name=f"{model.name}_rgb")


def _ends_in_softmax(model) -> bool:
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    return last.__class__.__name__ == "Softmax" or activation == "softmax"


def _with_softmax(model):
    """``model`` followed by a softmax over classes (unchanged when it already ends in one)."""
    import keras

    if _ends_in_softmax(model):
        return model
    return keras.Model(model.inputs, keras.layers.Softmax(name="probabilities")(model.outputs[0]),
                       name=f"{model.name}_probabilities")


_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE"}


def tflite_outputs_probabilities(path: str | Path) -> bool:
    """True when the model's (first) output is produced by a SOFTMAX (possibly followed by
    (de)quantize/reshape ops)."""
    from toolkit.convert import load_interpreter

    interpreter = load_interpreter(path, default_delegates=False)
    ops = interpreter._get_ops_details()  # the public API has no op listing; stable across TF/LiteRT
    producer = {int(t): op for op in ops for t in op["outputs"]}
    tensor = interpreter.get_output_details()[0]["index"]
    for _ in range(len(ops) + 1):
        op = producer.get(int(tensor))
        if op is None:
            return False
        if op["op_name"] == "SOFTMAX":
            return True
        if op["op_name"] not in _PASS_THROUGH:
            return False
        tensor = op["inputs"][0]
    return False


def _store_facts(db: str | None, model_id: str) -> tuple[list[dict], dict]:
    """Measurements of this exact file (by SHA-256) and its synthesis candidate row, from the store."""
    if not db or not Path(db).is_file():
        return [], {}
    from toolkit.store import Store

    with Store(db) as store:
        rows = store.query("SELECT device, source, num_threads, median_ms, energy_mj, inferences_per_j, energy_source,"
                           " energy_method, provenance_json FROM measurements WHERE model_id=?", (model_id,))
        cand = store.query("SELECT c.run_id, c.strategy, c.requirements_met, c.failure_reason, r.options_json "
                           "FROM candidates c JOIN runs r USING(run_id) WHERE c.model_id=?", (model_id,))
    measured = []
    for r in rows:
        prov = json.loads(r["provenance_json"] or "{}")
        measured.append({"device": r["device"], "device_model": prov.get("model", prov.get("cpu", "")),
                         "android_release": prov.get("android_release"), "threads": r["num_threads"],
                         "latency_median_ms": r["median_ms"], "latency_source": r["source"],
                         "energy_mj_per_inference": r["energy_mj"], "inferences_per_joule": r["inferences_per_j"],
                         "energy_source": r["energy_source"], "energy_method": r["energy_method"]})
    requirements = {}
    if cand:
        options = json.loads(cand[0]["options_json"] or "{}")
        requirements = {"run": cand[0]["run_id"], "strategy": cand[0]["strategy"],
                        "requirements": options.get("requirements", []), "met": bool(cand[0]["requirements_met"]),
                        "failure": cand[0]["failure_reason"]}
    return measured, requirements


def export_model(model_path: str | Path, out_dir: str | Path, *, labels: str | Path | None = None,
                 dataset: str | None = None, name: str | None = None, description: str = "",
                 version: str = "1.0", author: str = "", license: str = "", android_assets: str | Path | None = None,
                 db: str | None = "ferminet.db", allow_grayscale: bool = False, allow_logits: bool = False,
                 force: bool = False) -> ExportResult:
    """Export ``model_path`` (``.tflite``, or ``.keras`` converted here) for apps. See the module docstring."""
    from toolkit.convert import check_tflite_file, convert_model, inspect_tflite, load_keras_model
    from toolkit.provenance import file_sha256

    src = Path(model_path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out must be a folder; {str(out)!r} is a file. Pass a folder path")
    if not out.parent.is_dir():
        raise InvalidArgumentError(f"The parent folder of --out does not exist. Received: out={str(out)!r}; "
                                   f"create {str(out.parent)!r} first")
    if out.exists() and any(out.iterdir()) and not force:
        raise InvalidArgumentError(f"The output folder {str(out)!r} is not empty; pass another --out, or --force to "
                                   f"replace the files the export writes there (the model, labels.txt, "
                                   f"model_card.json; nothing else)")
    assets = None
    if android_assets is not None:
        module = Path(android_assets)
        if not force and not ((module / "src" / "main").is_dir() or any((module / f).is_file() for f in
                                                                            ("build.gradle", "build.gradle.kts"))):
            raise InvalidArgumentError(f"{str(module)!r} does not look like an Android app module (no src/main, no "
                                       f"build.gradle). Pass the module folder (e.g. app/) or --force")
        assets = module / "src" / "main" / "assets"
        model_name = name or src.stem
        taken = [f for f in (f"{model_name}.tflite", "labels.txt") if (assets / f).exists()]
        if taken and not force:
            raise InvalidArgumentError(f"The app already has {', '.join(taken)} in {str(assets)!r}; pass --force to "
                                       f"replace them, or another --name")
    class_names: list[str] | None = None
    if labels is not None:
        if not Path(labels).is_file():
            raise InvalidArgumentError(f"No labels file at {str(labels)!r}; pass a text file with one class per line")
        class_names = [l.strip() for l in Path(labels).read_text(encoding="utf-8").splitlines() if l.strip()]
    facts: dict = {}
    safe_io.remove_stale_temps(out.parent)
    tmp = safe_io.temp_path(out)
    shutil.rmtree(tmp, ignore_errors=True)  # only ever ours: the name carries this process's id
    tmp.mkdir()
    try:
        if src.suffix in (".keras", ".h5"):
            if dataset is None:
                raise InvalidArgumentError("Exporting a .keras model converts it: pass --data (the dataset it was "
                                           "trained on) for validation and calibration")
            from toolkit.data import load_dataset

            data = load_dataset(dataset)
            model = load_keras_model(src)
            if model.input_shape[-1] == 1:
                model = _rgb_wrapper(model)
                data = type(data)(**{**data.__dict__, "x_train": np.repeat(data.x_train, 3, -1),
                                     "x_test": np.repeat(data.x_test, 3, -1), "x_val": data.x_val})
                facts["input_adapter"] = "RGB -> gray 1x1 conv (channel mean) added for RGB image classifiers"
            if not _ends_in_softmax(model):
                model = _with_softmax(model)
                facts["output_adapter"] = "softmax added: the output is class probabilities"
            conv = convert_model(model, data, tmp / "converted.tflite", mode="int8", io_dtype="float32",
                                 eval_samples=2000)
            facts.update(dataset=data.name, int8_top1=conv.tflite_top1, keras_top1=conv.keras_top1,
                         eval_samples=conv.eval_samples)
            class_names = class_names or list(data.class_names)
            tflite = tmp / "converted.tflite"
        else:
            tflite = check_tflite_file(src)
        info = inspect_tflite(tflite)
        inp, outp = info.inputs[0], info.outputs[0]
        if len(inp.shape) != 4:
            raise ModelFileError(f"{src} is not an image model (input shape {list(inp.shape)})")
        channels = inp.shape[-1]
        if channels == 1 and not allow_grayscale:
            raise InvalidArgumentError(
                f"{src} takes 1-channel images; app image classifiers need RGB. Export its .keras model with --data "
                f"(adds an RGB->gray input layer), or pass --allow-grayscale for apps that call the interpreter")
        if inp.dtype not in ("float32", "uint8"):
            raise InvalidArgumentError(f"{src} has {inp.dtype} input; app image classifiers take float32 or uint8. "
                                       f"Re-convert with `ferminet convert --io float32` (or uint8)")
        probabilities = tflite_outputs_probabilities(tflite)
        if not probabilities and not allow_logits:
            raise InvalidArgumentError(
                f"{src} outputs logits, not class probabilities (its output is not a softmax), so an app's score "
                f"threshold would be meaningless. Export its .keras model with --data (a softmax is added), or pass "
                f"--allow-logits")
        if class_names is None:
            raise InvalidArgumentError("No labels: pass --labels labels.txt (one class name per line)")
        if len(class_names) != outp.shape[-1]:
            raise InvalidArgumentError(f"labels has {len(class_names)} classes but the model outputs {outp.shape[-1]}")
        norm_mean, norm_std = (0.0, 255.0) if inp.dtype == "float32" else (0.0, 1.0)
        meta = ImageClassifierMetadata(name=name or src.stem, description=description or
                                       f"Image classifier exported by ferminet-toolkit from {src.name}",
                                       version=version, author=author, license=license, labels_file="labels.txt",
                                       norm_mean=norm_mean, norm_std=norm_std, channels=3 if channels == 3 else 1,
                                       probabilities=probabilities)
        labels_bytes = ("\n".join(class_names) + "\n").encode()
        if any(safe_io.same_file(src, out / f) for f in (f"{meta.name}.tflite", "labels.txt", "model_card.json")):
            raise InvalidArgumentError(f"The export would overwrite its input {str(src)!r}; pass another --out or "
                                       f"--name")
        final = tmp
        model_file = final / f"{meta.name}.tflite"
        model_file.write_bytes(attach(tflite.read_bytes(), build_metadata(meta), {"labels.txt": labels_bytes}))
        (final / "labels.txt").write_bytes(labels_bytes)
        measured, requirements = _store_facts(db, file_sha256(tflite))
        card = {
            "name": meta.name, "version": version, "description": meta.description, "author": author,
            "license": license or "unspecified", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source_model": str(src), "file": model_file.name, "size_kb": round(model_file.stat().st_size / 1024, 2),
            "input": {"shape": list(inp.shape), "dtype": inp.dtype, "normalization": {"mean": norm_mean,
                                                                                      "std": norm_std}},
            "output": {"shape": list(outp.shape), "dtype": outp.dtype, "labels": "labels.txt"},
            "output_probabilities": probabilities,
            "fully_int8_compute": info.fully_int8, "op_histogram": dict(info.op_histogram),
            "macs": _macs(src), "requirements": requirements,
            "measurements": measured, **facts}
        card["params"] = card["macs"] and _params(src)
        (final / "model_card.json").write_text(json.dumps(card, indent=2))
        written = (model_file.name, "labels.txt", "model_card.json")
        out.mkdir(exist_ok=True)
        for f in written:
            _copy_published(final / f, out / f)
        if assets is not None:
            assets.mkdir(parents=True, exist_ok=True)
            for f in written[:2]:
                _copy_published(final / f, assets / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult(str(out), str(out / model_file.name), str(out / "labels.txt"), str(out / "model_card.json"),
                        str(assets) if assets else None, card)


def _copy_published(src: Path, final: Path) -> None:
    """Copy ``src`` to ``final`` through a temporary name beside it (normal permissions, atomic rename)."""
    safe_io.remove_stale_temps(final.parent)
    tmp = safe_io.temp_path(final)
    try:
        shutil.copyfile(src, tmp)
        safe_io.publish(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _macs(src: Path) -> int | None:
    if src.suffix not in (".keras", ".h5"):
        return None
    from toolkit.arch import count_macs
    from toolkit.convert import load_keras_model

    return count_macs(load_keras_model(src))


def _params(src: Path) -> int | None:
    from toolkit.arch import count_params
    from toolkit.convert import load_keras_model

    return count_params(load_keras_model(src))
