"""Device-side ADB over TCP: the transport handshake, streams with flow control, and the services
``shell:`` (v1), ``shell,v2,…:`` (shell protocol v2 with exit codes), ``exec:`` and ``sync:`` (file sync:
STAT, LIST, SEND, RECV, DATA, DONE, QUIT; FAIL on errors).

One thread per connection reads messages; each opened stream runs its service in its own thread and
sends WRTE messages one at a time, waiting for the host's OKAY before the next (ADB's flow control).
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import struct
import threading
import time
from pathlib import Path

from android_harness.virtual import protocol as P

log = logging.getLogger(__name__)
SYNC_DATA_MAX = 64 * 1024
WRITE_TIMEOUT_S = 30.0


class StreamClosed(Exception):
    pass


class Stream:
    def __init__(self, conn: "Connection", local_id: int, remote_id: int):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.inbox: "queue.Queue[bytes | None]" = queue.Queue()
        self.acked = threading.Event()
        self.closed = threading.Event()
        self.sent_close = False
        self._buffer = b""

    def write(self, data: bytes) -> None:
        step = max(1, self.conn.max_payload)
        for start in range(0, len(data), step):
            if self.closed.is_set():
                raise StreamClosed()
            self.acked.clear()
            self.conn.send(P.Message(P.A_WRTE, self.local_id, self.remote_id, data[start:start + step]))
            deadline = time.monotonic() + WRITE_TIMEOUT_S
            while not self.acked.wait(0.1):
                if self.closed.is_set() or time.monotonic() > deadline:
                    raise StreamClosed()

    def read_exact(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.inbox.get()
            if chunk is None:
                raise StreamClosed()
            self._buffer += chunk
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def read_some(self, timeout: float | None = None) -> bytes | None:
        if self._buffer:
            out, self._buffer = self._buffer, b""
            return out
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return b""

    def close(self) -> None:
        if not self.sent_close:
            self.sent_close = True
            try:
                self.conn.send(P.Message(P.A_CLSE, self.local_id, self.remote_id))
            except OSError:
                pass
        self.closed.set()


class Connection(threading.Thread):
    def __init__(self, sock: socket.socket, phone):
        super().__init__(name="adb-connection", daemon=True)
        self.sock = sock
        self.phone = phone
        self.send_lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.max_payload = P.MAX_PAYLOAD
        self.online = False

    def send(self, message: P.Message) -> None:
        with self.send_lock:
            self.sock.sendall(message.pack())

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("peer closed")
            data += chunk
        return data

    def run(self) -> None:
        try:
            while True:
                self.handle(P.read_message(self._recv_exact))
        except (ConnectionError, OSError, P.ProtocolError) as exc:
            log.debug("connection ended: %s", exc)
        finally:
            for stream in list(self.streams.values()):
                stream.closed.set()
                stream.inbox.put(None)
            try:
                self.sock.close()
            except OSError:
                pass

    def _banner(self) -> bytes:
        p = self.phone.profile
        return (f"device::ro.product.name={p.name}_virtual;ro.product.model={p.model};"
                f"ro.product.device={p.device};features=shell_v2,cmd").encode()

    def handle(self, m: P.Message) -> None:
        if m.command == P.A_CNXN:
            self.max_payload = min(P.MAX_PAYLOAD, m.arg1 or P.MAX_PAYLOAD)
            if self.phone.require_auth:
                self.send(P.Message(P.A_AUTH, P.AUTH_TOKEN, 0, os.urandom(20)))
            else:
                self.online = True
                self.send(P.Message(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, self._banner()))
        elif m.command == P.A_AUTH:
            if m.arg0 == P.AUTH_SIGNATURE:
                # Signatures are only valid for keys the phone already trusts; this phone trusts none until the
                # host offers its public key (the "Allow USB debugging?" prompt), so ask for it.
                self.send(P.Message(P.A_AUTH, P.AUTH_TOKEN, 0, os.urandom(20)))
            elif m.arg0 == P.AUTH_RSAPUBLICKEY:
                self.online = True
                self.send(P.Message(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, self._banner()))
        elif not self.online:
            return
        elif m.command == P.A_OPEN:
            local = self.next_id
            self.next_id += 1
            stream = Stream(self, local, m.arg0)
            self.streams[local] = stream
            service = m.data.rstrip(b"\x00").decode(errors="replace")
            self.send(P.Message(P.A_OKAY, local, m.arg0))
            threading.Thread(target=self._serve, args=(stream, service), daemon=True,
                             name=f"adb-{service[:20]}").start()
        elif m.command == P.A_OKAY:
            stream = self.streams.get(m.arg1)
            if stream:
                stream.acked.set()
        elif m.command == P.A_WRTE:
            stream = self.streams.get(m.arg1)
            if stream is None:
                return
            stream.inbox.put(m.data)
            self.send(P.Message(P.A_OKAY, m.arg1, m.arg0))
        elif m.command == P.A_CLSE:
            stream = self.streams.pop(m.arg1, None)
            if stream:
                stream.close()  # answer the host's CLSE with ours (once), as adbd does
                stream.inbox.put(None)

    def _serve(self, stream: Stream, service: str) -> None:
        try:
            if service.startswith("shell,v2") or (service.startswith("shell,") and ":" in service):
                options, _, command = service.partition(":")
                if "v2" in options.split(","):
                    self._shell_v2(stream, command)
                else:
                    self._shell_v1(stream, command, merge=True)
            elif service.startswith("shell:"):
                self._shell_v1(stream, service[len("shell:"):], merge=True)
            elif service.startswith("exec:"):
                self._shell_v1(stream, service[len("exec:"):], merge=False)
            elif service.startswith("sync:"):
                SyncService(stream, self.phone.userspace).run()
            else:
                log.debug("unsupported service %r", service)
        except StreamClosed:
            pass
        finally:
            stream.close()
            self.streams.pop(stream.local_id, None)

    def _pump_stdin(self, stream: Stream, proc, v2: bool) -> None:
        buffer = b""
        try:
            while True:
                chunk = stream.read_some()
                if chunk is None:
                    break
                if not v2:
                    proc.stdin.write(chunk)
                    proc.stdin.flush()
                    continue
                buffer += chunk
                while len(buffer) >= 5:
                    kind, length = struct.unpack("<BI", buffer[:5])
                    if len(buffer) < 5 + length:
                        break
                    payload, buffer = buffer[5:5 + length], buffer[5 + length:]
                    if kind == P.SHELL_STDIN:
                        proc.stdin.write(payload)
                        proc.stdin.flush()
                    elif kind == P.SHELL_CLOSE_STDIN:
                        proc.stdin.close()
        except (OSError, ValueError):
            pass

    def _run(self, stream: Stream, command: str, emit) -> int:
        proc = self.phone.userspace.spawn(command or "sh")
        threading.Thread(target=self._pump_stdin, args=(stream, proc, emit.v2), daemon=True).start()
        readers = []
        for kind, pipe in ((P.SHELL_STDOUT, proc.stdout), (P.SHELL_STDERR, proc.stderr)):
            def pump(kind=kind, pipe=pipe):
                try:
                    for chunk in iter(lambda: os.read(pipe.fileno(), 65536), b""):
                        emit(kind, chunk)
                except (OSError, StreamClosed):
                    pass
            t = threading.Thread(target=pump, daemon=True)
            t.start()
            readers.append(t)
        while proc.poll() is None:
            if stream.closed.is_set():  # the host hung up: like adbd, hang up the command
                proc.kill()
            time.sleep(0.02)
        for t in readers:
            t.join(timeout=5)
        return proc.returncode

    def _shell_v1(self, stream: Stream, command: str, merge: bool) -> None:
        lock = threading.Lock()

        def emit(kind, data):
            if kind == P.SHELL_STDERR and not merge:
                return
            with lock:
                stream.write(data)
        emit.v2 = False
        self._run(stream, command, emit)

    def _shell_v2(self, stream: Stream, command: str) -> None:
        lock = threading.Lock()

        def emit(kind, data):
            with lock:
                stream.write(P.shell_packet(kind, data))
        emit.v2 = True
        code = self._run(stream, command, emit)
        stream.write(P.shell_packet(P.SHELL_EXIT, bytes([code & 0xFF if code >= 0 else (128 - code) & 0xFF])))


class SyncService:
    """The ``sync:`` service: requests are 4-byte ids + 4-byte little-endian lengths (AOSP SYNC.TXT)."""

    def __init__(self, stream: Stream, userspace):
        self.stream = stream
        self.userspace = userspace

    def _path(self, text: str) -> Path | None:
        try:
            return self.userspace.path(text)
        except Exception:  # noqa: BLE001 - outside the sandbox: behave as a missing/forbidden path
            return None

    def fail(self, message: str) -> None:
        data = message.encode()
        self.stream.write(P.sync_packet(b"FAIL", len(data), data))

    def run(self) -> None:
        while True:
            tag = self.stream.read_exact(4)
            (length,) = struct.unpack("<I", self.stream.read_exact(4))
            if tag == b"QUIT":
                return
            arg = self.stream.read_exact(length).decode(errors="surrogateescape")
            if tag in (b"STAT", b"LST2", b"STA2"):
                self.stat(arg)
            elif tag == b"LIST":
                self.list(arg)
            elif tag == b"RECV":
                self.recv(arg)
            elif tag == b"SEND":
                self.send(arg)
            else:
                self.fail(f"unknown sync request {tag!r}")
                return

    def stat(self, path: str) -> None:
        p = self._path(path)
        if p is None or not (p.exists() or p.is_symlink()):
            self.stream.write(b"STAT" + struct.pack("<III", 0, 0, 0))
            return
        st = p.lstat()
        self.stream.write(b"STAT" + struct.pack("<III", st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime)))

    def list(self, path: str) -> None:
        p = self._path(path)
        if p is not None and p.is_dir():
            for entry in sorted(p.iterdir()):
                st = entry.lstat()
                name = entry.name.encode()
                self.stream.write(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                        int(st.st_mtime), len(name)) + name)
        self.stream.write(b"DONE" + struct.pack("<IIII", 0, 0, 0, 0))

    def recv(self, path: str) -> None:
        p = self._path(path)
        if p is None or not p.is_file():
            self.fail(f"remote object '{path}' does not exist")
            return
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(SYNC_DATA_MAX), b""):
                self.stream.write(P.sync_packet(b"DATA", len(chunk), chunk))
        self.stream.write(P.sync_packet(b"DONE", 0))

    def send(self, spec: str) -> None:
        path, _, mode_text = spec.rpartition(",")
        if not path:
            path, mode_text = spec, "33188"
        p = self._path(path)
        error = None
        if p is None or str(path).startswith(("/system", "/sys")):
            error = f"couldn't create file: Read-only file system"
        tmp = None
        fh = None
        if error is None:
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(f".{p.name}.adb-sync")
            fh = open(tmp, "wb")
        written = 0
        mtime = 0
        while True:
            tag = self.stream.read_exact(4)
            (value,) = struct.unpack("<I", self.stream.read_exact(4))
            if tag == b"DATA":
                data = self.stream.read_exact(value)
                if error is None:
                    if self.userspace.free_bytes() < len(data):
                        error = "write failed: No space left on device"
                    else:
                        fh.write(data)
                        written += len(data)
            elif tag == b"DONE":
                mtime = value
                break
            else:
                error = error or f"unexpected sync packet {tag!r} during SEND"
                break
        if fh is not None:
            fh.close()
        if error is not None:
            if tmp is not None and tmp.exists():
                tmp.unlink()
            self.fail(error)
            return
        os.chmod(tmp, int(mode_text) & 0o7777 if mode_text.isdigit() else 0o644)
        if mtime:
            os.utime(tmp, (mtime, mtime))
        tmp.replace(p)
        self.stream.write(P.sync_packet(b"OKAY", 0))
