"""The embedded default job behind `ferminet demo`: no phone, no server, no flags needed.

Trains the default prototype briefly on Fashion-MNIST, converts it to float32 and int8 TFLite
(validated), profiles both on the host, and records everything in the results store.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import InvalidArgumentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    out_dir: str = "ferminet-out"
    db: str = "ferminet.db"
    prototype: str = "resnet20"
    dataset: str = "fashion_mnist"
    n_train: int = 12_000
    n_test: int = 2_000
    epochs: int = 2
    threads: int = 1
    runs: int = 50
    seed: int = 0


@dataclass(frozen=True)
class DemoRow:
    """One artifact of the demo: its accuracy and how it ran on the host."""

    name: str
    path: str
    mode: str
    top1: float
    macs: int
    params: int
    size_kb: float
    median_ms: float
    latency_source: str
    energy_mj: float | None
    energy_source: str | None


@dataclass(frozen=True)
class DemoResult:
    run_id: str
    db: str
    out_dir: str
    rows: tuple[DemoRow, ...]
    train_top1: float
    eval_samples: int


def run_demo(config: DemoConfig = DemoConfig()) -> DemoResult:
    """Train -> convert (fp32, int8) -> profile on the host -> store. Returns the table rows."""
    from toolkit.arch import build_model, count_macs, count_params, get_prototype
    from toolkit.convert import convert_model
    from toolkit.data import load_dataset
    from toolkit.provenance import file_sha256
    from toolkit.store import ModelRecord, Store, check_store_path
    from toolkit.targets import HostTarget, ProfileOptions
    from toolkit.train import TrainBudget, train

    check_store_path(config.db)
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"The demo's output path is a file. Received: out={str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)

    data = load_dataset(config.dataset, n_train=config.n_train, n_test=config.n_test, seed=config.seed)
    spec = get_prototype(config.prototype, data.input_shape, data.num_classes)
    model = build_model(spec, seed=config.seed)
    trained = train(model, data, TrainBudget(epochs=config.epochs), seed=config.seed)
    keras_path = out / f"{config.prototype}.keras"
    model.save(keras_path)
    macs, params = count_macs(model), count_params(model)

    target = HostTarget()
    options = ProfileOptions(num_threads=config.threads, num_runs=config.runs)
    rows, records, measurements = [], [], []
    for mode in ("fp32", "int8"):
        path = out / f"{config.prototype}_{mode}.tflite"
        conv = convert_model(model, data, path, mode=mode, keras_top1=trained.test_top1)
        m = target.profile(path, options, macs=macs)
        records.append(ModelRecord(
            model_id=file_sha256(path), path=str(path.resolve()), format="tflite", name=path.stem,
            quantization=mode, size_kb=conv.size_kb, macs=macs, params=params, dataset=data.name,
            keras_top1=conv.keras_top1, tflite_top1=conv.tflite_top1, accuracy_drop_pt=conv.drop_pt,
            eval_samples=conv.eval_samples, spec_json=spec.to_json()))
        measurements.append(m)
        rows.append(DemoRow(path.stem, str(path), mode, conv.tflite_top1, macs, params, conv.size_kb,
                            m.latency.median_ms, m.source,
                            m.energy.energy_per_inference_mj if m.energy else None,
                            m.energy.source if m.energy else None))
    with Store(config.db) as store:
        run_id = store.record_run("demo", "ferminet demo", config.__dict__, models=tuple(records),
                                  measurements=tuple(measurements))
    return DemoResult(run_id, config.db, str(out), tuple(rows), trained.test_top1, len(data.x_test))
