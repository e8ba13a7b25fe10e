"""Pure functions: raw device text -> typed results. No I/O; tested on recorded real outputs.

Handles benchmark_model output in its variants (``INFO:``-prefixed or not, logcat-prefixed lines of the
benchmark app, the old "Average inference timings in us" and the newer "Inference timings in us" summary,
scientific notation, p5/median/p95, memory lines, the op-profiling tables and CSV), ``dumpsys battery``,
``dumpsys thermalservice``, ``getprop``, ``/sys/class/power_supply/*/uevent`` and ``adb devices [-l]``.
"""
from __future__ import annotations

import csv
import enum
import io
import re
from dataclasses import dataclass

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# Prefixes a line may carry: "INFO: ", logcat ("11-20 10:00:00.123  1234  1234 I tflite  : ", "I tflite  : ").
_PREFIX = re.compile(r"^(?:\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+)?(?:[VDIWEF] [\w.-]+\s*: )?(?:INFO: |WARNING: |ERROR: )?")


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1)


@dataclass(frozen=True)
class OpProfileRow:
    node_type: str
    avg_ms: float
    percent: float
    cdf_percent: float
    times_called: int
    name: str
    first_ms: float | None = None
    start_ms: float | None = None


@dataclass(frozen=True)
class OpTypeSummary:
    node_type: str
    count: int
    avg_ms: float
    percent: float
    times_called: int


@dataclass(frozen=True)
class DelegateStatus:
    """What the output says about one delegate. ``applied``: it runs at least one node of the graph.

    ``coverage``: "full" (the whole graph runs in the delegate), "partial", "none" (created or applied but it
    runs nothing: the graph runs on the CPU), "failed" (it could not be applied) or "unknown".
    """

    name: str  # "gpu" | "nnapi" | "xnnpack" | "hexagon" | ... (lower case)
    applied: bool
    message: str
    coverage: str = "unknown"


@dataclass(frozen=True)
class BenchmarkResult:
    """Numbers from one benchmark_model run. Times in microseconds, memory in MB; None when absent."""

    init_us: float | None = None
    first_inference_us: float | None = None
    warmup_avg_us: float | None = None
    inference_avg_us: float | None = None
    inference_std_us: float | None = None
    inference_count: int | None = None
    inference_min_us: float | None = None
    inference_max_us: float | None = None
    percentiles: tuple[tuple[str, float], ...] = ()
    peak_memory_mb: float | None = None  # the whole process's peak ("via periodic monitoring")
    memory_delta_mb: float | None = None  # growth of the peak since the tool started (the model's increment)
    model_size_mb: float | None = None
    num_threads: int | None = None
    op_profile: tuple[OpProfileRow, ...] = ()
    op_summary: tuple[OpTypeSummary, ...] = ()
    delegates: tuple[DelegateStatus, ...] = ()
    failed: bool = False
    failure_reason: str | None = None
    raw_lines_parsed: int = 0

    def percentile(self, name: str) -> float | None:
        """A percentile exactly as benchmark_model printed it (``median``, ``p5``, ``p95``...); None when it
        printed none. Never derived from other statistics."""
        return dict(self.percentiles).get(name)

    def delegate_ran(self, name: str) -> bool | None:
        """True when the output shows delegate ``name`` running part or all of the graph, False when it shows it
        failed or running nothing, None when the output says nothing about it."""
        seen = [d for d in self.delegates if d.name == name]
        if not seen:
            return None
        # The last word wins: "Created ... delegate" comes before "Though ... will not be executed".
        decisive = [d for d in seen if d.coverage != "unknown"] or seen
        return decisive[-1].applied


_STATS = re.compile(rf"^count=(\d+)(?: first=({_NUM}))? curr=({_NUM})(?: min=({_NUM}) max=({_NUM}) avg=({_NUM}) "
                    rf"std=({_NUM}))?(.*)$")
_NEW_SUMMARY = re.compile(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
                          rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})")
_OLD_SUMMARY = re.compile(rf"Average inference timings in us: Warmup: ({_NUM}), Init: ({_NUM}), "
                          rf"(?:no stats|Inference): ({_NUM})")
