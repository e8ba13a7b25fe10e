"""``benchmarks/final_budget.py``: distillation's gain is paired network by network, seed by seed."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from final_budget import distillation_gains  # noqa: E402


def _r(network, teacher, seed, val, test, epochs=6):
    return {"network": network, "teacher": teacher, "epochs": epochs, "seed": seed, "val_top1": val,
            "test_top1": test}


def test_gains_pair_each_distilled_network_with_its_plain_twin():
    rows = [_r("reference", "none", 0, 0.92, 0.91),
            _r("g:a", "none", 0, 0.90, 0.89), _r("g:a", "reference", 0, 0.905, 0.893),
            _r("g:a", "none", 1, 0.80, 0.79), _r("g:a", "reference", 1, 0.798, 0.80),
            _r("g:b", "none", 0, 0.85, 0.84), _r("g:b", "reference", 0, 0.86, 0.83),
            _r("g:b", "reference", 3, 0.99, 0.99)]  # no plain twin at seed 3: left out
    gains = distillation_gains(rows, ["none", "reference"])
    assert set(gains) == {"reference"}
    g = gains["reference"]
    assert g["pairs"] == 3
    assert g["val_pt_mean"] == pytest.approx((0.5 - 0.2 + 1.0) / 3)
    assert g["val_better"] == 2
    assert g["test_pt_mean"] == pytest.approx((0.3 + 1.0 - 1.0) / 3)


def test_no_teacher_no_gain():
    assert distillation_gains([_r("g:a", "none", 0, 0.9, 0.9)], ["none"]) == {}
