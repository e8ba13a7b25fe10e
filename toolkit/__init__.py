"""ferminet-toolkit: synthesize, convert, measure and ship efficient networks for phones.

The public API is curated here; internals may move. Heavy modules (TensorFlow) load on first use.

    from toolkit import load_dataset, train, TrainBudget, convert_model, HostTarget, ProfileOptions
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "toolkit.data",
    "Dataset": "toolkit.data",
    "train": "toolkit.train",
    "TrainBudget": "toolkit.train",
    "TrainResult": "toolkit.train",
    "convert_model": "toolkit.convert",
    "ConversionResult": "toolkit.convert",
    "inspect_tflite": "toolkit.convert",
    "evaluate_tflite": "toolkit.convert",
    "HostTarget": "toolkit.targets",
    "ProfileOptions": "toolkit.targets",
    "Measurement": "toolkit.targets",
    "get_target": "toolkit.targets",
    "Store": "toolkit.store",
    "read_measurements": "toolkit.store",
    "ToolkitError": "toolkit.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
