"""Talking to a phone: one interface, two backends.

- :class:`AdbShellConnection` speaks ADB directly to the phone's adbd with adb-shell: TCP ``host:port``, or
  USB when no adb server holds the device.
- :class:`AdbServerConnection` goes through a running adb server (the ``adb`` tool's daemon) with adbutils,
  for phones that server already holds.

Every call has a timeout, every shell command's exit status is captured, and every argument that reaches
the device shell goes through :func:`quote`.
"""
from __future__ import annotations

import abc
import logging
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from android_harness.adbkey import default_key_path, ensure_key_pair
from android_harness.errors import (
    CommandTimeoutError,
    ConnectionLostError,
    DeviceCommandError,
    DeviceNotFoundError,
    DeviceUnauthorizedError,
    HarnessError,
    StorageFullError,
)

log = logging.getLogger(__name__)

_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def quote(arg: str) -> str:
    """Quote one argument for the device's ``sh`` (mksh/toybox): literal, whatever it contains.

    >>> quote("a; rm -rf x.tflite")
    "'a; rm -rf x.tflite'"
    """
    text = str(arg)
    if text and _SAFE.match(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class ShellResult:
    command: str
    stdout: str
    stderr: str
    exit_code: int
    duration_s: float


def _is_tcp(serial: str) -> bool:
    host, sep, port = serial.rpartition(":")
    return bool(sep and host and port.isdigit())


def adb_key_path() -> Path:
    """``$ANDROID_USER_HOME/adbkey`` or ``~/.android/adbkey`` (the adb tool's own key)."""
    return default_key_path()


class _Signer:
    """adb-shell's signer for one key, remembering whether the device asked for a signature at all."""

    def __init__(self, key: Path):
        from adb_shell.auth.sign_pythonrsa import PythonRSASigner

        self.path = key
        self._signer = PythonRSASigner.FromRSAKeyPath(str(key))
        self.asked = False

    def Sign(self, data):  # noqa: N802 - adb-shell's signer interface
        self.asked = True
        return self._signer.Sign(data)

    def GetPublicKey(self):  # noqa: N802
        return self._signer.GetPublicKey()


def load_signer(key_path: str | Path | None = None) -> _Signer:
    """The adb key at ``key_path`` (default ``~/.android/adbkey``, created as adb creates it when missing) as
    an adb-shell signer. Key material is never logged."""
    key = ensure_key_pair(key_path)
    try:
        return _Signer(key)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"Cannot use the adb key {key}: {exc}. Pass another key or move it away so a new one "
                           f"is created") from exc


class Connection(abc.ABC):
    serial: str

    @abc.abstractmethod
    def shell(self, command: str, timeout_s: float = 30.0) -> ShellResult: ...

    @abc.abstractmethod
    def push(self, local: str | Path, remote: str, timeout_s: float = 300.0) -> int: ...

    @abc.abstractmethod
    def pull(self, remote: str, local: str | Path, timeout_s: float = 300.0) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def check(self, command: str, timeout_s: float = 30.0) -> ShellResult:
        """Run ``command``; raise DeviceCommandError (with device, command, output, exit code) on failure."""
        result = self.shell(command, timeout_s)
        if result.exit_code != 0:
            raise DeviceCommandError(f"Command failed on {self.serial}: {command[:120]}", serial=self.serial,
                                     command=command, stdout=result.stdout, stderr=result.stderr,
                                     returncode=result.exit_code)
        return result


def _tcp_transport(host: str, port: int):
    """adb-shell's TCP transport, except that a closed socket is an error, not an endless "no data yet"
    (adb-shell reads until its timeout when ``recv`` returns b"", so a vanished phone would hang a run), and
    that small messages leave at once (TCP_NODELAY).

    Why TCP_NODELAY: adb-shell writes each ADB message as two sends, the 24-byte header and then its payload.
    With Nagle's algorithm on, the payload waits until the phone acknowledges the header, and the phone's
    kernel delays that acknowledgement (40 ms on Linux) because no reply is ready without the payload: every
    OPEN (each shell command) then cost 40 ms more than the command itself (measured: ``true`` 45 ms -> 3 ms
    on the virtual phone over loopback).
    """
    from adb_shell.transport.tcp_transport import TcpTransport

    class EofAwareTcpTransport(TcpTransport):
        def connect(self, transport_timeout_s):
            super().connect(transport_timeout_s)
            self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def bulk_read(self, numbytes, transport_timeout_s):
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data and numbytes:
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            return data

    return EofAwareTcpTransport(host, port)


