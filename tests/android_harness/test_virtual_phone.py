"""The virtual phone speaks real ADB: adb-shell and Debian's adb client both work against it."""
import os

import pytest

from android_harness.connection import AdbShellConnection, quote
from android_harness.virtual import VirtualPhone
from android_harness.virtual import protocol as P


def test_protocol_frames_byte_for_byte():
    msg = P.Message(P.A_OPEN, 7, 0, b"shell:ls\x00")
    raw = msg.pack()
    assert raw[:4] == b"OPEN" and len(raw) == 24 + 9
    assert P.unpack_header(raw[:24]) == (P.A_OPEN, 7, 0, 9, sum(b"shell:ls\x00"))
    chunks = [raw]
    assert P.read_message(lambda n: (chunks.append(chunks[0][n:]), chunks.pop(0)[:n])[1]) == msg
    with pytest.raises(P.ProtocolError, match="bad magic"):
        P.unpack_header(raw[:20] + b"\x00\x00\x00\x00")
    assert P.shell_packet(P.SHELL_EXIT, b"\x03") == b"\x03\x01\x00\x00\x00\x03"


def test_shell_props_sandbox_and_exit_codes(phone):
    conn = AdbShellConnection(phone.serial)
    assert conn.shell("getprop ro.product.model").stdout.strip() == "Pixel 6"
    assert conn.shell("getprop ro.product.name").stdout.strip() == "pixel_6_virtual"
    assert conn.shell("exit 3").exit_code == 3
    denied = conn.shell("cat /etc/passwd")
    assert denied.exit_code != 0 and "No such file" in denied.stdout
    assert "processor\t: 7" in conn.shell("cat /proc/cpuinfo").stdout
    assert conn.shell("cat /sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq").stdout.strip() == "2630000"
    conn.close()


def test_push_pull_round_trip_with_hostile_names(phone, tmp_path):
    conn = AdbShellConnection(phone.serial)
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3_000_000))
    for name in ("a; rm -rf x.tflite", "$(id).tflite"):
        remote = f"/data/local/tmp/{name}"
        conn.push(blob, remote)
        back = tmp_path / "back.bin"
        conn.pull(remote, back)
        assert back.read_bytes() == blob.read_bytes()
        assert conn.shell(f"ls -l {quote(remote)}").exit_code == 0
    assert phone.sandbox_path("/data/local/tmp/a; rm -rf x.tflite").is_file()
    assert conn.shell("ls /data/local/tmp").stdout.count("tflite") >= 2  # nothing was deleted or expanded
    conn.close()


def test_gauge_follows_cpu_load(phone):
    conn = AdbShellConnection(phone.serial)
    idle = abs(int(conn.shell("cat /sys/class/power_supply/battery/current_now").stdout))
    conn.shell("timeout 2 sh -c 'while :; do :; done' & sleep 1; "
               "cat /sys/class/power_supply/battery/current_now > /data/local/tmp/busy; wait", timeout_s=60)
    busy = abs(int(conn.shell("cat /data/local/tmp/busy").stdout))
    assert busy > 5 * idle  # a busy core on the X1 cluster draws watts; idle is tens of mW
    conn.close()


def test_benchmark_model_runs_the_pushed_model(phone, tiny_tflite):
    from android_harness.parsers import parse_benchmark_output

    conn = AdbShellConnection(phone.serial)
    conn.push(tiny_tflite, "/data/local/tmp/m.tflite")
    out = conn.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/m.tflite --num_runs=20 --min_secs=0.2",
                     timeout_s=60)
    result = parse_benchmark_output(out.stdout)
    assert out.exit_code == 0 and not result.failed and result.inference_count >= 20
    missing = conn.shell("/data/local/tmp/benchmark_model --graph=/data/local/tmp/none.tflite")
    assert missing.exit_code == 1 and parse_benchmark_output(missing.stdout).failed
    conn.close()


def test_debian_adb_is_a_real_peer(adb_server, tmp_path):
    port, adb = adb_server
    with VirtualPhone("pixel_4a") as phone:
        assert "connected" in adb("connect", phone.serial).stdout
        model = adb("-s", phone.serial, "shell", "getprop", "ro.product.model")
        assert model.returncode == 0 and model.stdout.strip() == "Pixel 4a"
        assert adb("-s", phone.serial, "shell", "exit 3").returncode == 3
        blob = tmp_path / "blob.bin"
        blob.write_bytes(os.urandom(1_500_000))
        assert adb("-s", phone.serial, "push", str(blob), "/data/local/tmp/blob.bin").returncode == 0
        assert adb("-s", phone.serial, "pull", "/data/local/tmp/blob.bin", str(tmp_path / "back.bin")).returncode == 0
        assert (tmp_path / "back.bin").read_bytes() == blob.read_bytes()
        assert phone.serial in adb("devices").stdout
