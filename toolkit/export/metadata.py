"""Standard TFLite model metadata, written with the flatbuffer schemas mediapipe ships.

The metadata (``ModelMetadata``, file identifier ``M001``) goes into a new model buffer referenced by a
``TFLITE_METADATA`` entry of the model; associated files (the labels) are appended to the model as a zip
archive, which TFLite ignores and metadata readers (MediaPipe Tasks, Android's TFLite Support) open.
mediapipe's own metadata writer needs a compiled module its current wheel lacks, so the same structure is
built here from ``mediapipe.tasks.metadata.metadata_schema_py_generated`` and ``schema_py_generated``.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from toolkit.errors import ModelFileError

METADATA_NAME = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"


@dataclass(frozen=True)
class ImageClassifierMetadata:
    name: str
    description: str
    version: str
    author: str
    license: str
    labels_file: str  # name of the associated labels file
    norm_mean: float
    norm_std: float
    channels: int
    probabilities: bool = True  # the output is a softmax (else logits, exported with allow_logits)


def _schemas():
    try:
        from mediapipe.tasks.metadata import metadata_schema_py_generated as meta
        from mediapipe.tasks.metadata import schema_py_generated as tfl
    except ImportError as exc:  # pragma: no cover - mediapipe is a dependency of the export extra
        raise ModelFileError("Writing TFLite metadata needs mediapipe: pip install 'ferminet-toolkit[export]'") from exc
    return meta, tfl


def build_metadata(m: ImageClassifierMetadata) -> bytes:
    import flatbuffers

    meta, _ = _schemas()
    norm = meta.NormalizationOptionsT()
    norm.mean, norm.std = [m.norm_mean], [m.norm_std]
    unit = meta.ProcessUnitT()
    unit.optionsType = meta.ProcessUnitOptions.NormalizationOptions
    unit.options = norm
    image = meta.ImagePropertiesT()
    image.colorSpace = meta.ColorSpaceType.GRAYSCALE if m.channels == 1 else meta.ColorSpaceType.RGB
    content = meta.ContentT()
    content.contentPropertiesType = meta.ContentProperties.ImageProperties
    content.contentProperties = image
    stats = meta.StatsT()
    stats.max, stats.min = [255.0], [0.0]
    inp = meta.TensorMetadataT()
    inp.name, inp.description = "image", f"Input image, {m.channels} channel(s), pixel values 0..255"
    inp.content, inp.processUnits, inp.stats = content, [unit], stats
    labels = meta.AssociatedFileT()
    labels.name, labels.description = m.labels_file, "Class names, one per line, in output order"
    labels.type = meta.AssociatedFileType.TENSOR_AXIS_LABELS
    out_content = meta.ContentT()
    out_content.contentPropertiesType = meta.ContentProperties.FeatureProperties
    out_content.contentProperties = meta.FeaturePropertiesT()
    out = meta.TensorMetadataT()
    out.name = "score"
    out.description = ("Probability of each class (softmax, sums to 1)" if m.probabilities
                       else "Score of each class (logits, not probabilities)")
    out.content, out.associatedFiles = out_content, [labels]
    subgraph = meta.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [inp], [out]
    model = meta.ModelMetadataT()
    model.name, model.description, model.version = m.name, m.description, m.version
    model.author, model.license = m.author, m.license
    model.subgraphMetadata, model.minParserVersion = [subgraph], MIN_PARSER_VERSION
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"M001")
    return bytes(builder.Output())


def attach(model_bytes: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """A copy of ``model_bytes`` carrying ``metadata`` and the associated ``files``."""
    import flatbuffers

    _, tfl = _schemas()
    model = tfl.ModelT.InitFromObj(tfl.Model.GetRootAsModel(model_bytes, 0))
    buffer = tfl.BufferT()
    buffer.data = list(metadata)
    model.buffers = list(model.buffers or []) + [buffer]
    entries = [e for e in (model.metadata or []) if e.name != (METADATA_NAME.encode())
               and e.name != METADATA_NAME]
    entry = tfl.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = entries + [entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = io.BytesIO(bytes(builder.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def read_metadata(model_bytes: bytes):
    """(ModelMetadataT, {associated file name: bytes}) of a model, for checks and ``ferminet info``."""
    meta, tfl = _schemas()
    model = tfl.Model.GetRootAsModel(model_bytes, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() == METADATA_NAME.encode():
            data = bytes(model.Buffers(entry.Buffer()).DataAsNumpy())
            parsed = meta.ModelMetadataT.InitFromObj(meta.ModelMetadata.GetRootAsModelMetadata(data, 0))
            with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
                files = {n: archive.read(n) for n in archive.namelist()}
            return parsed, files
    return None, {}
