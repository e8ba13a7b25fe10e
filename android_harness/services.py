"""Long-running activity on the device: start/stop services whose stop never raises.

- :class:`PowerSampler`: a device-side shell loop sampling the fuel gauge every 50 ms into a file.
- :class:`ThermalGate`: waits (bounded) for a normal thermal state and a cool battery.
- Pid files: every process the harness leaves running on a phone (the sampler loop, ``benchmark_model``) is
  recorded in ``/data/local/tmp/ferminet/run/<name>.pid`` as ``PID TAG`` (TAG is in the process's command
  line, so a reused pid is never killed). ``stop`` kills it; :func:`reap_leftovers` kills whatever a killed
  host process (``kill -9 ferminet profile``) left behind, and runs when profiling starts.
"""
from __future__ import annotations

import logging
import time
import uuid

from android_harness.connection import quote
from android_harness.deploy import REMOTE_ROOT, clean
from android_harness.errors import HarnessError, ThermalGateError

log = logging.getLogger(__name__)
GAUGE = "/sys/class/power_supply/battery"
RUN_DIR = f"{REMOTE_ROOT}/run"
_TAG_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-=/"


def _pid_file(name: str) -> str:
    return f"{RUN_DIR}/{name}.pid"


def _check_tag(tag: str) -> str:
    if not tag or any(c not in _TAG_SAFE for c in tag):
        raise HarnessError(f"A pid-file tag must be letters, digits and _.-=/ only. Received: tag={tag!r}")
    return tag


def tracked_command(command: str, name: str, tag: str) -> str:
    """``command`` run in the foreground with a pid file: the shell writes ``$$ TAG`` and then *execs* the
    command (same pid), so a killed host leaves a record of it. ``tag`` must occur in the command line."""
    return (f"mkdir -p {RUN_DIR} && echo \"$$ {_check_tag(tag)}\" > {quote(_pid_file(name))} && "
            f"exec {command}")


def stop_tracked(device, name: str) -> None:
    """Kill the process recorded in pid file ``name`` if it still runs, and remove the file. Never raises."""
    try:
        device.shell(_reap_script(quote(_pid_file(name))))
    except Exception as exc:  # noqa: BLE001 - stop never raises; the next reap_leftovers retries
        log.warning("could not stop %s on %s: %s", name, device.serial, exc)


def _reap_script(files: str) -> str:
    # For each pid file: kill the pid only if its command line still contains the tag (pids get reused),
    # then remove the file. Prints "PID TAG" for each process killed.
    return (f"for f in {files}; do [ -f \"$f\" ] || continue; read pid tag < \"$f\"; "
            f"case \"$pid\" in ''|*[!0-9]*) ;; *) "
            f"if [ -n \"$tag\" ] && tr '\\0' ' ' 2>/dev/null < /proc/$pid/cmdline | grep -qF -- \"$tag\"; then "
            f"kill -9 $pid 2>/dev/null && echo \"$pid $tag\"; fi;; esac; rm -f \"$f\"; done; true")


def tracked_running(device) -> tuple[str, ...]:
    """Names of the harness's pid files whose process still runs (e.g. ``benchmark``): the phone is measuring
    for some host process right now. Reads only, kills nothing."""
    out = device.shell(f"for f in {RUN_DIR}/*.pid; do [ -f \"$f\" ] || continue; read pid tag < \"$f\"; "
                       f"case \"$pid\" in ''|*[!0-9]*) ;; *) if [ -n \"$tag\" ] && tr '\\0' ' ' 2>/dev/null "
                       f"< /proc/$pid/cmdline | grep -qF -- \"$tag\"; then echo \"RUNNING $f\"; fi;; esac; done; "
                       f"true").stdout
    return tuple(line.split()[1].rsplit("/", 1)[-1].removesuffix(".pid") for line in out.splitlines()
                 if line.startswith("RUNNING "))


def reap_leftovers(device) -> tuple[str, ...]:
    """Kill every process a previous harness run left on ``device`` (pid files under RUN_DIR); returns
    ``"PID TAG"`` for each one killed. Call it before measuring: a leftover sampler or benchmark would load
    the phone and spoil the numbers."""
    out = device.shell(_reap_script(f"{RUN_DIR}/*.pid")).stdout
    killed = tuple(line.strip() for line in out.splitlines()
                   if len(line.split()) == 2 and line.split()[0].isdigit())
    if killed:
        log.warning("%s: stopped %d process(es) a previous run left behind: %s", device.serial, len(killed),
                    "; ".join(killed))
    return killed