class AdbShellConnection(Connection):
    """adb-shell straight to adbd. Shell v1 carries no exit status, so each command is wrapped as
    ``sh -c '<command>'; echo <marker>$?`` and the marker line is parsed off."""

    def __init__(self, serial: str, timeout_s: float = 10.0, adb_key: str | Path | None = None):
        from adb_shell.adb_device import AdbDevice, AdbDeviceUsb

        self.serial = serial
        self.timeout_s = timeout_s
        if _is_tcp(serial):
            host, _, port = serial.rpartition(":")
            self._device = AdbDevice(_tcp_transport(host, int(port)), default_transport_timeout_s=timeout_s)
        else:
            try:
                self._device = AdbDeviceUsb(serial=serial, default_transport_timeout_s=timeout_s)
            except Exception as exc:  # noqa: BLE001 - libusb missing or device absent: both mean "not found"
                raise DeviceNotFoundError(f"No USB device with serial {serial!r} ({exc}). Plug it in, enable USB "
                                          f"debugging, or connect over TCP with host:port") from exc
        signer = load_signer(adb_key)
        try:
            self._device.connect(rsa_keys=[signer], auth_timeout_s=timeout_s, read_timeout_s=timeout_s)
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise DeviceNotFoundError(f"No device answers at {serial} ({exc.strerror or exc}). Check the address, "
                                      f"that the phone is on (adb tcpip 5555) or start `ferminet virtual-phone`") from exc
        except Exception as exc:  # noqa: BLE001 - adb-shell raises many types for one meaning
            if signer.asked:  # the phone wanted a signature and did not accept ours
                raise DeviceUnauthorizedError(
                    f"{serial} did not accept the adb key {signer.path}. On a phone: accept the \"Allow USB "
                    f"debugging?\" prompt and retry; on a virtual phone: start it by the same user (it trusts "
                    f"~/.android/adbkey.pub), list {signer.path}.pub in its --adb-keys file, or use --insecure"
                ) from exc
            raise ConnectionLostError(f"Could not connect to {serial}: {type(exc).__name__}: {exc}") from exc

    def _map(self, exc: Exception, what: str, timeout_s: float) -> HarnessError:
        from adb_shell.exceptions import AdbCommandFailureException, PushFailedError, TcpTimeoutException

        if isinstance(exc, (TcpTimeoutException, socket.timeout, TimeoutError)):
            return CommandTimeoutError(f"{what} on {self.serial} did not finish within {timeout_s:g} s")
        if isinstance(exc, (PushFailedError, AdbCommandFailureException)):
            # The device answered FAIL (sync protocol): its reason, e.g. "open failed: No such file or directory".
            reason = exc.args[0] if exc.args else exc
            reason = bytes(reason).decode(errors="replace") if isinstance(reason, (bytes, bytearray)) else str(reason)
            reason = reason.removeprefix("Command failed: ")
            if "space" in reason.lower():
                return StorageFullError(f"The device {self.serial} is full: {reason}. Free space with "
                                        f"`ferminet clean --device {self.serial}` or delete files on the phone")
            return DeviceCommandError(f"{what} failed on {self.serial}: {reason}", command=what)
        return ConnectionLostError(f"Lost the connection to {self.serial} during {what}: {type(exc).__name__}: {exc}")

    def shell(self, command: str, timeout_s: float = 30.0) -> ShellResult:
        marker = f"__FERMINET_RC_{uuid.uuid4().hex[:8]}__"
        wrapped = f"sh -c {quote(command)}; echo {marker}$?"
        started = time.perf_counter()
        try:
            out = self._device.shell(wrapped, read_timeout_s=timeout_s, timeout_s=timeout_s,
                                     transport_timeout_s=timeout_s)
        except Exception as exc:  # noqa: BLE001 - mapped to the harness's errors
            raise self._map(exc, f"`{command[:80]}`", timeout_s) from exc
        text, found, tail = out.rpartition(marker)
        if not found:
            raise ConnectionLostError(f"{self.serial} ended the command before it finished: {command[:80]}")
        code, _, rest = tail.partition("\n")  # anything after the status line came late from a background job
        code = code.strip()
        return ShellResult(command, text + rest, "", int(code) if code.isdigit() else 255,
                           time.perf_counter() - started)

    def push(self, local: str | Path, remote: str, timeout_s: float = 300.0) -> int:
        size = Path(local).stat().st_size
        try:
            self._device.push(str(local), remote, read_timeout_s=timeout_s, transport_timeout_s=timeout_s)
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, f"push of {local} to {remote}", timeout_s) from exc
        return size

    def pull(self, remote: str, local: str | Path, timeout_s: float = 300.0) -> int:
        try:
            self._device.pull(remote, str(local), read_timeout_s=timeout_s, transport_timeout_s=timeout_s)
        except Exception as exc:  # noqa: BLE001
            raise self._map(exc, f"pull of {remote}", timeout_s) from exc
        return Path(local).stat().st_size

    def close(self) -> None:
        try:
            self._device.close()
        except Exception:  # noqa: BLE001 - closing never raises
            pass


