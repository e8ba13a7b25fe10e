"""The virtual phone's userspace: a sandbox directory laid out like Android, and commands run in it.

The phone runs one bubblewrap (``bwrap``) sandbox for its whole life: uid/gid 2000 (Android's ``shell``) in
new user, PID, IPC, UTS and network namespaces, no capabilities, no network (only its own loopback). Its first
process is the zygote (:mod:`android_harness.virtual.zygote`), which starts every shell command, so all of them
share one PID namespace as on a phone (``nohup … &`` keeps running, ``kill PID`` works from a later command).
Visible inside: the sandbox's ``data`` and ``sdcard`` (read-write) and ``system`` and ``sys`` (read-only) at
``/data``, ``/sdcard``, ``/system`` and ``/sys``, a ``/proc`` of the sandbox's own processes with a
``/proc/cpuinfo`` of the profile's CPU, and read-only ``/usr``, the Python installation and the harness
package; nothing else of the host. ``/system/bin`` holds ``getprop``, ``dumpsys``, ``taskset`` and ``df``;
``/data/local/tmp/benchmark_model`` runs the pushed model with LiteRT on the host CPU
(:mod:`android_harness.virtual.benchmark_tool`). Stopping the phone ends the sandbox and every process in it.
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

from android_harness.errors import HarnessError
from android_harness.virtual.devicefs import DeviceFS

log = logging.getLogger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds android_harness/
SHELL_UID = 2000  # AID_SHELL: the uid of `adb shell` on Android
ZYGOTE_START_TIMEOUT_S = 60.0


def props_for(profile, serial: str, secure: bool = True) -> dict[str, str]:
    """The ``getprop`` values of a virtual phone emulating ``profile``."""
    return {
        "ro.product.model": profile.model, "ro.product.brand": profile.brand,
        "ro.product.manufacturer": profile.manufacturer, "ro.product.device": profile.device,
        # The product name marks the phone as virtual: numbers from it are labelled virtual:<profile>.
        "ro.product.name": f"{profile.name}_virtual", "ro.hardware": profile.platform,
        "ro.board.platform": profile.platform, "ro.soc.model": profile.soc,
        "ro.soc.manufacturer": profile.soc_manufacturer, "ro.build.version.release": profile.android_release,
        "ro.build.version.sdk": str(profile.sdk), "ro.product.cpu.abi": profile.abi,
        "ro.product.cpu.abilist": ",".join(profile.abi_list), "ro.serialno": serial,
        "ro.build.fingerprint": f"{profile.brand}/{profile.device}/{profile.device}:{profile.android_release}/"
                                f"VIRTUAL/1:user/release-keys",
        "ro.kernel.version": profile.kernel, "ro.boot.hardware": profile.platform, "ro.adb.secure": "1" if secure else "0",
        "sys.boot_completed": "1",
    }


def _cpuinfo(profile) -> str:
    lines = []
    for cluster in profile.clusters:
        for cpu in cluster.cpus:
            lines += [f"processor\t: {cpu}", "BogoMIPS\t: 52.00", "Features\t: fp asimd evtstrm aes pmull sha1 sha2 "
                      "crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
                      "CPU implementer\t: 0x41", "CPU architecture: 8", f"CPU part\t: {cluster.core_type}", ""]
    lines.append(f"Hardware\t: {profile.soc}")
    return "\n".join(lines) + "\n"


class Userspace:
    """Builds the sandbox for ``profile`` under ``root`` and runs shell commands in it."""

    def __init__(self, profile, root: Path, serial: str, storage_free_mb: float | None = None, secure: bool = True):
        if shutil.which("bwrap") is None:
            raise HarnessError("The virtual phone needs bubblewrap: apt-get install bubblewrap")
        self.profile = profile
        self.root = Path(root)
        self.serial = serial
        self.storage_free_mb = storage_free_mb
        self.secure = secure
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._proc: subprocess.Popen | None = None
        self._init_pid: int | None = None
        self._pidns: int | None = None
        self._stopping = False
        self.fs = DeviceFS(self.root)
        self._build()

    # -- layout ------------------------------------------------------------------------------
    def path(self, device_path: str) -> Path:
        """Where a device path lives in the sandbox on the host (lexically; symlinks are not followed).

        For the host's own use (tests, the phone's owner); the sync service resolves paths through
        :class:`~android_harness.virtual.devicefs.DeviceFS` instead, which confines symlinks too."""
        p = posixpath.normpath("/" + device_path.lstrip("/"))
        for prefix in ("/data", "/sdcard", "/system", "/sys"):
            if p == prefix or p.startswith(prefix + "/"):
                return self.root / p.lstrip("/")
        raise HarnessError(f"{device_path!r} is outside the virtual phone's writable/readable folders")

    def _write(self, rel: str, text: str, mode: int | None = None) -> None:
        if rel.split("/", 1)[0] in ("data", "sdcard"):  # writable from the device: never follow its symlinks
            self.fs.make_parents("/" + rel)
            self.fs.write_bytes("/" + rel, text.encode(), 0o644 if mode is None else mode)
            return
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        if mode is not None:
            tmp.chmod(mode)
        tmp.replace(path)

    def _build(self) -> None:
        p = self.profile
        for d in ("data/local/tmp", "data/system", "sdcard", "system/bin", "system/etc"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        sh = self.root / "system/bin/sh"
        if not sh.exists():
            sh.symlink_to("/usr/bin/sh")
        self._write("system/etc/props.json", json.dumps(props_for(p, self.serial, self.secure), indent=1))
        self._write("cpuinfo", _cpuinfo(p))
        # -S: the tools need the standard library only, and a real phone's getprop/dumpsys are native binaries that
        # start in milliseconds; skipping site-packages saves this host ~20 ms of every command that uses one.
        tool = f"#!/system/bin/sh\nexec {sys.executable} -S -m android_harness.virtual.tools {{}} \"$@\"\n"
        for name in ("getprop", "dumpsys", "taskset", "df"):
            self._write(f"system/bin/{name}", tool.format(name), 0o755)
        self._write("data/local/tmp/benchmark_model",
                    f"#!/system/bin/sh\nexec {sys.executable} -m android_harness.virtual.benchmark_tool \"$@\"\n",
                    0o755)
        cpus = sorted(c for cl in p.clusters for c in cl.cpus)
        span = f"{cpus[0]}-{cpus[-1]}"
        for name in ("online", "possible", "present"):
            self._write(f"sys/devices/system/cpu/{name}", span + "\n")
        for cluster in p.clusters:
            related = " ".join(map(str, cluster.cpus))
            for cpu in cluster.cpus:
                base = f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
                self._write(f"{base}/cpuinfo_max_freq", f"{cluster.max_freq_khz}\n")
                self._write(f"{base}/cpuinfo_min_freq", f"{cluster.min_freq_khz}\n")
                self._write(f"{base}/scaling_max_freq", f"{cluster.max_freq_khz}\n")
                self._write(f"{base}/scaling_cur_freq", f"{cluster.max_freq_khz}\n")
                self._write(f"{base}/scaling_governor", f"{p.governor or 'schedutil'}\n")
                self._write(f"{base}/related_cpus", related + "\n")
                self._write(f"{base}/scaling_available_frequencies",
                            " ".join(map(str, cluster.available_freqs_khz)) + "\n")
        for i, zone in enumerate(p.thermal_zones):
            self._write(f"sys/class/thermal/thermal_zone{i}/type", zone.type + "\n")
            self._write(f"sys/class/thermal/thermal_zone{i}/temp", f"{int(zone.idle_temp_c * 1000)}\n")
        self.set_state("battery", {"plugged": "none", "level": 87, "updates_stopped": False})
        self.set_state("thermal", {"status": 0})

    # -- phone state shared with the tools ---------------------------------------------------------
    def state(self, name: str) -> dict:
        # /data/system is writable from the device shell: read and write it without following symlinks.
        try:
            value = json.loads(self.fs.read_bytes(f"/data/system/{name}.json"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def set_state(self, name: str, value: dict) -> None:
        try:
            self.fs.write_bytes(f"/data/system/{name}.json", json.dumps(value).encode())
        except OSError as exc:  # e.g. the device replaced /data/system with a symlink: refuse, keep running
            log.warning("could not write the phone's %s state in /data/system: %s", name, exc.strerror or exc)

    def free_bytes(self) -> int:
        """Free storage under /data: the quota when one is set, else the host disk's free space."""
        if self.storage_free_mb is None:
            return shutil.disk_usage(self.root).free
        used = 0
        for folder, _dirs, files in os.walk(self.root / "data/local/tmp"):  # never follows symlinks
            for name in files:
                try:
                    st = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    used += st.st_size
        return max(0, int(self.storage_free_mb * 2**20) - used)

    # -- the sandbox -----------------------------------------------------------------------------
    def _bwrap(self, info_fd: int, control_fd: int) -> list[str]:
        """The sandbox: uid/gid 2000 (Android's ``shell``) in new user, PID, IPC, UTS and network namespaces,
        no capabilities, no way to make further user namespaces, killed with the phone; only the device
        folders, ``/usr`` and the Python that runs the tools are visible (all but /data and /sdcard read-only)."""
        args = ["bwrap", "--unshare-user", "--uid", str(SHELL_UID), "--gid", str(SHELL_UID), "--unshare-pid",
                "--unshare-ipc", "--unshare-net", "--unshare-uts", "--hostname", "localhost",
                "--unshare-cgroup-try", "--cap-drop", "ALL", "--die-with-parent", "--new-session",
                "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin", "--proc", "/proc",
                "--dev", "/dev",
                "--bind", str(self.root / "data"), "/data", "--bind", str(self.root / "sdcard"), "/sdcard",
                "--ro-bind", str(self.root / "system"), "/system", "--ro-bind", str(self.root / "sys"), "/sys",
                "--ro-bind", str(self.root / "cpuinfo"), "/proc/cpuinfo"]
        for prefix in sorted({sys.prefix, sys.base_prefix}):
            if not prefix.startswith("/usr"):
                args += ["--ro-bind", prefix, prefix]
        harness = str(PACKAGE_ROOT / "android_harness")
        if not any(harness.startswith(p.rstrip("/") + "/") for p in (sys.prefix, sys.base_prefix, "/usr")):
            args += ["--ro-bind", harness, harness]  # only the harness, not the folder around it
        if _disable_userns_supported():
            args.append("--disable-userns")
        args += ["--remount-ro", "/"]  # the root file system is read-only, as on a phone
        return args + ["--chdir", "/", "--info-fd", str(info_fd), sys.executable, "-m",
                       "android_harness.virtual.zygote", str(control_fd)]

    def start(self) -> None:
        """Start the sandbox and its zygote; HarnessError (with bubblewrap's message) when it cannot start."""
        ready = threading.Event()
        errors: list[str] = []
        threading.Thread(target=self._keep_sandbox, args=(ready, errors), name="vphone-sandbox",
                         daemon=True).start()
        ready.wait()
        if errors:
            raise HarnessError(errors[0])

    def _keep_sandbox(self, ready: threading.Event, errors: list[str]) -> None:
        # The sandbox is started from this thread and waited for here: bwrap's --die-with-parent fires when
        # the *thread* that started it ends, so that thread must live as long as the phone.
        control, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        info_r, info_w = os.pipe()
        try:
            proc = subprocess.Popen(self._bwrap(info_w, child_end.fileno()), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self._env(),
                                    pass_fds=(info_w, child_end.fileno()))
        except OSError as exc:
            errors.append(f"Could not start bubblewrap for the virtual phone: {exc}")
            ready.set()
            return
        finally:
            os.close(info_w)
            child_end.close()
        info = b""
        with os.fdopen(info_r, "rb") as fh:
            for chunk in iter(lambda: fh.read1(4096), b""):
                info += chunk
                try:
                    self._init_pid = int(json.loads(info)["child-pid"])
                    break
                except (ValueError, KeyError):
                    continue
        if self._init_pid is None:
            message = proc.stderr.read().decode(errors="replace").strip().splitlines()
            proc.wait()
            errors.append(f"bubblewrap could not create the virtual phone's sandbox: "
                          f"{message[-1] if message else f'exit {proc.returncode}'}. It needs unprivileged user "
                          f"namespaces (sysctl kernel.unprivileged_userns_clone=1) or root")
            control.close()
            ready.set()
            return
        self._pidns = os.stat(f"/proc/{self._init_pid}/ns/pid").st_ino
        control.settimeout(ZYGOTE_START_TIMEOUT_S)
        try:
            hello = control.recv(64)
        except OSError:
            hello = b""
        control.settimeout(None)
        if b"ready" not in hello:
            control.close()
            self._proc = proc
            self.kill_all()
            detail = proc.stderr.read().decode(errors="replace").strip().splitlines()
            errors.append(f"The virtual phone's sandbox started but its zygote did not come up within "
                          f"{ZYGOTE_START_TIMEOUT_S:g} s: {detail[-1] if detail else 'no message'}")
            ready.set()
            return
        self._proc, self._control = proc, control
        ready.set()
        stderr = proc.stderr.read().decode(errors="replace").strip()
        proc.wait()
        if stderr and not self._stopping:
            log.warning("the virtual phone's sandbox ended: %s", stderr.splitlines()[-1])

    def _env(self) -> dict[str, str]:
        return {"PATH": "/system/bin:/usr/bin:/bin", "HOME": "/data/local/tmp", "TMPDIR": "/data/local/tmp",
                "SHELL": "/system/bin/sh", "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system",
                "PYTHONPATH": str(PACKAGE_ROOT), "FERMINET_VIRTUAL_STATE": "/data/system",
                "FERMINET_VIRTUAL_SERIAL": self.serial, "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
                "USER": "shell", "LOGNAME": "shell"}

    # -- running commands ------------------------------------------------------------------------
    def spawn(self, command: str, merge_stderr: bool = False) -> "DeviceProcess":
        """Start ``sh -c command`` in the sandbox; stdin/stdout/stderr are pipes (``merge_stderr``: one pipe for
        both, in the order written, as the terminal of ``adb shell`` v1 gives)."""
        if self._control is None:
            raise HarnessError("The virtual phone is not running")
        status_host, status_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe() if not merge_stderr else (None, os.dup(stdout_w))
        request = json.dumps({"argv": ["/system/bin/sh", "-c", command], "env": self._env(), "cwd": "/"}).encode()
        try:
            with self._lock:
                socket.send_fds(self._control, [request], [stdin_r, stdout_w, stderr_w, status_child.fileno()])
        except OSError as exc:
            for fd in (stdin_w, stdout_r, stderr_r):
                if fd is not None:
                    os.close(fd)
            status_host.close()
            raise HarnessError(f"The virtual phone's sandbox is gone: {exc}") from exc
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
            status_child.close()
        return DeviceProcess(status_host, stdin_w, stdout_r, stderr_r)

    def session_pids(self) -> list[int]:
        """Every live process of the phone (host pids): the processes in its PID namespace."""
        if self._pidns is None:
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}/ns/pid").st_ino == self._pidns:
                        pids.append(int(entry))
                except OSError:
                    continue
        return pids

    def kill_all(self) -> None:
        """Stop the sandbox: its first process dies, and with it every process in its PID namespace."""
        self._stopping = True
        control, self._control = self._control, None
        if control is not None:
            control.close()
        if self._init_pid is not None:
            try:
                os.kill(self._init_pid, signal.SIGKILL)
            except OSError:
                pass
        if self._proc is not None:
            try:
                self._proc.kill()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("the virtual phone's sandbox did not exit")


