"""The virtual phone's battery, ODPM rails and temperatures, driven by real CPU use.

Every tick (20 Hz) the CPU time consumed by the phone's processes on the host is measured
(``/proc/<pid>/stat`` utime + stime); that many busy cores are placed on the profile's fastest cores and
priced with the profile's power model (``estimate_power_mw``, interpolated for fractions of a core), on
top of its idle power. The fuel-gauge files then report that power as ``current_now`` (the profile's unit
and sign convention, +-1% noise) at a ``voltage_now`` that sags with load; ``charge_counter`` and
``capacity`` drain with the energy used; ODPM counters (Pixel 6+) accumulate energy per rail; temperatures
follow a first-order thermal model. While a charger is connected (``dumpsys battery set ac 1``) the gauge
reports a charging current instead.
"""
from __future__ import annotations

import math
import os
import random
import threading
import time

CHARGE_CURRENT_MA = 1500.0
INTERNAL_RESISTANCE_OHM = 0.12
THERMAL_TAU_S = 60.0
THERMAL_C_PER_W = 2.5  # steady-state rise per watt; phones shed ~0.4 W/C through the case
_TICK = os.sysconf("SC_CLK_TCK")


class PowerModel(threading.Thread):
    def __init__(self, userspace, profile, hz: float = 20.0, seed: int = 0):
        super().__init__(name=f"virtual-power-{profile.name}", daemon=True)
        self.userspace = userspace
        self.profile = profile
        self.period_s = 1.0 / hz
        self.rng = random.Random(seed)
        self._stop_event = threading.Event()  # not `_stop`: that name is threading.Thread's own
        self.charge_uah = float(profile.battery.capacity_mah * 1000 * 0.87) if profile.battery else 0.0
        self.rail_uws = {rail: 0.0 for rail in profile.odpm_rails}
        self.temp_c = {z.name: z.idle_temp_c for z in profile.thermal_zones}
        self.boot = time.monotonic()
        self.last_cpu_s = None
        self.power_mw = profile.power_model.idle_mw
        self.tick()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait for it (never raises)."""
        self._stop_event.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout_s)

    def run(self) -> None:
        while not self._stop_event.wait(self.period_s):
            try:
                self.tick()
            except (OSError, ValueError):
                continue  # the sandbox is being torn down

    def _cpu_seconds(self) -> float:
        total = 0
        for pid in self.userspace.session_pids():
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                continue
        return total / _TICK

    def _active_mw(self, busy_cores: float) -> float:
        if busy_cores <= 0:
            return 0.0
        low = math.floor(busy_cores)
        p_low = self.profile.estimate_power_mw(low) if low >= 1 else 0.0
        p_high = self.profile.estimate_power_mw(low + 1)
        return p_low + (p_high - p_low) * (busy_cores - low)

    def tick(self) -> None:
        now = time.monotonic()
        cpu = self._cpu_seconds()
        dt = self.period_s if self.last_cpu_s is None else max(1e-3, now - self._last_t)
        busy = 0.0 if self.last_cpu_s is None else max(0.0, cpu - self.last_cpu_s) / dt
        self.last_cpu_s, self._last_t = cpu, now
        pm = self.profile.power_model
        active_mw = self._active_mw(busy)
        self.power_mw = (pm.idle_mw + active_mw) * (1.0 + self.rng.gauss(0.0, 0.01))
        battery = self.profile.battery
        state = self.userspace.state("battery")
        plugged = state.get("plugged", "none") != "none"
        if battery is not None:
            nominal_v = battery.nominal_voltage_mv / 1000.0
            discharge_ma = self.power_mw / nominal_v
            current_ma = -CHARGE_CURRENT_MA if plugged else discharge_ma  # positive = leaving the battery
            voltage_v = nominal_v - INTERNAL_RESISTANCE_OHM * current_ma / 1000.0 + (0.25 if plugged else 0.0)
            self.charge_uah -= current_ma * 1000.0 * dt / 3600.0
            self.charge_uah = min(max(self.charge_uah, 0.0), battery.capacity_mah * 1000.0)
            raw_current = battery.current_sign_discharge * current_ma * (1000.0 if battery.current_unit == "uA" else 1.0)
            raw_voltage = voltage_v * (1e6 if battery.voltage_unit == "uV" else 1e3)
            level = int(round(100 * self.charge_uah / (battery.capacity_mah * 1000.0)))
            battery_zone = next((z.name for z in self.profile.thermal_zones if z.type == "battery"), None)
            temp_decic = int(round(10 * self.temp_c.get(battery_zone, 29.0))) if battery_zone else 295
            status = "Charging" if plugged else "Discharging"
            files = {"current_now": f"{int(round(raw_current))}", "current_avg": f"{int(round(raw_current))}",
                     "voltage_now": f"{int(round(raw_voltage))}", "capacity": f"{level}",
                     "charge_counter": f"{int(self.charge_uah)}", "temp": f"{temp_decic}", "status": status,
                     "present": "1", "technology": battery.technology,
                     "charge_full_design": f"{int(battery.capacity_mah * 1000)}"}
            files["uevent"] = "\n".join(f"POWER_SUPPLY_{k.upper()}={v}" for k, v in
                                        [("name", "battery")] + sorted(files.items()) if k != "uevent")
            for name, value in files.items():
                self.userspace._write(f"sys/class/power_supply/battery/{name}", value + "\n")
        self._odpm(dt, active_mw)
        self._thermal(dt)
        free = self.userspace.free_bytes()
        self.userspace.set_state("storage", {"free_kb": free // 1024,
                                             "total_kb": max(free // 1024, 64 * 1024 * 1024)})

    def _odpm(self, dt: float, active_mw: float) -> None:
        rails = self.profile.odpm_rails
        if not rails:
            return
        cluster_rails = dict(self.profile.odpm_cluster_rails)
        big = cluster_rails.get(self.profile.big_cluster().name)
        idle_share = self.profile.power_model.idle_mw / len(rails)
        for rail in rails:
            mw = idle_share + (active_mw if rail == big else 0.0)
            self.rail_uws[rail] += mw * 1000.0 * dt  # mW -> uW, x seconds
        t_ms = int((time.monotonic() - self.boot) * 1000)
        half = (len(rails) + 1) // 2
        for device, chunk in ((0, rails[:half]), (1, rails[half:])):
            lines = [f"t={t_ms}"] + [f"CH{i}(T={t_ms})[{rail}], {int(self.rail_uws[rail])}"
                                     for i, rail in enumerate(chunk)]
            base = f"sys/bus/iio/devices/iio:device{device}"
            self.userspace._write(f"{base}/energy_value", "\n".join(lines) + "\n")
            self.userspace._write(f"{base}/name", f"s2mpg1{device}-odpm\n")

    def _thermal(self, dt: float) -> None:
        for i, zone in enumerate(self.profile.thermal_zones):
            target = zone.idle_temp_c + THERMAL_C_PER_W * self.power_mw / 1000.0
            t = self.temp_c[zone.name]
            t += (target - t) * min(1.0, dt / THERMAL_TAU_S)
            self.temp_c[zone.name] = t
            self.userspace._write(f"sys/class/thermal/thermal_zone{i}/temp", f"{int(t * 1000)}\n")
