"""Writing user-visible files without ever destroying what the user owns.

Every file a command writes goes first to a temporary name beside its destination, recognisable as ours
(``.NAME.ferminet-tmp-<pid>``), gets the permissions a normal file would get (``0o666 & ~umask``; mkstemp's
0600 would hide an exported model from the app build or a web server), and is then renamed over the
destination in one step. A command killed half-way leaves such a temporary behind; the next command writing
into the same folder removes the ones whose process is gone (:func:`remove_stale_temps`).

    >>> tmp = temp_path(Path("m.tflite"))                     # doctest: +SKIP
    >>> tmp.write_bytes(data); publish(tmp, Path("m.tflite"))  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

TMP_TAG = ".ferminet-tmp-"
_TMP_RE = re.compile(r"^\..+" + re.escape(TMP_TAG) + r"(\d+)$")


def temp_path(final: str | Path) -> Path:
    """The temporary name (in ``final``'s folder, same file system) that :func:`publish` renames to ``final``."""
    final = Path(final)
    return final.parent / f".{final.name}{TMP_TAG}{os.getpid()}"


def _umask() -> int:
    try:  # Linux >= 4.7 shows it without changing it (os.umask would race with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_mode(directory: bool = False) -> int:
    """The mode a newly created file (or folder) gets under the current umask."""
    return (0o777 if directory else 0o666) & ~_umask()


def publish(tmp: str | Path, final: str | Path) -> Path:
    """Give ``tmp`` normal permissions and rename it over ``final`` (atomic on one file system)."""
    tmp, final = Path(tmp), Path(final)
    os.chmod(tmp, normal_mode(tmp.is_dir()))
    os.replace(tmp, final)
    return final


def write_bytes(final: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` through a temporary name: readers never see half a file."""
    tmp = temp_path(final)
    try:
        tmp.write_bytes(data)
        return publish(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove our temporaries in ``folder`` left by processes that no longer run; returns what was removed.

    Only names of the form ``.NAME.ferminet-tmp-<pid>`` with a dead ``pid`` are touched.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _TMP_RE.match(entry.name)
        if not m or _alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
            log.info("removed %s, left by an interrupted ferminet command", entry)
        except OSError as exc:
            log.warning("could not remove the stale temporary %s: %s", entry, exc)
    return removed


def check_output_file(out: str | Path, *, force: bool = False, inputs: tuple[str | Path, ...] = (),
                      flag: str = "--out") -> Path:
    """Refuse, before any work, to write the file ``out`` over an input, over a folder, or over an existing file
    (unless ``force``). Returns ``out`` as a Path."""
    from toolkit.errors import InvalidArgumentError

    out = Path(out)
    for src in inputs:
        if src is not None and same_file(src, out):
            raise InvalidArgumentError(f"{flag} is the input file itself. Received: {flag}={str(out)!r}; pass another "
                                       f"file name")
    if out.is_dir():
        raise InvalidArgumentError(f"{flag} is a folder; pass a file path, e.g. {str(out / 'model.tflite')!r}. "
                                   f"Received: {flag}={str(out)!r}")
    if not out.parent.is_dir():
        raise InvalidArgumentError(f"The output folder does not exist. Received: {flag}={str(out)!r}; create "
                                   f"{str(out.parent)!r} first")
    if out.exists() and not force:
        raise InvalidArgumentError(f"{str(out)!r} already exists; pass --force to replace it, or another {flag}")
    return out


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when ``a`` and ``b`` name the same file (after symlinks; also for hard links)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()
