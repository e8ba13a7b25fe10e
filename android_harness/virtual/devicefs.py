"""The device's file tree as the host-side phone process sees it, confined to the sandbox.

Everything the device shell can write (``/data``, ``/sdcard``) may hold symlinks and ``..`` tricks made by
whoever has a shell on the phone. The phone process itself runs on the host, so it must never follow them out:
a device path is resolved *with the device's root as* ``/`` (``..`` stops at the device root, a symlink's
target is read and resolved as a device path, at most 40 links, ELOOP beyond), and the result is opened one
component at a time relative to an already-open directory with ``O_NOFOLLOW``, so a directory swapped for a
symlink between resolution and use fails instead of escaping. Errors are ``OSError`` with the errno a phone
would give (ENOENT outside the device folders, EROFS for writes outside /data and /sdcard).
"""
from __future__ import annotations

import errno
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

MAX_SYMLINKS = 40  # Linux's limit
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _error(code: int, path: str) -> OSError:
    return OSError(code, os.strerror(code), path)


@dataclass(frozen=True)
class Mount:
    host: Path
    writable: bool


class DeviceFS:
    def __init__(self, root: Path):
        root = Path(root)
        self.mounts = {"data": Mount(root / "data", True), "sdcard": Mount(root / "sdcard", True),
                       "system": Mount(root / "system", False), "sys": Mount(root / "sys", False)}

    # -- resolution ------------------------------------------------------------------------------
    def resolve(self, path: str, follow_last: bool = True) -> list[str]:
        """The device path's components after ``..`` and symlinks, with the device root as ``/``."""
        pending = [c for c in path.split("/") if c not in ("", ".")]
        done: list[str] = []
        links = 0
        while pending:
            comp = pending.pop(0)
            if comp == "..":
                if done:
                    done.pop()
                continue
            if not done or (not pending and not follow_last):
                done.append(comp)
                continue
            target = self._readlink(done, comp)
            if target is None:
                done.append(comp)
                continue
            links += 1
            if links > MAX_SYMLINKS:
                raise _error(errno.ELOOP, path)
            if target.startswith("/"):
                done = []
            pending = [c for c in target.split("/") if c not in ("", ".")] + pending
        return done

    def _readlink(self, parents: list[str], name: str) -> str | None:
        try:
            fd = self.open_dir(parents)
        except OSError:
            return None
        try:
            return os.readlink(name, dir_fd=fd)
        except OSError:
            return None  # not a symlink, or missing: resolution carries on lexically and the final open decides
        finally:
            os.close(fd)

    def mount(self, parts: list[str], path: str) -> Mount:
        if not parts or parts[0] not in self.mounts:
            raise _error(errno.ENOENT, path)
        return self.mounts[parts[0]]

    def open_dir(self, parts: list[str], path: str = "") -> int:
        """An O_PATH-free directory fd for resolved ``parts``; every component opened with O_NOFOLLOW."""
        fd = os.open(self.mount(parts, path or "/" + "/".join(parts)).host, _DIR_FLAGS)
        try:
            for comp in parts[1:]:
                nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def parent(self, path: str, follow_last: bool) -> tuple[Mount, int, str]:
        """(mount, open fd of the parent directory, final name) of a path naming something inside a mount."""
        parts = self.resolve(path, follow_last)
        mount = self.mount(parts, path)
        if len(parts) < 2:
            raise _error(errno.EISDIR, path)
        return mount, self.open_dir(parts[:-1], path), parts[-1]

    # -- operations (the sync service's and the phone's own) ---------------------------------------
    def lstat(self, path: str) -> os.stat_result:
        parts = self.resolve(path, follow_last=False)
        if not parts:
            return os.stat(self.mounts["system"].host)  # "/": some directory
        if len(parts) == 1:
            return os.stat(self.mount(parts, path).host)
        _mount, fd, name = self.parent(path, follow_last=False)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        finally:
            os.close(fd)

    def listdir(self, path: str) -> list[tuple[str, os.stat_result]]:
        parts = self.resolve(path)
        if not parts:
            return [(name, os.stat(m.host)) for name, m in sorted(self.mounts.items())]
        fd = self.open_dir(parts, path)
        try:
            out = []
            for name in sorted(os.listdir(fd)):
                try:
                    out.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
                except OSError:
                    continue
            return out
        finally:
            os.close(fd)

    def open_read(self, path: str) -> int:
        """A read fd of a regular file (never a FIFO or device: those would block or leak)."""
        _mount, dir_fd, name = self.parent(path, follow_last=True)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise _error(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EACCES, path)
        os.set_blocking(fd, True)
        return fd

    def read_bytes(self, path: str) -> bytes:
        fd = self.open_read(path)
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def make_parents(self, path: str) -> None:
        """Create the missing directories above ``path`` (adbd's secure_mkdirs), without following links."""
        parts = self.resolve(path, follow_last=False)
        mount = self.mount(parts, path)
        if not mount.writable:
            raise _error(errno.EROFS, path)
        fd = os.open(mount.host, _DIR_FLAGS)
        try:
            for comp in parts[1:-1]:
                try:
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(comp, 0o775, dir_fd=fd)
                    nxt = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
        finally:
            os.close(fd)

    def create_temp(self, path: str) -> tuple[int, int, str, str]:
        """(write fd, parent dir fd, temp name, final name) for writing ``path`` atomically."""
        parts = self.resolve(path, follow_last=False)
        if not parts or parts[0] not in self.mounts:
            raise _error(errno.EROFS, path)  # the device's root file system is read-only
        mount, dir_fd, name = self.parent(path, follow_last=False)
        if not mount.writable:
            os.close(dir_fd)
            raise _error(errno.EROFS, path)
        try:
            if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                raise _error(errno.EISDIR, path)
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(dir_fd)
            raise
        tmp = f".{name[:200]}.{uuid.uuid4().hex[:8]}.adb-sync"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        return fd, dir_fd, tmp, name

    def write_bytes(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Atomically replace ``path`` (a symlink there is replaced, never followed)."""
        fd, dir_fd, tmp, name = self.create_temp(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                os.fchmod(fh.fileno(), mode)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
        finally:
            os.close(dir_fd)