# Memory lines. "Overall peak memory footprint (MB) via periodic monitoring: X" is the whole process's peak
# (--report_peak_memory_footprint). "Memory footprint delta from the start of the tool (MB): init=.. overall=.."
# is the growth of the process's peak RSS since the tool started, i.e. the model's increment; older versions
# printed that same delta as "Peak memory footprint (MB): init=.. overall=.." (benchmark_model.cc), so it is
# read as the delta, not as a process peak.
_PEAK = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({_NUM})")
_DELTA = re.compile(rf"(?:Memory footprint delta from the start of the tool|^Peak memory footprint) \(MB\): "
                    rf"init=({_NUM}) overall=({_NUM})")
_FAILURES = (
    (re.compile(r"not executable: (?:32|64)-bit ELF file|Exec format error|cannot execute binary file|"
                r"syntax error: unexpected"), "benchmark_model binary is built for another ABI"),
    (re.compile(r"Failed to allocate tensors"), "failed to allocate tensors"),
    (re.compile(r"Failed to invoke"), "failed to invoke the interpreter"),
    (re.compile(r"Failed to mmap model|Could not build model|Failed to load model|Not a valid"), "could not load the model"),
    (re.compile(r"(?:inaccessible or not found|No such file or directory)"), "file not found"),
    (re.compile(r"Benchmarking failed"), "benchmarking failed"),
)


_DELEGATE_NAMES = (("xnnpack", "xnnpack"), ("gpu", "gpu"), ("nnapi", "nnapi"), ("hexagon", "hexagon"),
                   ("coreml", "coreml"), ("external", "external"))


def _delegate_name(text: str) -> str:
    lowered = text.lower()
    for key, name in _DELEGATE_NAMES:
        if key in lowered:
            return name
    return lowered.strip("() ") or "unknown"


def _delegate_status(s: str) -> DelegateStatus | None:
    """One benchmark_model line about a delegate -> its status (messages of
    tensorflow/lite/tools/benchmark/benchmark_tflite_model.cc and the TFLite delegates), else None."""
    m = re.search(r"Explicitly applied (\S+) delegate, and the model graph will be (completely|partially) executed", s)
    if m:
        return DelegateStatus(_delegate_name(m[1]), True, s, "full" if m[2] == "completely" else "partial")
    m = re.search(r"Though (\S+) delegate is explicitly applied, the model graph will not be executed", s)
    if m:
        return DelegateStatus(_delegate_name(m[1]), False, s, "none")
    m = re.search(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]*)\)", s)
    if m:
        done, total = int(m[1]), int(m[2])
        coverage = "none" if done == 0 else ("full" if done == total else "partial")
        return DelegateStatus(_delegate_name(m[3]), done > 0, s, coverage)
    m = re.search(r"Failed to (?:apply|create) (?:the )?(\S+) delegate|(\S+) delegate .*failed", s, re.I)
    if m:
        return DelegateStatus(_delegate_name(m[1] or m[2]), False, s, "failed")
    m = re.search(r"(\S+) acceleration is unsupported on this platform", s)
    if m:
        return DelegateStatus(_delegate_name(m[1]), False, s, "failed")
    m = re.search(r"Created TensorFlow Lite (\S+) delegate", s) or \
        re.search(r"Created TensorFlow Lite delegate for (\w+)", s) or re.search(r"Applied (\S+) delegate", s)
    if m:
        # "Created" says the delegate exists, not how much of the graph it runs: coverage stays unknown.
        return DelegateStatus(_delegate_name(m[1]), True, s, "unknown")
    return None


def _op_row(cells: list[str]) -> OpProfileRow | None:
    # [node type] [start] [first] [avg ms] [%] [cdf%] [mem KB] [times called] [Name]
    if len(cells) < 9:
        return None
    try:
        return OpProfileRow(node_type=cells[0], start_ms=float(cells[1]), first_ms=float(cells[2]),
                            avg_ms=float(cells[3]), percent=float(cells[4].rstrip("%")),
                            cdf_percent=float(cells[5].rstrip("%")), times_called=int(float(cells[7])),
                            name=cells[8])
    except ValueError:
        return None