class PowerSampler:
    """``with PowerSampler(device) as s: ...`` then ``s.text`` holds the sampler lines (see energy.py)."""

    def __init__(self, device, period_s: float = 0.05):
        self.device = device
        self.period_s = period_s
        run_id = uuid.uuid4().hex[:8]
        self.path = f"{REMOTE_ROOT}/power-{run_id}.txt"
        self.name = f"sampler-{run_id}"
        self.tag = f"ferminet-sampler-{run_id}"
        self.pid: int | None = None
        self.text = ""

    def start(self) -> "PowerSampler":
        loop = (f"while true; do read up rest < /proc/uptime; echo \"$up $(cat {GAUGE}/current_now) "
                f"$(cat {GAUGE}/voltage_now)\"; sleep {self.period_s:g}; done > {quote(self.path)}")
        # `sh -c LOOP TAG`: TAG becomes $0, so it shows in the loop's command line (checked before a kill).
        out = self.device.check(f"mkdir -p {REMOTE_ROOT} {RUN_DIR} && {{ nohup sh -c {quote(loop)} {self.tag} "
                                f"> /dev/null 2>&1 & echo \"$! {self.tag}\" > {quote(_pid_file(self.name))}; "
                                f"echo $!; }}").stdout.split()
        if not out or not out[-1].isdigit():
            self.device.shell(f"rm -f {quote(_pid_file(self.name))}")
            raise HarnessError(f"Could not start the power sampler on {self.device.serial}: {out}")
        self.pid = int(out[-1])
        return self

    def stop(self) -> str:
        """Stop sampling and return what was sampled; never raises (returns what it could read)."""
        # One round trip: stop the loop (as stop_tracked does, its report discarded), then read and remove.
        reap = f"{{ {_reap_script(quote(_pid_file(self.name)))}; }} > /dev/null 2>&1; " if self.pid is not None else ""
        try:
            self.text = self.device.shell(f"{reap}cat {quote(self.path)}; rm -f {quote(self.path)}").stdout
            self.pid = None
        except Exception as exc:  # noqa: BLE001 - stop never raises; the caller sees too few samples instead
            log.warning("power sampler on %s did not stop cleanly: %s", self.device.serial, exc)
        return self.text

    def __enter__(self) -> "PowerSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class ThermalGate:
    def __init__(self, device, timeout_s: float = 60.0, battery_temp_max_c: float = 40.0, max_status: int = 1,
                 poll_s: float = 2.0):
        self.device = device
        self.timeout_s = timeout_s
        self.battery_temp_max_c = battery_temp_max_c
        self.max_status = max_status
        self.poll_s = poll_s

    def cool_enough(self, thermal_level: int, battery_temp_c: float | None) -> bool:
        """The gate's test on readings already taken (e.g. a snapshot), so a cool phone is not read twice."""
        return thermal_level <= self.max_status and (battery_temp_c or 0.0) < self.battery_temp_max_c

    def wait(self) -> float:
        """Seconds waited until the phone was cool enough; ThermalGateError when it never was."""
        started = time.monotonic()
        while True:
            battery, thermal, _ = self.device.readings()
            temp = battery.temperature_c if battery.temperature_c is not None else 0.0
            if self.cool_enough(thermal.status, battery.temperature_c):
                return time.monotonic() - started
            if time.monotonic() - started > self.timeout_s:
                raise ThermalGateError(
                    f"{self.device.serial} stayed too hot for {self.timeout_s:g} s (thermal {thermal.status_name}, "
                    f"battery {temp:.1f} C, limit {self.battery_temp_max_c:g} C). Let it cool, unplug the charger, "
                    f"or raise --thermal-timeout")
            time.sleep(self.poll_s)


def clean_device(device) -> tuple[str, ...]:
    """Stop whatever we left running on the device, then remove everything we put there; returns the paths
    removed."""
    reap_leftovers(device)
    return clean(device)
