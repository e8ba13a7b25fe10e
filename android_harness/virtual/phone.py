"""VirtualPhone: a device-side ADB endpoint on loopback, backed by a device profile.

    with VirtualPhone(profile="pixel_6") as phone:
        print(phone.serial)        # "127.0.0.1:<port>": connect to it like to any phone over TCP

Like a phone with ``ro.adb.secure=1`` it lets in only hosts that sign its AUTH token with a key listed in its
``adb_keys`` (default: the starting user's ``~/.android/adbkey.pub``, created as adb creates it when missing,
so that user's ``adb`` and the harness connect without a prompt). ``insecure=True`` lets anyone in.

Its numbers are labelled ``virtual:<profile>`` by the host side (the CNXN banner and ``getprop
ro.product.name`` say ``<profile>_virtual``).
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from android_harness.adbkey import AdbPublicKey, ensure_key_pair, read_adb_keys
from android_harness.errors import HarnessError
from android_harness.virtual.power import PowerModel
from android_harness.virtual.server import Connection
from android_harness.virtual.userspace import Userspace

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SANDBOX_PREFIX = "ferminet-vphone-"
_LOCK_NAME = ".vphone.lock"
STALE_AFTER_S = 60.0  # younger unlocked sandboxes may be a phone still starting


class VirtualPhone:
    def __init__(self, profile: str = "pixel_6", port: int = 0, host: str = "127.0.0.1", sandbox: str | None = None,
                 charging: bool = False, storage_free_mb: float | None = None, adb_keys: str | Path | None = None,
                 insecure: bool = False):
        from device_profiles import DeviceProfileError, load_profile

        if host not in LOOPBACK:
            raise HarnessError(f"The virtual phone listens on loopback only (127.0.0.1, localhost or ::1); it is "
                               f"a test device with a shell, not a network service. Received: host={host!r}")
        if not 0 <= int(port) <= 65535:
            raise HarnessError(f"port must be between 0 and 65535 (0 picks a free one). Received: port={port}")
        try:
            self.profile = load_profile(profile)
        except DeviceProfileError as exc:
            raise HarnessError(str(exc)) from exc
        if self.profile.kind != "phone":
            raise HarnessError(f"Profile {profile!r} is not a phone; pick a phone profile. "
                               f"Received: kind={self.profile.kind!r}")
        if adb_keys is not None and not insecure and not Path(adb_keys).is_file():
            raise HarnessError(f"No adb_keys file at {str(adb_keys)!r}: give a file with one public key per line "
                               f"(like ~/.android/adbkey.pub), or --insecure to accept any key")
        self.host = host
        self.requested_port = int(port)
        self.insecure = insecure
        self._adb_keys_arg = Path(adb_keys) if adb_keys is not None else None
        self.adb_keys: Path | None = None
        self._sandbox_arg = Path(sandbox) if sandbox else None
        self.sandbox: Path | None = None
        self._own_sandbox = False
        self._lock_fd: int | None = None
        self._charging = charging
        self.storage_free_mb = storage_free_mb
        self._server: socket.socket | None = None
        self._connections: list[Connection] = []
        self.userspace: Userspace | None = None
        self.power: PowerModel | None = None
        self.port = 0

    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"

    def trusted_keys(self) -> list[AdbPublicKey]:
        """The keys in ``adb_keys``, read on every AUTH as adbd does (keys added later are honoured)."""
        return read_adb_keys(self.adb_keys) if self.adb_keys else []

    def start(self) -> "VirtualPhone":
        """Listen, build the sandbox, start it. On any failure nothing is left behind (socket, folder, processes)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if not self.insecure:
            if self._adb_keys_arg is not None:
                self.adb_keys = self._adb_keys_arg
            else:
                key = ensure_key_pair()
                self.adb_keys = key.with_name(key.name + ".pub")
            if not self.trusted_keys():
                raise HarnessError(f"{self.adb_keys} holds no valid ADB public key; nobody could connect. Give a "
                                   f"file with one key per line (like ~/.android/adbkey.pub) or --insecure")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind((self.host, self.requested_port))
            server.listen(8)
        except OSError as exc:
            server.close()
            if exc.errno == errno.EADDRINUSE:
                raise HarnessError(f"Port {self.requested_port} on {self.host} is already in use (another virtual "
                                   f"phone, an emulator or adb?). Pick another with --port, or --port 0 for a "
                                   f"free one") from exc
            raise HarnessError(f"Cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}") from exc
        self._server = server
        self.port = server.getsockname()[1]
        self._make_sandbox()
        self.userspace = Userspace(self.profile, self.sandbox, self.serial, self.storage_free_mb,
                                   secure=not self.insecure)
        if self._charging:
            self.set_charging("ac")
        self.userspace.start()
        self.power = PowerModel(self.userspace, self.profile)
        self.power.start()
        threading.Thread(target=self._accept, name="vphone-accept", daemon=True).start()
        if self.insecure:
            log.warning("virtual %s on %s accepts ANY ADB key (--insecure): every local user gets a shell on it",
                        self.profile.name, self.serial)
        log.info("virtual %s listening on %s", self.profile.name, self.serial)

    def _make_sandbox(self) -> None:
        if self._sandbox_arg is None:
            _remove_stale_sandboxes()
            self.sandbox = Path(tempfile.mkdtemp(prefix=f"{SANDBOX_PREFIX}{self.profile.name}-"))
            self._own_sandbox = True
        else:
            self.sandbox = self._sandbox_arg
            self._own_sandbox = not self.sandbox.exists()  # a folder we create is ours to remove
            self.sandbox.mkdir(parents=True, exist_ok=True)
        # Held while the phone runs: a sandbox whose lock is free belongs to a phone that was killed.
        self._lock_fd = os.open(self.sandbox / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            self._lock_fd = None
            self._own_sandbox = False
            raise HarnessError(f"Another virtual phone is using the sandbox {self.sandbox}; give another --sandbox") \
                from exc

    def _accept(self) -> None:
        while self._server is not None:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, self)
            self._connections = [c for c in self._connections if c.is_alive()] + [conn]
            conn.start()

    def set_charging(self, source: str | None = "ac") -> None:
        """Connect (``ac``/``usb``/``wireless``) or disconnect (None) a charger."""
        state = self.userspace.state("battery")
        state["plugged"] = source or "none"
        self.userspace.set_state("battery", state)

    def set_thermal_status(self, status: int) -> None:
        self.userspace.set_state("thermal", {"status": int(status)})

    def sandbox_path(self, device_path: str) -> Path:
        return self.userspace.path(device_path)

    def stop(self) -> None:
        """Close every connection, end every process the phone started, remove its sandbox. Never raises;
        safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            try:
                server.close()
            except OSError:
                pass
        for conn in self._connections:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
                conn.sock.close()
            except OSError:
                pass
        if self.power is not None:
            self.power.stop()
            self.power = None
        if self.userspace is not None:
            self.userspace.kill_all()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if self._own_sandbox and self.sandbox is not None:
            shutil.rmtree(self.sandbox, ignore_errors=True)
            self._own_sandbox = False

    def __enter__(self) -> "VirtualPhone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _remove_stale_sandboxes() -> None:
    """Remove temporary sandboxes of virtual phones that were killed (SIGKILL leaves them): ours, unlocked."""
    base = Path(tempfile.gettempdir())
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(SANDBOX_PREFIX)]
    except OSError:
        return
    for folder in candidates:
        try:
            st = folder.lstat()
            if not folder.is_dir() or folder.is_symlink() or st.st_uid != os.getuid() or \
                    time.time() - st.st_mtime < STALE_AFTER_S:
                continue
            fd = os.open(folder / _LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # a running phone holds it
        try:
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the sandbox of a virtual phone that was killed: %s", folder)
        finally:
            os.close(fd)