class AdbServerConnection(Connection):
    """Through a running adb server (``adb start-server``), with adbutils; exit codes via shell v2."""

    def __init__(self, serial: str, server: str = "127.0.0.1:5037", timeout_s: float = 10.0):
        import adbutils

        host, _, port = server.rpartition(":")
        self.serial = serial
        self.timeout_s = timeout_s
        self._client = adbutils.AdbClient(host=host or "127.0.0.1", port=int(port or 5037), socket_timeout=timeout_s)
        try:
            serials = [d.serial for d in self._client.device_list()]
        except Exception as exc:  # noqa: BLE001
            raise DeviceNotFoundError(f"No adb server at {server} ({exc}). Start one with `adb start-server`") from exc
        if serial not in serials and _is_tcp(serial):
            self._client.connect(serial, timeout=timeout_s)
            serials = [d.serial for d in self._client.device_list()]
        if serial not in serials:
            raise DeviceNotFoundError(f"The adb server at {server} holds no device {serial!r}; it holds "
                                      f"{serials or 'none'}. Connect it with `adb connect HOST:PORT`")
        self._device = self._client.device(serial)

    def shell(self, command: str, timeout_s: float = 30.0) -> ShellResult:
        import adbutils

        started = time.perf_counter()
        try:
            result = self._device.shell2(command, timeout=timeout_s, v2=True)
        except adbutils.AdbTimeout as exc:
            raise CommandTimeoutError(f"`{command[:80]}` on {self.serial} did not finish within {timeout_s:g} s") from exc
        except (adbutils.AdbError, OSError) as exc:
            raise ConnectionLostError(f"Lost {self.serial} via the adb server: {exc}") from exc
        stderr = getattr(result, "stderr", "") or ""
        stdout = getattr(result, "stdout", None)
        return ShellResult(command, stdout if stdout is not None else result.output, stderr, int(result.returncode),
                           time.perf_counter() - started)

    def push(self, local: str | Path, remote: str, timeout_s: float = 300.0) -> int:
        import adbutils

        try:
            return int(self._device.sync.push(str(local), remote, mode=0o644))
        except (adbutils.AdbError, OSError) as exc:
            if "space" in str(exc).lower():
                raise StorageFullError(f"The device {self.serial} is full: {exc}") from exc
            raise ConnectionLostError(f"Push to {self.serial} failed: {exc}") from exc

    def pull(self, remote: str, local: str | Path, timeout_s: float = 300.0) -> int:
        import adbutils

        try:
            return int(self._device.sync.pull(remote, str(local)))
        except (adbutils.AdbError, OSError) as exc:
            raise ConnectionLostError(f"Pull from {self.serial} failed: {exc}") from exc

    def close(self) -> None:
        pass


def connect(serial: str, *, backend: str = "auto", adb_server: str = "127.0.0.1:5037",
            timeout_s: float = 10.0, adb_key: str | Path | None = None) -> Connection:
    """A connection to ``serial`` (``host:port`` or a USB serial).

    ``auto``: a device the adb server already lists goes through the server (it holds the USB interface);
    anything else is reached directly with adb-shell, signing the phone's AUTH token with ``adb_key``
    (default ``~/.android/adbkey``, the key the adb tool uses, created like adb does when missing).
    """
    if backend not in ("auto", "direct", "server"):
        raise HarnessError(f"backend must be auto, direct or server. Received: backend={backend!r}")
    if not serial:
        raise DeviceNotFoundError("No device given. Pass --device SERIAL or HOST:PORT (see `ferminet devices`)")
    if backend == "server":
        return AdbServerConnection(serial, adb_server, timeout_s)
    if backend == "auto" and serial in server_serials(adb_server):
        return AdbServerConnection(serial, adb_server, timeout_s)
    return AdbShellConnection(serial, timeout_s, adb_key)


def server_serials(adb_server: str = "127.0.0.1:5037") -> list[str]:
    """Serials the adb server at ``adb_server`` holds; [] when no server runs (one is never started)."""
    host, _, port = adb_server.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=0.3):
            pass
    except (OSError, ValueError):
        return []
    try:
        import adbutils

        client = adbutils.AdbClient(host=host or "127.0.0.1", port=int(port), socket_timeout=2)
        return [d.serial for d in client.device_list()]
    except Exception:  # noqa: BLE001 - a server that does not answer lists nothing
        return []
