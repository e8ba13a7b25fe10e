"""Budgeted training / fine-tuning of Keras classifiers."""
from toolkit.train.trainer import EpochStat, TrainBudget, TrainResult, evaluate_keras, train

__all__ = ["EpochStat", "TrainBudget", "TrainResult", "evaluate_keras", "train"]
