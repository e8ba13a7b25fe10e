"""Dataset loaders -> :class:`Dataset` (float32 NHWC in [0, 1]) + representative samples for int8."""
from toolkit.data.datasets import NAMED_DATASETS, Dataset, load_dataset

__all__ = ["Dataset", "NAMED_DATASETS", "load_dataset"]