class DeviceProcess:
    """A command running in the sandbox: ``stdin``/``stdout``/``stderr`` pipes, ``poll``/``wait``/``hangup``."""

    def __init__(self, status: socket.socket, stdin_w: int, stdout_r: int, stderr_r: int | None):
        self._status = status
        self._buffer = b""
        self.stdin = os.fdopen(stdin_w, "wb", buffering=0)
        self.stdout = os.fdopen(stdout_r, "rb", buffering=0)
        self.stderr = os.fdopen(stderr_r, "rb", buffering=0) if stderr_r is not None else None
        self.returncode: int | None = None
        self.pid = self._next().get("pid")  # the pid inside the phone; None if the command did not start
        if self.pid is None and self.returncode is None:
            self.returncode = 127

    def _next(self) -> dict:
        while b"\n" not in self._buffer:
            try:
                chunk = self._status.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                return {}
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return {}
        if isinstance(message, dict) and isinstance(message.get("exit"), int):
            self.returncode = message["exit"]
        return message if isinstance(message, dict) else {}

    def wait(self) -> int:
        while self.returncode is None:
            if not self._next():
                self.returncode = 255  # the sandbox went away under the command
        self._status.close()
        return self.returncode

    def hangup(self) -> None:
        """The host hung up: the zygote sends SIGHUP to the command's process group (SIGKILL later)."""
        try:
            self._status.shutdown(socket.SHUT_WR)
        except OSError:
            pass


_USERNS_FLAG: bool | None = None


def _disable_userns_supported() -> bool:
    global _USERNS_FLAG
    if _USERNS_FLAG is None:
        try:
            out = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10)
            _USERNS_FLAG = "--disable-userns" in out.stdout + out.stderr
        except (OSError, subprocess.TimeoutExpired):
            _USERNS_FLAG = False
    return _USERNS_FLAG
