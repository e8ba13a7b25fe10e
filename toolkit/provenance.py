"""Where a number came from: source labels and the versions of the tools that made it."""
from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path

_TOOLS = ("ferminet-toolkit", "tensorflow", "ai-edge-litert", "numpy", "adb-shell", "adbutils")


def measured(serial: str) -> str:
    """Label for a number measured on a physical device."""
    return f"measured:{serial}"


def virtual(profile: str) -> str:
    """Label for a number produced by the virtual phone emulating ``profile``."""
    return f"virtual:{profile}"


def estimated(profile: str) -> str:
    """Label for a number computed from a device profile's power model, not measured."""
    return f"estimated:{profile}"


def predicted(device: str) -> str:
    """Label for a number a fitted predictor (toolkit.predict) computed for ``device``; never measured."""
    return f"predicted:{device}"


def source_kind(source: str) -> str:
    """``'measured' | 'virtual' | 'estimated' | 'predicted'`` from a source label."""
    kind = source.split(":", 1)[0]
    if kind not in ("measured", "virtual", "estimated", "predicted"):
        raise ValueError(f"Unknown source label {source!r}; expected measured:/virtual:/estimated:/predicted:")
    return kind


def tool_versions() -> dict[str, str]:
    """Installed versions of the tools that shape a result (absent ones omitted)."""
    versions = {"python": platform.python_version()}
    for name in _TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (the identity of a model in the store)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
