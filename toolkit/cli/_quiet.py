"""Quiet TensorFlow's native start-up chatter on the command line.

TensorFlow's C++ side writes straight to file descriptor 2, partly before its logging is configured, so
``TF_CPP_MIN_LOG_LEVEL`` alone does not silence it (TF 2.16+: "WARNING: All log messages before
absl::InitializeLog() ...", "I0000 ... oneDNN custom operations are on ...", "E0000 ... failed call to cuInit"
on every machine without a GPU, "INFO: Created TensorFlow Lite XNNPACK delegate"). To a new user these read
like failures. :func:`native_log_filter` routes fd 2 through a pipe and drops such lines below the log level,
passing everything else (our errors, tracebacks, progress bars) through unchanged.

The level follows ``TF_CPP_MIN_LOG_LEVEL`` when the user set it (0 = show all, 1 = hide INFO, 2 = also WARNING,
3 = also ERROR); otherwise it is 2, or 0 with ``-v``. Only the message level is changed, never TensorFlow's
behaviour (``TF_ENABLE_ONEDNN_OPTS`` is left alone: it changes numerics).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from typing import Iterator

_ABSL = re.compile(rb"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]]+\] ")
_ABSL_PREINIT = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_TFLITE_INFO = re.compile(rb"^INFO: (Created TensorFlow Lite|Initialized TensorFlow Lite)")
_CPU_GUARD_TAIL = b"To enable the following instructions:"
# ERROR lines TensorFlow prints on every machine without a GPU: probing CUDA, not a failure of ours.
_GPU_PROBE = re.compile(rb"cuInit|CUDA error|cuda drivers|Unable to register cu(DNN|FFT|BLAS)|cuda_(platform|dnn|fft|blas)")
_LEVEL = {b"I": 0, b"W": 1, b"E": 2, b"F": 4}
_MAYBE_NOISE = re.compile(rb"^(?:[IWEF]\d|WARNING: All|INFO: |To enable)")


def effective_level(verbose: bool) -> int:
    """The native log level in force: the user's TF_CPP_MIN_LOG_LEVEL, else 0 with -v, else 2."""
    text = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if text is not None:
        try:
            return int(text)
        except ValueError:
            return 0
    return 0 if verbose else 2


def is_noise(line: bytes, level: int) -> bool:
    """True when ``line`` (without its terminator) is native chatter below ``level``."""
    if level <= 0:
        return False
    if line.startswith(_ABSL_PREINIT) or line.startswith(_CPU_GUARD_TAIL) or _TFLITE_INFO.match(line):
        return True
    m = _ABSL.match(line)
    if not m:
        return False
    severity = _LEVEL[m.group(1)]
    if severity < level:
        return True
    return severity == 2 and level >= 2 and bool(_GPU_PROBE.search(line))


def _pump(read_fd: int, write_fd: int, level: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            break
        pending += chunk
        out = []
        while True:
            m = re.search(rb"[\r\n]", pending)
            if not m:
                break
            line, pending = pending[:m.end()], pending[m.end():]
            if not is_noise(line.rstrip(b"\r\n"), level):
                out.append(line)
        if pending and not _MAYBE_NOISE.match(pending):
            out.append(pending)  # a partial line that is not chatter (a prompt, a progress bar): show it now
            pending = b""
        if out:
            with contextlib.suppress(OSError):
                os.write(write_fd, b"".join(out))
    if pending and not is_noise(pending, level):
        with contextlib.suppress(OSError):
            os.write(write_fd, pending)


@contextlib.contextmanager
def native_log_filter(verbose: bool) -> Iterator[int]:
    """While active, native chatter below the level is dropped from stderr. Yields the level."""
    level = effective_level(verbose)
    if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(level)  # what TensorFlow's own logging then respects
    if level <= 0:
        yield level
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:  # no usable stderr: nothing to filter
        yield level
        return
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, saved, level), name="ferminet-stderr", daemon=True)
    pump.start()
    try:
        yield level
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes our last reference to the pipe's write end: the pump sees EOF
        pump.join(timeout=2.0)
        if not pump.is_alive():  # else a child process still holds the pipe: leave the pump its fds
            os.close(saved)
            os.close(read_fd)
