import keras
import pytest

from tests.conftest import small_cnn
from toolkit.errors import InvalidArgumentError
from toolkit.train import TrainBudget, train


def test_training_learns_far_above_chance(trained_small):
    _, result = trained_small
    assert result.test_top1 > 0.6  # 10 classes: chance is 0.1
    assert result.epochs_run == 4 and result.stopped_reason == "epochs"
    assert result.history[-1].loss < result.history[0].loss


def test_seconds_budget_stops_training(fmnist_small):
    result = train(small_cnn(), fmnist_small, TrainBudget(epochs=500, seconds=2.0), progress=False)
    assert result.stopped_reason == "seconds"
    assert result.epochs_run < 500 and result.wall_s < 30


def test_early_stopping_uses_validation(fmnist_small):
    data = fmnist_small.with_validation(0.2)
    result = train(small_cnn(), data, TrainBudget(epochs=3), early_stopping_patience=1, progress=False)
    assert result.val_top1 is not None and all(h.val_accuracy is not None for h in result.history)


def test_wrong_input_shape_is_rejected(fmnist_small):
    model = small_cnn(input_shape=(32, 32, 3))
    with pytest.raises(InvalidArgumentError, match=r"\(32, 32, 3\).*\(28, 28, 1\)"):
        train(model, fmnist_small, TrainBudget(epochs=1), progress=False)


@pytest.mark.parametrize("kwargs", [dict(epochs=0), dict(epochs=None, seconds=None), dict(epochs=1, seconds=-1)])
def test_bad_budgets(kwargs):
    with pytest.raises(InvalidArgumentError):
        TrainBudget(**kwargs)


def test_unknown_augmentation(fmnist_small):
    with pytest.raises(InvalidArgumentError, match="rotate"):
        train(keras.models.clone_model(small_cnn()), fmnist_small, TrainBudget(epochs=1), augment=("rotate",),
              progress=False)
