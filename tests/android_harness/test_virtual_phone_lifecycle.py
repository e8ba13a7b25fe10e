"""`ferminet virtual-phone` starts and stops cleanly (issue 9, item 4), and nothing the harness starts keeps
running on a phone after `ferminet profile` is killed (item 9)."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from android_harness.benchmark import BenchmarkOptions
from android_harness.connection import connect
from android_harness.device import AndroidDevice
from android_harness.profile import profile_on_device
from android_harness.services import RUN_DIR, PowerSampler, reap_leftovers
from android_harness.virtual import VirtualPhone

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(exist_ok=True)
    # TMPDIR: the phone's temporary sandbox goes where the test can see whether it is left behind.
    return dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(REPO))


def _ferminet(*args: str, env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "toolkit.cli.main", *args], env=env, cwd=env["TMPDIR"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _sandboxes(env: dict) -> list[Path]:
    return sorted(Path(env["TMPDIR"]).glob("ferminet-vphone-*"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_phone_and_removes_its_sandbox(tmp_path, sig):
    env = _env(tmp_path)
    proc = _ferminet("virtual-phone", "--port", "0", env=env)
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line and "keys in" in line, line + proc.stderr.read()
        serial = line.split("listening on ")[1].split()[0]
        conn = connect(serial)
        # A duration no other process on this machine sleeps (a developer's own `sleep 300` matched before), so
        # the processes found by it are the phone's.
        sleep = f"sleep 300.{os.getpid()}{int(sig)}"
        pid = conn.shell(f"nohup sh -c '{sleep}' > /dev/null 2>&1 & echo $!").stdout.strip()
        assert pid.isdigit()
        conn.close()
        (sandbox,) = _sandboxes(env)
        assert (sandbox / "data/local/tmp").is_dir()
        phone_pids = _pids_with_cmdline(sleep)
        assert phone_pids
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in out
    assert _sandboxes(env) == []
    assert not [p for p in phone_pids if _alive(p)]


def _pids_with_cmdline(text: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if text in fh.read().replace(b"\0", b" ").decode(errors="replace"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _one_line_error(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_start_errors_are_one_line_and_leave_nothing(tmp_path):
    env = _env(tmp_path)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        err = _one_line_error(_ferminet("virtual-phone", "--port", str(port), env=env))
        assert f"Port {port} on 127.0.0.1 is already in use" in err and "--port 0" in err
    finally:
        busy.close()
    assert "No device profile 'nope'" in _one_line_error(_ferminet("virtual-phone", "--profile", "nope", env=env))
    assert "loopback only" in _one_line_error(_ferminet("virtual-phone", "--host", "0.0.0.0", env=env))
    assert "not a phone" in _one_line_error(_ferminet("virtual-phone", "--profile", "host", env=env))
    assert "No adb_keys file" in _one_line_error(_ferminet("virtual-phone", "--adb-keys", "/nonexistent", env=env))
    assert _sandboxes(env) == []


def test_insecure_prints_a_warning(tmp_path):
    env = _env(tmp_path)
    proc = _ferminet("virtual-phone", "--port", "0", "--insecure", env=env)
    try:
        line = proc.stdout.readline()
        assert "any key" in line
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "WARNING: --insecure" in err and _sandboxes(env) == []


def test_power_thread_stops_and_a_killed_phones_sandbox_is_reclaimed(tmp_path, monkeypatch):
    with VirtualPhone("pixel_6") as phone:
        power = phone.power
        sandbox = phone.sandbox
        assert power.is_alive()
    assert not power.is_alive()
    power.join()  # the thread's own _stop is no longer shadowed: join works
    assert not sandbox.exists()
    # A phone killed with SIGKILL cannot clean up; the next phone removes its sandbox (unlocked, stale).
    env = _env(tmp_path)
    proc = _ferminet("virtual-phone", "--port", "0", env=env)
    assert "listening" in proc.stdout.readline()
    (stale,) = _sandboxes(env)
    proc.kill()
    proc.wait()
    assert stale.exists()
    old = time.time() - 3600
    os.utime(stale, (old, old))
    monkeypatch.setenv("TMPDIR", env["TMPDIR"])
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    with VirtualPhone("pixel_6") as fresh:
        assert fresh.sandbox.parent == Path(env["TMPDIR"]) and not stale.exists()


# -- 9. nothing keeps running on a phone ----------------------------------------------------------------

def _device_pids(device, text: str) -> list[str]:
    """Pids of processes on the device whose command line contains ``text`` (read from the device's /proc)."""
    half = len(text) // 2  # split, so that this command's own command line does not match
    out = device.shell(f"a='{text[:half]}'; b='{text[half:]}'; for p in /proc/[0-9]*; do "
                       f"tr '\\0' ' ' 2>/dev/null < $p/cmdline | grep -qF -- \"$a$b\" && echo ${{p#/proc/}}; done; "
                       f"true").stdout
    return [pid for pid in out.split() if pid.isdigit()]


def test_sampler_stops_in_finally_and_leftovers_are_reaped(phone):
    device = AndroidDevice(connect(phone.serial))
    with PowerSampler(device) as sampler:
        assert _device_pids(device, sampler.tag)
        assert device.shell(f"cat {RUN_DIR}/{sampler.name}.pid").stdout.split() == [str(sampler.pid), sampler.tag]
    assert not _device_pids(device, sampler.tag)
    assert device.shell(f"ls {RUN_DIR}").stdout.split() == []
    # A host that died without stop(): the pid file is there, reap_leftovers kills exactly that process.
    left = PowerSampler(device).start()
    decoy = device.shell("nohup sh -c 'sleep 300' decoy > /dev/null 2>&1 & echo $!").stdout.strip()
    device.shell(f"echo '{decoy} ferminet-sampler-gone' > {RUN_DIR}/reused.pid")  # a pid reused by another process
    assert reap_leftovers(device) == (f"{left.pid} {left.tag}",)
    assert not _device_pids(device, left.tag) and _device_pids(device, "decoy")
    assert device.shell(f"ls {RUN_DIR}").stdout.split() == []


def test_killed_profile_leaves_nothing_running(phone, tiny_tflite, tmp_path):
    env = _env(tmp_path)
    db = tmp_path / "r.db"
    proc = _ferminet("profile", str(tiny_tflite), "--device", phone.serial, "--min-secs", "60", "--db", str(db),
                     env=env)
    device = AndroidDevice(connect(phone.serial))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the benchmark runs under the sampler
            if _device_pids(device, "ferminet-sampler-") and _device_pids(device, "benchmark_tool"):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.5)
        else:
            pytest.fail("the profile never reached the benchmark")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
        assert _device_pids(device, "ferminet-sampler-")  # what a killed host leaves behind...
        assert device.shell(f"ls {RUN_DIR}").stdout.split()  # ...with its pid files
    finally:
        if proc.poll() is None:
            proc.kill()
    # The next profiling run starts by stopping them.
    run = profile_on_device(AndroidDevice(connect(phone.serial)), tiny_tflite, BenchmarkOptions(min_secs=0.2),
                            measure_energy=False)
    assert run.benchmark.inference_count > 0
    assert not _device_pids(device, "ferminet-sampler-") and not _device_pids(device, "benchmark_tool")
    assert device.shell(f"ls {RUN_DIR}").stdout.split() == []


def test_ferminet_clean_stops_leftovers_and_removes_what_we_pushed(phone, tiny_tflite, tmp_path):
    device = AndroidDevice(connect(phone.serial))
    profile_on_device(device, tiny_tflite, BenchmarkOptions(num_runs=3, warmup_runs=1), measure_energy=False)
    left = PowerSampler(device).start()  # as if the profiler had been killed: a sampler loop still running
    assert _device_pids(device, left.tag)
    assert device.shell(f"ls {RUN_DIR}").stdout.strip()
    cleaned = _ferminet("clean", "--device", phone.serial, env=_env(tmp_path))
    out, err = cleaned.communicate(timeout=120)
    assert cleaned.returncode == 0, err
    assert device.shell("ls /data/local/tmp/ferminet 2>/dev/null").stdout.strip() == ""
    assert not _device_pids(device, left.tag) and reap_leftovers(device) == ()  # the sampler was stopped
