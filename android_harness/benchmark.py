"""The official TFLite/LiteRT ``benchmark_model`` binary: options -> command line, finding the binary,
checking its ABI, and fetching the official prebuilt."""
from __future__ import annotations

import json
import os
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from android_harness.connection import quote
from android_harness.errors import BenchmarkError

DEVICE_BINARY = "/data/local/tmp/benchmark_model"  # where the TFLite docs tell users to push it
ELF_MACHINES = {183: "arm64-v8a", 40: "armeabi-v7a", 62: "x86_64", 3: "x86"}
# Official nightly prebuilts of the TFLite benchmark tool (TensorFlow's "Performance measurement" page).
PREBUILT_URLS = {
    "arm64-v8a": "https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
                 "nightly/latest/android_aarch64_benchmark_model",
    "armeabi-v7a": "https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
                   "nightly/latest/android_arm_benchmark_model",
    "x86_64": "https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
              "nightly/latest/android_x86_64_benchmark_model",
    "x86": "https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
           "nightly/latest/android_x86_benchmark_model",
}


@dataclass(frozen=True)
class BenchmarkOptions:
    num_threads: int = 1
    warmup_runs: int = 5
    num_runs: int = 50
    min_secs: float = 1.0
    max_secs: float = 150.0
    use_xnnpack: bool = True
    use_gpu: bool = False
    use_nnapi: bool = False
    enable_op_profiling: bool = False
    report_peak_memory: bool = True
    cpu_affinity: tuple[int, ...] = ()  # CPUs to pin to with taskset (empty: no pinning)

    def __post_init__(self) -> None:
        if self.num_threads < 1:
            raise BenchmarkError(f"num_threads must be >= 1. Received: num_threads={self.num_threads}")
        if self.num_runs < 1 or self.warmup_runs < 0:
            raise BenchmarkError(f"num_runs must be >= 1 and warmup_runs >= 0. Received: {self.num_runs}, "
                                 f"{self.warmup_runs}")


def command_line(binary: str, model: str, options: BenchmarkOptions) -> str:
    """The shell command that runs one benchmark, every argument quoted."""
    flags = [f"--graph={model}", f"--num_threads={options.num_threads}", f"--warmup_runs={options.warmup_runs}",
             f"--num_runs={options.num_runs}", f"--min_secs={options.min_secs:g}", f"--max_secs={options.max_secs:g}",
             f"--use_xnnpack={str(options.use_xnnpack).lower()}"]
    if options.use_gpu:
        flags.append("--use_gpu=true")
    if options.use_nnapi:
        flags.append("--use_nnapi=true")
    if options.enable_op_profiling:
        flags.append("--enable_op_profiling=true")
    if options.report_peak_memory:
        flags.append("--report_peak_memory_footprint=true")
    parts = [quote(binary)] + [quote(f) for f in flags]
    if options.cpu_affinity:
        mask = sum(1 << c for c in options.cpu_affinity)
        parts = ["taskset", f"{mask:x}"] + parts
    return " ".join(parts)


def elf_abi(path: str | Path) -> str:
    """The Android ABI an ELF binary is built for, from its header (e_machine)."""
    with open(path, "rb") as fh:
        header = fh.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise BenchmarkError(f"{path} is not an ELF executable; pass the benchmark_model binary for your phone")
    endian = "<" if header[5] == 1 else ">"
    (machine,) = struct.unpack(endian + "H", header[18:20])
    abi = ELF_MACHINES.get(machine)
    if abi is None:
        raise BenchmarkError(f"{path} is an ELF for machine {machine}, which no Android ABI uses")
    if abi == "armeabi-v7a" and header[4] != 1:
        raise BenchmarkError(f"{path}: unexpected 64-bit ARM32 ELF")
    return abi


def cache_dir(abi: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME", "~"), ".cache")
    return Path(base).expanduser() / "ferminet" / "benchmark_model" / abi


def _config_binary() -> str | None:
    path = Path(os.environ.get("HOME", "~")).expanduser() / ".config" / "ferminet" / "config.json"
    try:
        return json.loads(path.read_text()).get("benchmark_binary")
    except (OSError, json.JSONDecodeError):
        return None


def resolve_binary(device, abi: str, explicit: str | None = None) -> tuple[str | None, str]:
    """(host path or None, device path): the host binary to push, or one already on the device."""
    looked = []
    for label, candidate in (("--benchmark-binary", explicit), ("$FERMINET_BENCHMARK_BINARY",
                                                                  os.environ.get("FERMINET_BENCHMARK_BINARY")),
                             ("~/.config/ferminet/config.json", _config_binary()),
                             ("cache", str(cache_dir(abi) / "benchmark_model"))):
        if not candidate:
            continue
        looked.append(f"{label} ({candidate})")
        if Path(candidate).is_file():
            found = elf_abi(candidate)
            if found != abi:
                raise BenchmarkError(f"The benchmark binary {candidate} is built for {found} but {device.serial} runs "
                                     f"{abi}. Use the {abi} build: `ferminet fetch-benchmark --abi {abi}`")
            return candidate, ""
        if label == "--benchmark-binary":
            raise BenchmarkError(f"No benchmark binary at {candidate!r}; check the path")
    probe = device.shell(f"[ -x {DEVICE_BINARY} ] && echo present").stdout
    looked.append(f"the device ({DEVICE_BINARY})")
    if "present" in probe:
        return None, DEVICE_BINARY
    raise BenchmarkError(f"benchmark_model for {abi} not found; looked in: {'; '.join(looked)}. Run "
                         f"`ferminet fetch-benchmark --abi {abi}` (online), pass --benchmark-binary PATH, or push "
                         f"it to {DEVICE_BINARY}")


def fetch_prebuilt(abi: str, out_dir: str | Path | None = None, url: str | None = None, timeout_s: float = 60.0) -> Path:
    """Download the official prebuilt benchmark_model for ``abi`` into the cache (or ``out_dir``)."""
    if abi not in PREBUILT_URLS:
        raise BenchmarkError(f"Unknown ABI {abi!r}. Use one of {', '.join(PREBUILT_URLS)}")
    url = url or PREBUILT_URLS[abi]
    target_dir = Path(out_dir) if out_dir else cache_dir(abi)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "benchmark_model"
    tmp = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(tmp, "wb") as fh:
            while chunk := response.read(1 << 20):
                fh.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise BenchmarkError(f"Could not download {url} ({getattr(exc, 'reason', exc)}). Offline? Download it on a "
                             f"machine with internet and pass --benchmark-binary PATH") from exc
    found = elf_abi(tmp)
    if found != abi:
        tmp.unlink(missing_ok=True)
        raise BenchmarkError(f"The download from {url} is a {found} binary, not {abi}")
    tmp.chmod(0o755)
    tmp.replace(target)
    return target
