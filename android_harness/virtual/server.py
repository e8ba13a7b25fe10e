"""Device-side ADB over TCP: the transport handshake, streams with flow control, and the services
``shell:`` (v1), ``shell,v2,…:`` (shell protocol v2 with exit codes), ``exec:`` and ``sync:`` (file sync:
STAT, LIST, SEND, RECV, DATA, DONE, QUIT; FAIL on errors).

One thread per connection reads messages; each opened stream runs its service in its own thread and
sends WRTE messages one at a time, waiting for the host's OKAY before the next (ADB's flow control).
"""
from __future__ import annotations

import logging
import errno
import os
import queue
import socket
import stat
import struct
import threading
import time

from android_harness.adbkey import TOKEN_BYTES, decode_public_key
from android_harness.errors import HarnessError
from android_harness.virtual import protocol as P

log = logging.getLogger(__name__)
SYNC_DATA_MAX = 64 * 1024
WRITE_TIMEOUT_S = 30.0
PRE_AUTH_MAX_PAYLOAD = 8192  # CNXN banners and AUTH packets are far smaller
MAX_AUTH_FAILURES = 10  # signatures tried per connection before it is closed (a host tries each of its keys)


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
        self.token: bytes | None = None
        self.failures = 0
        try:
            self.peer = "%s:%s" % sock.getpeername()[:2]
        except OSError:
            self.peer = "?"

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
                self.handle(P.read_message(self._recv_exact, None if self.online else PRE_AUTH_MAX_PAYLOAD))
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
            if self.phone.insecure:  # ro.adb.secure=0: no AUTH at all
                self._go_online("insecure")
            else:
                self._send_token()
        elif m.command == P.A_AUTH and not self.online:
            self._auth(m)
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

    # -- authentication, as adbd with ro.adb.secure=1 ----------------------------------------------------
    def _send_token(self) -> None:
        self.token = os.urandom(TOKEN_BYTES)
        self.send(P.Message(P.A_AUTH, P.AUTH_TOKEN, 0, self.token))

    def _go_online(self, how: str) -> None:
        self.online = True
        log.info("ADB host %s connected (%s)", self.peer, how)
        self.send(P.Message(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, self._banner()))

    def _auth(self, m: P.Message) -> None:
        if m.arg0 == P.AUTH_SIGNATURE and self.token is not None:
            token, self.token = self.token, None  # a token is good for one answer
            key = next((k for k in self.phone.trusted_keys() if k.verify(token, m.data)), None)
            if key is not None:
                self._go_online(f"key {key.comment or 'without a name'}")
                return
            self.failures += 1
            if self.failures >= MAX_AUTH_FAILURES:
                self._refuse(f"{self.failures} signatures matched no key in {self.phone.adb_keys}")
                return
            self._send_token()  # as adbd: a new token for the host's next key
        elif m.arg0 == P.AUTH_RSAPUBLICKEY:
            # A real phone would now ask its user "Allow USB debugging?". This one has no user: a public key
            # offered instead of a signature is refused even when listed (anyone can read a .pub file; only
            # a signature proves the host holds the private key).
            try:
                listed = decode_public_key(m.data) in self.phone.trusted_keys()
            except ValueError:
                listed = False
            self._refuse("its key is listed but it did not sign with it" if listed else
                         f"its key is not in {self.phone.adb_keys} (add the host's ~/.android/adbkey.pub "
                         f"there, or start the phone with --insecure)")
        else:
            self._refuse(f"unexpected AUTH type {m.arg0}")

    def _refuse(self, reason: str) -> None:
        log.warning("refused the ADB connection from %s: %s", self.peer, reason)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise ConnectionError("refused")

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
        except (HarnessError, OSError) as exc:  # the phone is stopping under the command
            log.debug("service %r ended: %s", service, exc)
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
        proc = self.phone.userspace.spawn(command or "sh", merge_stderr=emit.merge)
        threading.Thread(target=self._pump_stdin, args=(stream, proc, emit.v2), daemon=True).start()
        readers = []
        for kind, pipe in ((P.SHELL_STDOUT, proc.stdout), (P.SHELL_STDERR, proc.stderr)):
            if pipe is None:
                continue
            def pump(kind=kind, pipe=pipe):
                try:
                    for chunk in iter(lambda: os.read(pipe.fileno(), 65536), b""):
                        emit(kind, chunk)
                except (OSError, StreamClosed):
                    pass
            t = threading.Thread(target=pump, daemon=True)
            t.start()
            readers.append(t)
        done = threading.Event()

        def watch_hangup():
            while not done.is_set():
                if stream.closed.wait(0.1):  # the host hung up: like adbd, hang up the command
                    proc.hangup()
                    return
        threading.Thread(target=watch_hangup, daemon=True).start()
        try:
            code = proc.wait()
        finally:
            done.set()
        for t in readers:
            t.join(timeout=5)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is None:
                continue
            try:
                pipe.close()
            except OSError:
                pass
        return code

    def _shell_v1(self, stream: Stream, command: str, merge: bool) -> None:
        lock = threading.Lock()

        def emit(kind, data):
            if kind == P.SHELL_STDERR and not merge:
                return
            with lock:
                stream.write(data)
        emit.v2 = False
        emit.merge = merge  # shell v1: one stream, in order (adbd gives it a terminal)
        self._run(stream, command, emit)

    def _shell_v2(self, stream: Stream, command: str) -> None:
        lock = threading.Lock()

        def emit(kind, data):
            with lock:
                stream.write(P.shell_packet(kind, data))
        emit.v2 = True
        emit.merge = False
        code = self._run(stream, command, emit)
        stream.write(P.shell_packet(P.SHELL_EXIT, bytes([code & 0xFF])))


