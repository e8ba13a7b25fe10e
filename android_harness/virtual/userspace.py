"""The virtual phone's userspace: a sandbox directory laid out like Android, and commands run in it.

Every shell command runs the host's real ``/bin/sh`` under bubblewrap (``bwrap``) with the sandbox's
``data``, ``sdcard``, ``system`` and ``sys`` folders mounted at ``/data``, ``/sdcard``, ``/system`` and
``/sys``, a ``/proc/cpuinfo`` of the profile's CPU, ``/usr`` and the Python installation read-only, and
nothing else of the host visible. ``/system/bin`` holds ``getprop``, ``dumpsys``, ``taskset`` and ``df``;
``/data/local/tmp/benchmark_model`` runs the pushed model with LiteRT on the host
(:mod:`android_harness.virtual.benchmark_tool`). Processes started by commands keep running after the
command returns (``nohup … &``) until the phone stops, which kills every session it started.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from android_harness.errors import HarnessError

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds android_harness/


def props_for(profile, serial: str) -> dict[str, str]:
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
        "ro.kernel.version": profile.kernel, "ro.boot.hardware": profile.platform, "ro.adb.secure": "0",
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

    def __init__(self, profile, root: Path, serial: str, storage_free_mb: float | None = None):
        if shutil.which("bwrap") is None:
            raise HarnessError("The virtual phone needs bubblewrap: apt-get install bubblewrap")
        self.profile = profile
        self.root = Path(root)
        self.serial = serial
        self.storage_free_mb = storage_free_mb
        self._sessions: set[int] = set()
        self._lock = threading.Lock()
        self._build()

    # -- layout ------------------------------------------------------------------------------
    def path(self, device_path: str) -> Path:
        """Where a device path lives in the sandbox on the host."""
        p = "/" + device_path.lstrip("/")
        for prefix in ("/data", "/sdcard", "/system", "/sys"):
            if p == prefix or p.startswith(prefix + "/"):
                return self.root / p.lstrip("/")
        raise HarnessError(f"{device_path!r} is outside the virtual phone's writable/readable folders")

    def _write(self, rel: str, text: str, mode: int | None = None) -> None:
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
        self._write("system/etc/props.json", json.dumps(props_for(p, self.serial), indent=1))
        self._write("cpuinfo", _cpuinfo(p))
        tool = f"#!/system/bin/sh\nexec {sys.executable} -m android_harness.virtual.tools {{}} \"$@\"\n"
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
        try:
            return json.loads((self.root / f"data/system/{name}.json").read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def set_state(self, name: str, value: dict) -> None:
        self._write(f"data/system/{name}.json", json.dumps(value))

    def free_bytes(self) -> int:
        """Free storage under /data: the quota when one is set, else the host disk's free space."""
        if self.storage_free_mb is None:
            return shutil.disk_usage(self.root).free
        used = sum(f.stat().st_size for f in (self.root / "data/local/tmp").rglob("*") if f.is_file())
        return max(0, int(self.storage_free_mb * 2**20) - used)

    # -- running commands ------------------------------------------------------------------------
    def _bwrap(self) -> list[str]:
        binds = ["bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                 "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/sbin", "/sbin", "--proc", "/proc",
                 "--dev", "/dev", "--tmpfs", "/tmp",
                 "--bind", str(self.root / "data"), "/data", "--bind", str(self.root / "sdcard"), "/sdcard",
                 "--ro-bind", str(self.root / "system"), "/system", "--ro-bind", str(self.root / "sys"), "/sys",
                 "--ro-bind", str(self.root / "cpuinfo"), "/proc/cpuinfo"]
        for prefix in {sys.prefix, sys.base_prefix, str(PACKAGE_ROOT)}:
            if not prefix.startswith("/usr"):
                binds += ["--ro-bind", prefix, prefix]
        return binds

    def spawn(self, command: str) -> subprocess.Popen:
        """Start ``sh -c command`` in the sandbox; stdin/stdout/stderr are pipes."""
        env = {"PATH": "/system/bin:/usr/bin:/bin", "HOME": "/", "TMPDIR": "/data/local/tmp", "SHELL": "/system/bin/sh",
               "ANDROID_DATA": "/data", "ANDROID_ROOT": "/system", "PYTHONPATH": str(PACKAGE_ROOT),
               "FERMINET_VIRTUAL_STATE": "/data/system", "FERMINET_VIRTUAL_SERIAL": self.serial,
               "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        proc = subprocess.Popen(self._bwrap() + ["--chdir", "/", "/system/bin/sh", "-c", command],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                start_new_session=True)
        with self._lock:
            self._sessions.add(proc.pid)
        return proc

    def session_pids(self) -> list[int]:
        """Every live process started by this phone (including background ones)."""
        with self._lock:
            sessions = set(self._sessions)
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[3]) in sessions:  # field 6 of stat (session id) after the comm
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
        return pids

    def kill_all(self) -> None:
        for sid in list(self._sessions):
            try:
                os.killpg(sid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in self.session_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