def _parse_op_csv(lines: list[str]) -> list[OpProfileRow]:
    """``--op_profiling_output_mode=csv``: a header with 'node type', then comma-separated rows."""
    rows = []
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = None
    for cells in reader:
        cells = [c.strip() for c in cells]
        if not cells:
            continue
        lowered = [c.lower().strip("[]") for c in cells]
        if "node type" in lowered and "avg ms" in lowered:
            header = lowered
            continue
        if header and len(cells) == len(header):
            d = dict(zip(header, cells))
            try:
                rows.append(OpProfileRow(node_type=d["node type"], avg_ms=float(d["avg ms"]),
                                         percent=float(d.get("%", "0").rstrip("%") or 0),
                                         cdf_percent=float(d.get("cdf%", "0").rstrip("%") or 0),
                                         times_called=int(float(d.get("times called", "1") or 1)),
                                         name=d.get("name", ""), first_ms=float(d.get("first", "nan"))))
            except (KeyError, ValueError):
                header = None if not rows else header
    return rows


def parse_benchmark_output(text: str) -> BenchmarkResult:
    """Parse benchmark_model (or benchmark app logcat) output. Unknown lines are ignored.

    >>> parse_benchmark_output("Inference timings in us: Init: 10, First inference: 20, "
    ...                        "Warmup (avg): 15, Inference (avg): 12.5").inference_avg_us
    12.5
    """
    values: dict = {}
    stats: list[re.Match] = []
    delegates: list[DelegateStatus] = []
    ops_run: list[OpProfileRow] = []
    summary: list[OpTypeSummary] = []
    section = None
    in_regular = False
    failure = None
    parsed = 0
    lines = [_strip(l) for l in text.splitlines()]
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if "Operator-wise Profiling Info for Regular Benchmark Runs" in s:
            in_regular, section = True, None
            parsed += 1
            continue
        if "Profiling Info for Benchmark Initialization" in s:
            in_regular, section = False, None
            continue
        if s.startswith("=====") and "=====" in s[5:]:
            title = s.strip("= ").lower()
            section = {"run order": "run", "top by computation time": "top",
                       "summary by node type": "summary"}.get(title, title)
            continue
        if section and line.startswith("\t"):
            cells = [c.strip() for c in line.split("\t") if c.strip()]
            if cells and cells[0].startswith("["):
                continue  # column header
            if in_regular and section == "run":
                row = _op_row(cells)
                if row:
                    ops_run.append(row)
                    parsed += 1
            elif in_regular and section == "summary" and len(cells) >= 7:
                try:
                    summary.append(OpTypeSummary(cells[0], int(cells[1]), float(cells[2]),
                                                 float(cells[3].rstrip("%")), int(float(cells[6]))))
                    parsed += 1
                except ValueError:
                    pass
            continue
        if section and not line.startswith("\t"):
            section = None
        m = _NEW_SUMMARY.search(s)
        if m:
            values.update(init_us=float(m[1]), first_inference_us=float(m[2]), warmup_avg_us=float(m[3]),
                          inference_avg_us=float(m[4]))
            parsed += 1
            continue
        m = _OLD_SUMMARY.search(s)
        if m:
            values.update(warmup_avg_us=float(m[1]), init_us=float(m[2]), inference_avg_us=float(m[3]))
            parsed += 1
            continue
        m = _STATS.match(s)
        if m and not s.startswith("Timings"):
            stats.append(m)
            parsed += 1
            continue
        m = _DELTA.search(s)
        if m:
            values["memory_delta_mb"] = float(m[2])
            parsed += 1
            continue
        m = _PEAK.search(s)
        if m:
            values["peak_memory_mb"] = float(m[1])
            parsed += 1
            continue
        m = re.search(rf"The input model file size \(MB\): ({_NUM})", s)
        if m:
            values["model_size_mb"] = float(m[1])
            continue
        m = re.search(r"(?:#threads used for CPU inference|Num threads): \[(\d+)\]", s)
        if m:
            values["num_threads"] = int(m[1])
            continue
        status = _delegate_status(s)
        if status is not None:
            delegates.append(status)
            if status.coverage == "failed" and failure is None:
                failure = f"delegate failed to apply: {s[:200]}"
            continue
        for pattern, reason in _FAILURES:
            if pattern.search(s) and failure is None:
                failure = f"{reason}: {s[:200]}"
                break
    if any("node type" in l.lower() and "," in l for l in lines) and not ops_run:
        ops_run = _parse_op_csv([l for l in lines if "," in l])
        parsed += len(ops_run)
    # The last full stats line belongs to the timed runs (the first is the warm-up).
    full = [m for m in stats if m[4] is not None]
    if full:
        last = full[-1]
        values.update(inference_count=int(last[1]), inference_min_us=float(last[4]),
                      inference_max_us=float(last[5]), inference_std_us=float(last[7]))
        values.setdefault("inference_avg_us", float(last[6]))
        values["percentiles"] = tuple((k, float(v)) for k, v in re.findall(rf"(p\d+|median)=({_NUM})", last[8] or ""))
        if len(full) >= 2:
            values.setdefault("warmup_avg_us", float(full[0][6]))
    elif stats:
        values.setdefault("warmup_avg_us", float(stats[0][3]))
    failed = failure is not None and "delegate" not in failure
    if values.get("inference_avg_us") is None:
        failed = True
        failure = failure or "no inference timings in the output"
    return BenchmarkResult(**values, op_profile=tuple(ops_run), op_summary=tuple(summary),
                           delegates=tuple(delegates), failed=failed,
                           failure_reason=failure if (failed or failure) else None, raw_lines_parsed=parsed)