class SyncService:
    """The ``sync:`` service: requests are 4-byte ids + 4-byte little-endian lengths (AOSP SYNC.TXT).

    Paths are resolved inside the device tree (:class:`~android_harness.virtual.devicefs.DeviceFS`), never
    on the host; failures are answered as adbd answers them (``open failed: No such file or directory``,
    ``couldn't create file: Read-only file system``...)."""

    def __init__(self, stream: Stream, userspace):
        self.stream = stream
        self.userspace = userspace
        self.fs = userspace.fs

    def fail(self, message: str) -> None:
        data = message.encode()
        self.stream.write(P.sync_packet(b"FAIL", len(data), data))

    def run(self) -> None:
        while True:
            tag = self.stream.read_exact(4)
            (length,) = struct.unpack("<I", self.stream.read_exact(4))
            if tag == b"QUIT":
                return
            if length > 1024:
                self.fail("path too long")
                return
            arg = self.stream.read_exact(length).decode(errors="surrogateescape")
            if tag == b"STAT":
                self.stat(arg)
            elif tag == b"LIST":
                self.list(arg)
            elif tag == b"RECV":
                self.recv(arg)
            elif tag == b"SEND":
                self.send(arg)
            else:
                self.fail(f"unknown command {struct.unpack('<I', tag)[0]:08x}")
                return

    def stat(self, path: str) -> None:
        try:
            st = self.fs.lstat(path)
            mode, size, mtime = st.st_mode, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF
        except OSError:
            mode = size = mtime = 0  # lstat failed: adbd answers zeros
        self.stream.write(b"STAT" + struct.pack("<III", mode, size, mtime))

    def list(self, path: str) -> None:
        try:
            entries = self.fs.listdir(path)
        except OSError:
            entries = []  # opendir failed: adbd answers DONE only
        for name, st in entries:
            raw = name.encode(errors="surrogateescape")
            self.stream.write(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                    int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw)
        self.stream.write(b"DONE" + struct.pack("<IIII", 0, 0, 0, 0))

    def recv(self, path: str) -> None:
        try:
            fd = self.fs.open_read(path)
        except OSError as exc:
            self.fail(f"open failed: {os.strerror(exc.errno or errno.EIO)}")
            return
        with os.fdopen(fd, "rb") as fh:
            try:
                chunks = iter(lambda: fh.read(SYNC_DATA_MAX), b"")
                for chunk in chunks:
                    self.stream.write(P.sync_packet(b"DATA", len(chunk), chunk))
            except OSError as exc:
                self.fail(f"read failed: {os.strerror(exc.errno or errno.EIO)}")
                return
        self.stream.write(P.sync_packet(b"DONE", 0))

    def send(self, spec: str) -> None:
        path, comma, mode_text = spec.rpartition(",")
        if not comma:
            path, mode_text = spec, "33188"
        try:
            mode = int(mode_text, 0) if mode_text.strip() else 0o100644
        except ValueError:
            mode = 0o100644
        error = None
        fd = dir_fd = None
        tmp = name = ""
        try:
            try:
                fd, dir_fd, tmp, name = self.fs.create_temp(path)
            except FileNotFoundError:
                try:
                    self.fs.make_parents(path)
                except OSError as exc:
                    raise _Fail(f"secure_mkdirs failed: {os.strerror(exc.errno or errno.EIO)}") from exc
                fd, dir_fd, tmp, name = self.fs.create_temp(path)
        except _Fail as exc:
            error = str(exc)
        except OSError as exc:
            error = f"couldn't create file: {os.strerror(exc.errno or errno.EIO)}"
        if error is None and stat.S_ISLNK(mode):
            error = "symlink failed: Operation not permitted"  # no symlinks pushed into the sandbox
        mtime = 0
        try:
            while True:
                tag = self.stream.read_exact(4)
                (value,) = struct.unpack("<I", self.stream.read_exact(4))
                if tag == b"DATA":
                    if value > SYNC_DATA_MAX:
                        error = error or "oversize data message"
                        break
                    data = self.stream.read_exact(value)
                    if error is None:
                        if self.userspace.free_bytes() < len(data):
                            error = "write failed: No space left on device"
                        else:
                            try:
                                os.write(fd, data)
                            except OSError as exc:
                                error = f"write failed: {os.strerror(exc.errno or errno.EIO)}"
                elif tag == b"DONE":
                    mtime = value
                    break
                else:
                    error = error or "invalid data message"
                    break
            if error is None:
                perm = mode & 0o777 or 0o644
                perm |= (perm >> 3) & 0o070  # as adbd: copy the user's bits to group and other
                perm |= (perm >> 3) & 0o007
                os.fchmod(fd, perm)
                if mtime:
                    os.utime(fd, (mtime, mtime))
                os.close(fd)
                fd = None
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                tmp = ""
        finally:
            if fd is not None:
                os.close(fd)
            if dir_fd is not None:
                if tmp:
                    try:
                        os.unlink(tmp, dir_fd=dir_fd)
                    except OSError:
                        pass
                os.close(dir_fd)
        if error is not None:
            self.fail(error)
            return
        self.stream.write(P.sync_packet(b"OKAY", 0))


class _Fail(Exception):
    pass
