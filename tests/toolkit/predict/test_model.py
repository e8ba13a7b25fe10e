"""The predictor fitted on real NAS-Bench-201 kernels and public measurements; its labels and its file."""
from __future__ import annotations

import pytest

from toolkit.errors import InvalidArgumentError, ModelFileError
from toolkit.predict import LatencyPredictor, read_kernels
from toolkit.provenance import source_kind
from tests.toolkit.predict.conftest import ARCHS


@pytest.fixture(scope="module")
def fitted(nb201_files, nb201_csv):
    kernels = [read_kernels(nb201_files[a]) for a in ARCHS]
    raspi = nb201_csv.set_index("arch")["raspi4_ms"]
    # the files hold one cell per stage: a fifth of the cell work, so fit on them as they are (a device of
    # its own), with the public values only setting a realistic scale and order
    values = [float(raspi[a]) for a in ARCHS]
    return kernels, values, LatencyPredictor.fit_networks(kernels, values, device="raspi4", members=4, seed=0)


def test_prediction_is_labelled_predicted_and_carries_an_uncertainty(fitted):
    kernels, values, predictor = fitted
    p = predictor.predict(kernels[2])
    assert p.source == "predicted:raspi4" and source_kind(p.source) == "predicted"
    assert p.unit == "ms" and p.value > 0 and p.uncertainty > 0 and p.low < p.value < p.high
    assert p.unseen_kernels == 0 and p.kernels == len(kernels[2])


def test_predictions_follow_the_measured_order(fitted):
    kernels, values, predictor = fitted
    preds = [p.value for p in predictor.predict_many(kernels)]
    assert preds == [predictor.predict(k).value for k in kernels]
    light, heavy = values.index(min(values)), values.index(max(values))
    assert preds[heavy] > 2 * preds[light]


def test_save_and_load_give_the_same_predictions(fitted, tmp_path):
    kernels, _, predictor = fitted
    path = predictor.save(tmp_path / "p.joblib")
    assert (tmp_path / "p.joblib.json").is_file()
    again = LatencyPredictor.load(path)
    assert again.predict(kernels[2]) == predictor.predict(kernels[2])
    (tmp_path / "junk.joblib").write_bytes(b"not a predictor")
    with pytest.raises(ModelFileError, match="predictor"):
        LatencyPredictor.load(tmp_path / "junk.joblib")


def test_bad_fitting_input_names_the_value(fitted):
    kernels, values, _ = fitted
    with pytest.raises(InvalidArgumentError, match="Received"):
        LatencyPredictor.fit_networks(kernels[:2], values[:2], device="x")
    with pytest.raises(InvalidArgumentError, match="Received"):
        LatencyPredictor.fit_networks(kernels, values[:-1], device="x")
    with pytest.raises(InvalidArgumentError, match="> 0"):
        LatencyPredictor.fit_networks(kernels, [0.0] * len(kernels), device="x")
    with pytest.raises(InvalidArgumentError, match="quantity"):
        LatencyPredictor.fit_networks(kernels, values, device="x", quantity="watts")


def test_energy_is_predicted_the_same_way_in_mj(fitted):
    kernels, values, _ = fitted
    energy = LatencyPredictor.fit_networks(kernels, [0.8 * v for v in values], device="pixel_6",
                                           quantity="energy_mj", members=3)
    p = energy.predict(kernels[1])
    assert p.unit == "mJ" and p.quantity == "energy_mj" and p.source == "predicted:pixel_6" and p.value > 0
