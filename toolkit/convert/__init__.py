"""Keras -> TFLite (int8 / fp16 / dynamic / fp32), validated against the Keras model in LiteRT."""
from toolkit.convert.converter import IO_DTYPES, MODES, ConversionResult, convert_model, load_keras_model
from toolkit.convert.interpreter import (
    ModelInfo,
    TensorInfo,
    check_tflite_file,
    evaluate_tflite,
    inspect_tflite,
    load_interpreter,
    predict_tflite,
)

__all__ = [
    "ConversionResult", "IO_DTYPES", "MODES", "ModelInfo", "TensorInfo", "check_tflite_file", "convert_model",
    "evaluate_tflite", "inspect_tflite", "load_interpreter", "load_keras_model", "predict_tflite",
]
