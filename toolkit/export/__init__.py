"""Ship models to apps: .tflite with standard metadata + labels.txt + model_card.json."""
from toolkit.export.exporter import ExportResult, export_model
from toolkit.export.metadata import read_metadata

__all__ = ["ExportResult", "export_model", "read_metadata"]
