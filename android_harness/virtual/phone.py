"""VirtualPhone: a device-side ADB endpoint on loopback, backed by a device profile.

    with VirtualPhone(profile="pixel_6") as phone:
        print(phone.serial)        # "127.0.0.1:<port>": connect to it like to any phone over TCP

Its numbers are labelled ``virtual:<profile>`` by the host side (the CNXN banner and ``getprop
ro.product.name`` say ``<profile>_virtual``).
"""
from __future__ import annotations

import logging
import shutil
import socket
import tempfile
import threading
from pathlib import Path

from android_harness.virtual.power import PowerModel
from android_harness.virtual.server import Connection
from android_harness.virtual.userspace import Userspace

log = logging.getLogger(__name__)


class VirtualPhone:
    def __init__(self, profile: str = "pixel_6", port: int = 0, host: str = "127.0.0.1", sandbox: str | None = None,
                 charging: bool = False, storage_free_mb: float | None = None, require_auth: bool = False):
        from device_profiles import load_profile

        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"The virtual phone listens on loopback only. Received: host={host!r}")
        self.profile = load_profile(profile)
        if self.profile.kind != "phone":
            raise ValueError(f"Profile {profile!r} is not a phone. Received: kind={self.profile.kind!r}")
        self.host = host
        self.requested_port = port
        self.require_auth = require_auth
        self._own_sandbox = sandbox is None
        self.sandbox = Path(sandbox or tempfile.mkdtemp(prefix=f"ferminet-vphone-{self.profile.name}-"))
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

    def start(self) -> "VirtualPhone":
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind((self.host, self.requested_port))
        self._server.listen(8)
        self.port = self._server.getsockname()[1]
        self.userspace = Userspace(self.profile, self.sandbox, self.serial, self.storage_free_mb)
        if self._charging:
            self.set_charging("ac")
        self.power = PowerModel(self.userspace, self.profile)
        self.power.start()
        threading.Thread(target=self._accept, name="vphone-accept", daemon=True).start()
        log.info("virtual %s listening on %s", self.profile.name, self.serial)
        return self

    def _accept(self) -> None:
        while self._server is not None:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, self)
            self._connections.append(conn)
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
        """Close every connection, kill every process the phone started, remove its sandbox. Never raises."""
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
        if self.userspace is not None:
            self.userspace.kill_all()
        if self._own_sandbox:
            shutil.rmtree(self.sandbox, ignore_errors=True)

    def __enter__(self) -> "VirtualPhone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
