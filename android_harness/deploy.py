"""Putting files on the phone, once: a content-hash cache in a private folder.

Models go to ``/data/local/tmp/ferminet/models/<sha256>.tflite`` and binaries to ``…/bin/``; a push first
asks the device whether that file is already there with the same size and SHA-256 (``sha256sum``), so a
second push of the same model moves 0 bytes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from android_harness.connection import quote
from android_harness.errors import StorageFullError

REMOTE_ROOT = "/data/local/tmp/ferminet"


@dataclass(frozen=True)
class PushResult:
    remote_path: str
    bytes_transferred: int
    cached: bool
    sha256: str


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def push_cached(device, local: str | Path, kind: str = "models", suffix: str = ".tflite",
                mode_exec: bool = False) -> PushResult:
    """Push ``local`` into our private folder unless the same content is already there."""
    local = Path(local)
    digest = sha256_file(local)
    remote = f"{REMOTE_ROOT}/{kind}/{digest}{suffix}"
    size = local.stat().st_size
    probe = device.shell(f"stat -c %s {quote(remote)} 2>/dev/null && sha256sum {quote(remote)} 2>/dev/null").stdout
    lines = probe.split()
    if len(lines) >= 2 and lines[0] == str(size) and lines[1] == digest:
        return PushResult(remote, 0, True, digest)
    free = device.free_storage_bytes(REMOTE_ROOT.rsplit("/", 1)[0])
    if free is not None and free < size:
        raise StorageFullError(f"{device.serial} has {free // 1024} KB free under /data/local/tmp but "
                               f"{local.name} needs {size // 1024} KB. Run `ferminet clean --device {device.serial}` "
                               f"or free space on the phone")
    device.check(f"mkdir -p {quote(REMOTE_ROOT + '/' + kind)}")
    device.conn.push(local, remote)
    if mode_exec:
        device.check(f"chmod 755 {quote(remote)}")
    return PushResult(remote, size, False, digest)


def clean(device) -> tuple[str, ...]:
    """Remove everything we put on the device; returns the paths removed. Stop what we left running first
    (:func:`android_harness.services.clean_device` does both)."""
    listing = device.shell(f"find {quote(REMOTE_ROOT)} -type f 2>/dev/null").stdout.split()
    device.check(f"rm -rf {quote(REMOTE_ROOT)}")
    return tuple(listing)