# ---- dumpsys battery ----------------------------------------------------------------------------
class BatteryStatus(str, enum.Enum):
    UNKNOWN = "unknown"
    CHARGING = "charging"
    DISCHARGING = "discharging"
    NOT_CHARGING = "not_charging"
    FULL = "full"


_STATUS = {1: BatteryStatus.UNKNOWN, 2: BatteryStatus.CHARGING, 3: BatteryStatus.DISCHARGING,
           4: BatteryStatus.NOT_CHARGING, 5: BatteryStatus.FULL}
_HEALTH = {1: "unknown", 2: "good", 3: "overheat", 4: "dead", 5: "over_voltage", 6: "unspecified_failure", 7: "cold"}


@dataclass(frozen=True)
class BatteryInfo:
    level: int | None
    scale: int | None
    status: BatteryStatus
    health: str
    plugged: str  # "ac" | "usb" | "wireless" | "dock" | "none"
    present: bool
    voltage_mv: int | None
    temperature_c: float | None
    technology: str
    charge_counter_uah: int | None
    max_charging_current_ua: int | None
    updates_stopped: bool

    @property
    def charging(self) -> bool:
        return self.plugged != "none" or self.status == BatteryStatus.CHARGING


def _kv(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, _, value = line.strip().partition(":")
            out[key.strip().lower()] = value.strip()
    return out


def parse_dumpsys_battery(text: str) -> BatteryInfo:
    """``dumpsys battery`` -> BatteryInfo (temperature is reported in tenths of a degree C)."""
    kv = _kv(text)

    def num(key: str) -> int | None:
        try:
            return int(kv[key])
        except (KeyError, ValueError):
            return None

    plugged = "none"
    for source in ("ac", "usb", "wireless", "dock"):
        if kv.get(f"{source} powered", "false").lower() == "true":
            plugged = source
            break
    temp = num("temperature")
    return BatteryInfo(
        level=num("level"), scale=num("scale"), status=_STATUS.get(num("status") or 1, BatteryStatus.UNKNOWN),
        health=_HEALTH.get(num("health") or 1, "unknown"), plugged=plugged,
        present=kv.get("present", "true").lower() == "true", voltage_mv=num("voltage"),
        temperature_c=temp / 10.0 if temp is not None else None, technology=kv.get("technology", ""),
        charge_counter_uah=num("charge counter"), max_charging_current_ua=num("max charging current"),
        updates_stopped="UPDATES STOPPED" in text)


# ---- power_supply uevent -----------------------------------------------------------------------
@dataclass(frozen=True)
class PowerSupplyInfo:
    name: str
    status: str
    capacity: int | None
    current_now: int | None
    voltage_now: int | None
    temp: int | None
    charge_counter: int | None
    raw: tuple[tuple[str, str], ...]


def parse_power_supply_uevent(text: str) -> PowerSupplyInfo:
    """``/sys/class/power_supply/<x>/uevent`` (POWER_SUPPLY_KEY=value lines); values in the kernel's units."""
    raw = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("POWER_SUPPLY_"):
            raw[key[len("POWER_SUPPLY_"):].lower()] = value.strip()

    def num(key: str) -> int | None:
        try:
            return int(raw[key])
        except (KeyError, ValueError):
            return None

    return PowerSupplyInfo(raw.get("name", ""), raw.get("status", ""), num("capacity"), num("current_now"),
                           num("voltage_now"), num("temp"), num("charge_counter"), tuple(sorted(raw.items())))


# ---- dumpsys thermalservice ---------------------------------------------------------------------
THERMAL_STATUS = ("NONE", "LIGHT", "MODERATE", "SEVERE", "CRITICAL", "EMERGENCY", "SHUTDOWN")
_TEMP = re.compile(rf"Temperature\{{mValue=({_NUM}), mType=(-?\d+), mName=([^,]+), mStatus=(\d+)\}}")


@dataclass(frozen=True)
class Temperature:
    name: str
    type: int
    value_c: float
    status: int


@dataclass(frozen=True)
class ThermalInfo:
    status: int
    temperatures: tuple[Temperature, ...]

    @property
    def status_name(self) -> str:
        return THERMAL_STATUS[self.status] if 0 <= self.status < len(THERMAL_STATUS) else str(self.status)

    @property
    def throttling(self) -> bool:
        return self.status >= 2


def parse_thermalservice(text: str) -> ThermalInfo:
    """``dumpsys thermalservice`` -> status and the HAL's current temperatures (cached ones as fallback)."""
    m = re.search(r"Thermal Status:\s*(\d+)", text)
    status = int(m[1]) if m else 0
    current = text.split("Current temperatures from HAL:", 1)
    block = current[1].split("Current cooling devices", 1)[0] if len(current) == 2 else text
    temps = tuple(Temperature(n.strip(), int(t), float(v), int(s)) for v, t, n, s in _TEMP.findall(block))
    return ThermalInfo(status, temps)


# ---- getprop / adb devices ----------------------------------------------------------------------
def parse_getprop(text: str) -> dict[str, str]:
    """``getprop`` output (``[key]: [value]``, values may span lines) -> dict."""
    props: dict[str, str] = {}
    for m in re.finditer(r"^\[([^\]]+)\]: \[(.*?)\]\s*$", text, re.M | re.S):
        props[m[1]] = m[2]
    return props


@dataclass(frozen=True)
class AdbDeviceEntry:
    serial: str
    state: str
    properties: tuple[tuple[str, str], ...] = ()


def parse_adb_devices(text: str) -> tuple[AdbDeviceEntry, ...]:
    """``adb devices`` / ``adb devices -l`` -> entries (daemon start-up chatter is skipped)."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*", "adb server")):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        props = tuple(tuple(p.split(":", 1)) for p in parts[2:] if ":" in p)
        entries.append(AdbDeviceEntry(parts[0], parts[1], props))  # type: ignore[arg-type]
    return tuple(entries)


def parse_odpm_energy(text: str) -> dict[str, tuple[int, int]]:
    """Pixel ODPM ``energy_value``: ``CH<n>(T=<ms>)[<RAIL>], <uWs>`` -> {rail: (t_ms, energy_uws)}."""
    out = {}
    for m in re.finditer(r"CH\d+\(T=(\d+)\)\[([^\]]+)\],\s*(\d+)", text):
        out[m[2]] = (int(m[1]), int(m[3]))
    return out
