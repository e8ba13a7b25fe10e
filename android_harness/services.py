"""Long-running activity on the device: start/stop services whose stop never raises.

- :class:`PowerSampler`: a device-side shell loop sampling the fuel gauge every 50 ms into a file.
- :class:`ThermalGate`: waits (bounded) for a normal thermal state and a cool battery.
"""
from __future__ import annotations

import logging
import time
import uuid

from android_harness.connection import quote
from android_harness.deploy import REMOTE_ROOT
from android_harness.errors import HarnessError, ThermalGateError

log = logging.getLogger(__name__)
GAUGE = "/sys/class/power_supply/battery"


class PowerSampler:
    """``with PowerSampler(device) as s: ...`` then ``s.text`` holds the sampler lines (see energy.py)."""

    def __init__(self, device, period_s: float = 0.05):
        self.device = device
        self.period_s = period_s
        self.path = f"{REMOTE_ROOT}/power-{uuid.uuid4().hex[:8]}.txt"
        self.pid: int | None = None
        self.text = ""

    def start(self) -> "PowerSampler":
        self.device.check(f"mkdir -p {REMOTE_ROOT}")
        loop = (f"while true; do read up rest < /proc/uptime; echo \"$up $(cat {GAUGE}/current_now) "
                f"$(cat {GAUGE}/voltage_now)\"; sleep {self.period_s:g}; done > {quote(self.path)}")
        out = self.device.check(f"nohup sh -c {quote(loop)} > /dev/null 2>&1 & echo $!").stdout.split()
        if not out or not out[-1].isdigit():
            raise HarnessError(f"Could not start the power sampler on {self.device.serial}: {out}")
        self.pid = int(out[-1])
        return self

    def stop(self) -> str:
        """Stop sampling and return what was sampled; never raises (returns what it could read)."""
        try:
            if self.pid is not None:
                self.device.shell(f"kill {self.pid}")
                self.pid = None
            self.text = self.device.shell(f"cat {quote(self.path)}; rm -f {quote(self.path)}").stdout
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

    def wait(self) -> float:
        """Seconds waited until the phone was cool enough; ThermalGateError when it never was."""
        started = time.monotonic()
        while True:
            thermal = self.device.thermal()
            battery = self.device.battery()
            temp = battery.temperature_c if battery.temperature_c is not None else 0.0
            if thermal.status <= self.max_status and temp < self.battery_temp_max_c:
                return time.monotonic() - started
            if time.monotonic() - started > self.timeout_s:
                raise ThermalGateError(
                    f"{self.device.serial} stayed too hot for {self.timeout_s:g} s (thermal {thermal.status_name}, "
                    f"battery {temp:.1f} C, limit {self.battery_temp_max_c:g} C). Let it cool, unplug the charger, "
                    f"or raise --thermal-timeout")
            time.sleep(self.poll_s)
