"""Kernel-level latency/energy predictor: split a .tflite into kernels, fit one regressor per kernel type
from the store's measurements, predict a network as the sum of its kernels plus a fitted overhead."""
from toolkit.predict.kernels import FEATURE_NAMES, Kernel, kernels_from_bytes, read_kernels, total_macs
from toolkit.predict.model import LatencyPredictor, Prediction

__all__ = ["FEATURE_NAMES", "Kernel", "LatencyPredictor", "Prediction", "kernels_from_bytes", "read_kernels",
           "total_macs"]
