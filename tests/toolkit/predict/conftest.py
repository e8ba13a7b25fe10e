"""A handful of real NAS-Bench-201 networks, built and converted once for the predictor tests.

They are converted with one cell per stage (the same skeleton, a quarter of the operators) to keep the tests
fast; test_nb201 checks that composing those kernels gives the whole network's."""
from __future__ import annotations

from pathlib import Path

import pytest

CSV = Path(__file__).resolve().parent / "data" / "nb201_sample.csv"  # 45 rows of the public CSV (see data/README.md)

# From light (skips and pools) to heavy (3x3 convolutions on every edge).
ARCHS = (
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
)


@pytest.fixture(scope="session")
def nb201_files(tmp_path_factory):
    """{arch: path of its 1-cell-per-stage float32 .tflite}."""
    from toolkit.predict.nb201 import build_tflite

    folder = tmp_path_factory.mktemp("nb201")
    return {a: build_tflite(a, folder / f"net{i}.tflite", cells_per_stage=1) for i, a in enumerate(ARCHS)}


@pytest.fixture(scope="session")
def nb201_csv():
    import pandas as pd

    return pd.read_csv(CSV)
