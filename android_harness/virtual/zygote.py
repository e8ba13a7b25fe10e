"""The process inside the virtual phone's sandbox that starts every shell command (Android's zygote, in spirit).

It runs as the sandbox's first process (uid 2000, no capabilities, its own user/PID/IPC/network namespaces),
so every command it starts shares one PID namespace: a pid printed by ``echo $!`` can be killed by a later
command, as on a phone. It talks to the phone process on the host over one ``SOCK_SEQPACKET`` socket
(inherited file descriptor): each request is a JSON object ``{"argv": [...], "env": {...}}`` carrying four
file descriptors (stdin, stdout, stderr, and a status socket). It answers on the status socket with
``{"pid": N}`` and later ``{"exit": CODE}``. When the host closes a status socket before the command ended
(the ADB stream was closed), the command's process group gets SIGHUP, like a hung-up terminal (``nohup``
jobs survive), and SIGKILL two seconds later. When the host closes the control socket, the zygote exits and
the sandbox (its PID namespace, so every process in it) goes with it.

Runs with the standard library only: ``python -m android_harness.virtual.zygote FD``.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading

HANGUP_GRACE_S = 2.0


def _exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def _supervise(proc: subprocess.Popen, status: socket.socket) -> None:
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    hung_up_at = None
    try:
        while proc.poll() is None:
            watch = [status] if hung_up_at is None else []
            if pidfd is not None:
                watch.append(pidfd)
            timeout = 0.05 if pidfd is None else (None if hung_up_at is None else HANGUP_GRACE_S)
            readable, _, _ = select.select(watch, [], [], timeout)
            if status in readable:
                try:
                    data = status.recv(64)
                except OSError:
                    data = b""
                if not data:  # the host hung up: hang up the command's process group
                    hung_up_at = True
                    try:
                        os.killpg(proc.pid, signal.SIGHUP)
                    except OSError:
                        pass
                    if pidfd is None:
                        threading.Timer(HANGUP_GRACE_S, _kill, (proc,)).start()
            elif hung_up_at is not None and pidfd is not None and not readable:
                _kill(proc)
        code = _exit_code(proc.wait())
        try:
            status.sendall(json.dumps({"exit": code}).encode() + b"\n")
        except OSError:
            pass
    finally:
        if pidfd is not None:
            os.close(pidfd)
        status.close()


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass


def _spawn(request: dict, fds: list[int]) -> None:
    stdin, stdout, stderr, status_fd = fds
    status = socket.socket(fileno=status_fd)
    try:
        proc = subprocess.Popen(request["argv"], stdin=stdin, stdout=stdout, stderr=stderr, env=request.get("env"),
                                cwd=request.get("cwd", "/"), start_new_session=True, close_fds=True)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        status.sendall(json.dumps({"error": str(exc), "exit": 127}).encode() + b"\n")
        status.close()
        return
    finally:
        for fd in (stdin, stdout, stderr):
            os.close(fd)
    status.sendall(json.dumps({"pid": proc.pid}).encode() + b"\n")
    threading.Thread(target=_supervise, args=(proc, status), daemon=True).start()


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    control.send(b'{"ready": true}')  # the phone starts its power model only now: our start-up is not load
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, 1 << 20, 4)
        except OSError:
            return 0
        if not data:
            return 0  # the phone stopped
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        try:
            request = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            continue
        _spawn(request, fds)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
