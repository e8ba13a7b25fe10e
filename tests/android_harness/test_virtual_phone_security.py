"""The virtual phone is safe to run on a shared machine: ADB AUTH like adbd with ro.adb.secure=1, a shell
without privilege or network, sync: confined to the device tree (issue 9, items 1-3)."""
import os
import socket
import sys
import time
import uuid

import pytest

from android_harness.adbkey import AdbPublicKey, decode_public_key, ensure_key_pair, read_adb_keys
from android_harness.connection import AdbShellConnection, connect
from android_harness.errors import DeviceCommandError, DeviceUnauthorizedError, HarnessError
from android_harness.virtual import VirtualPhone
from android_harness.virtual import protocol as P


def _raw_cnxn(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(P.Message(P.A_CNXN, P.A_VERSION, P.MAX_PAYLOAD, b"host::\x00").pack())
    return sock


def _read(sock: socket.socket) -> P.Message:
    def recv_exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data
    return P.read_message(recv_exact)


# -- 1. authentication ---------------------------------------------------------------------------------

def test_signature_format_is_adbds(tmp_path):
    """adb-shell's signer (as adb: PKCS#1 v1.5, SHA-1 DigestInfo around the raw token) verifies against the
    Android public key format; any other token, signature or key does not."""
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    key = ensure_key_pair(tmp_path / "k" / "adbkey")
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    public = decode_public_key((tmp_path / "k" / "adbkey.pub").read_text())
    assert public.exponent == 65537 and public.modulus.bit_length() == 2048 and "@" in public.comment
    token = os.urandom(20)
    signature = PythonRSASigner.FromRSAKeyPath(str(key)).Sign(token)
    assert public.verify(token, signature)
    assert not public.verify(os.urandom(20), signature)
    assert not public.verify(token, signature[:-1] + bytes([signature[-1] ^ 1]))
    other = decode_public_key((tmp_path / "o" / "adbkey.pub").read_text() if ensure_key_pair(tmp_path / "o" / "adbkey")
                              else "")
    assert not other.verify(token, signature)
    assert decode_public_key(AdbPublicKey(public.modulus, public.exponent).encode()) == AdbPublicKey(
        public.modulus, public.exponent)
    with pytest.raises(ValueError):
        decode_public_key("bm90IGEga2V5")


def test_device_answers_cnxn_with_a_fresh_token_and_refuses_an_offered_key(phone, tmp_path):
    sock = _raw_cnxn(phone.port)
    first = _read(sock)
    assert first.command == P.A_AUTH and first.arg0 == P.AUTH_TOKEN and len(first.data) == 20
    sock.sendall(P.Message(P.A_AUTH, P.AUTH_SIGNATURE, 0, os.urandom(256)).pack())
    second = _read(sock)  # a wrong signature: a new token, as adbd does
    assert second.arg0 == P.AUTH_TOKEN and second.data != first.data
    sock.sendall(P.Message(P.A_OPEN, 1, 0, b"shell:id\x00").pack())  # not online: ignored
    ensure_key_pair(tmp_path / "adbkey")
    pub = (tmp_path / "adbkey.pub").read_bytes()
    sock.sendall(P.Message(P.A_AUTH, P.AUTH_RSAPUBLICKEY, 0, pub + b"\x00").pack())
    with pytest.raises(ConnectionError):  # closed (EOF or reset), not merely silent (that would be a timeout)
        while True:
            assert _read(sock).command != P.A_CNXN
    sock.close()


def test_unknown_key_is_refused_listed_key_works(phone, tmp_path):
    stranger = ensure_key_pair(tmp_path / "stranger" / "adbkey")
    with pytest.raises(DeviceUnauthorizedError, match="did not accept the adb key"):
        connect(phone.serial, adb_key=stranger)
    conn = connect(phone.serial)  # the user's own key (what the phone trusts by default)
    assert conn.shell("getprop ro.adb.secure").stdout.strip() == "1"
    conn.close()
    # A phone given another adb_keys list trusts that list only.
    with VirtualPhone("pixel_6", adb_keys=tmp_path / "stranger" / "adbkey.pub") as other:
        assert connect(other.serial, adb_key=stranger).shell("echo ok").stdout.strip() == "ok"
        with pytest.raises(DeviceUnauthorizedError):
            connect(other.serial)


def test_insecure_accepts_any_key(tmp_path):
    stranger = ensure_key_pair(tmp_path / "stranger" / "adbkey")
    with VirtualPhone("pixel_6", insecure=True) as open_phone:
        conn = connect(open_phone.serial, adb_key=stranger)
        assert conn.shell("getprop ro.adb.secure").stdout.strip() == "0"
        conn.close()


def test_bad_adb_keys_file_is_one_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="No adb_keys file"):
        VirtualPhone("pixel_6", adb_keys=tmp_path / "missing")
    (tmp_path / "junk").write_text("not a key\n")
    with pytest.raises(HarnessError, match="holds no valid ADB public key"):
        VirtualPhone("pixel_6", adb_keys=tmp_path / "junk").start()


def test_debian_adb_with_the_users_key_works_a_fresh_key_is_refused(adb_server, adb_server_in, tmp_path):
    port, adb = adb_server
    with VirtualPhone("pixel_4a") as phone:
        assert "connected" in adb("connect", phone.serial).stdout
        out = adb("-s", phone.serial, "shell", "id -u")
        assert out.returncode == 0 and out.stdout.strip() == "2000"
        # Debian's adb in another home generates its own (unlisted) key: refused.
        _port2, adb2 = adb_server_in(tmp_path / "stranger-home")
        adb2("connect", phone.serial)
        refused = adb2("-s", phone.serial, "shell", "id")
        assert refused.returncode != 0 and "2000" not in refused.stdout
        adb2("kill-server")
        # The key adb generated is in adb's own format; listed, it is accepted (by adb and by the harness).
        adb_made = tmp_path / "stranger-home" / ".android" / "adbkey"
        assert read_adb_keys(adb_made.with_name("adbkey.pub"))
    with VirtualPhone("pixel_4a", adb_keys=adb_made.with_name("adbkey.pub")) as listed:
        _port3, adb3 = adb_server_in(tmp_path / "stranger-home")
        assert "connected" in adb3("connect", listed.serial).stdout
        assert adb3("-s", listed.serial, "shell", "echo ok").stdout.strip() == "ok"
        assert AdbShellConnection(listed.serial, adb_key=adb_made).shell("echo ok").stdout.strip() == "ok"


# -- 2. no privilege, no host, no network ------------------------------------------------------------------

def test_shell_is_uid_2000_without_capabilities_or_host_files(phone, tmp_path):
    conn = connect(phone.serial)
    assert conn.shell("id -u").stdout.strip() == "2000"
    assert conn.shell("id -g").stdout.strip() == "2000"
    caps = dict(line.split(":\t") for line in conn.shell("cat /proc/self/status").stdout.splitlines()
                if line.startswith("Cap"))
    assert caps["CapEff"].strip() == caps["CapPrm"].strip() == caps["CapBnd"].strip() == "0000000000000000"
    # The host's PID 1 is not visible: /proc/1 is the sandbox's own first process.
    assert conn.shell("ls /proc | grep -c '^[0-9]'").stdout.strip().isdigit()
    assert int(conn.shell("ls /proc | grep -c '^[0-9]'").stdout) < 20
    name = f"h1-escape-{uuid.uuid4().hex[:8]}"
    host_dir = tmp_path / "host-owned"
    host_dir.mkdir()
    (host_dir / "keep.txt").write_text("mine")
    for target in (f"/proc/1/root/tmp/{name}", f"/tmp/{name}", f"{host_dir}/{name}", f"/proc/1/root{host_dir}/{name}",
                   f"{host_dir}/keep.txt", f"/{name}", f"/usr/{name}", f"/system/{name}"):
        result = conn.shell(f"echo pwned > {target}")
        assert result.exit_code != 0, target
    assert not os.path.exists(f"/tmp/{name}") and not (host_dir / name).exists()
    assert (host_dir / "keep.txt").read_text() == "mine"
    assert not (phone.sandbox.parent / name).exists()
    assert conn.shell(f"cat {host_dir}/keep.txt").exit_code != 0  # host files cannot be read either
    conn.close()


def test_no_network_to_the_host(phone):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    conn = connect(phone.serial)
    probe = (f"{sys.executable} -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2); "
             f"print('CONNECTED')\"")
    result = conn.shell(probe, timeout_s=30)
    assert result.exit_code != 0 and "CONNECTED" not in result.stdout
    assert "refused" in result.stdout.lower() or "unreachable" in result.stdout.lower()
    with pytest.raises(socket.timeout):
        listener.accept()
    # The phone's own ADB port is out of reach too, and there is no interface but loopback.
    assert conn.shell(probe.replace(str(port), str(phone.port)), timeout_s=30).exit_code != 0
    assert conn.shell("ls /sys/class/net 2>/dev/null; cat /proc/net/dev").stdout.count(":") <= 2
    listener.close()
    conn.close()


def test_background_jobs_share_one_pid_namespace_and_die_with_the_phone(tmp_path):
    with VirtualPhone("pixel_6") as phone:
        conn = connect(phone.serial)
        pid = conn.shell("nohup sh -c 'sleep 300' > /dev/null 2>&1 & echo $!").stdout.strip()
        assert conn.shell(f"[ -d /proc/{pid} ]").exit_code == 0  # a later command sees it...
        assert conn.shell(f"kill {pid}; sleep 0.2; [ -d /proc/{pid} ]").exit_code != 0  # ...and can kill it
        conn.shell("nohup sh -c 'sleep 300' > /dev/null 2>&1 &")
        host_pids = phone.userspace.session_pids()
        assert host_pids
        conn.close()
    time.sleep(0.3)
    assert not [p for p in host_pids if _alive(p)]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for the host's init to reap it is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- 3. sync: confined to the device tree --------------------------------------------------------------------

def test_sync_cannot_leave_the_device_tree(phone, tmp_path):
    conn = connect(phone.serial)
    outside = phone.sandbox.parent  # where `<sandbox>/data/../../x` pointed on the host
    name = f"h1-sync-{uuid.uuid4().hex[:8]}"
    secret = outside / f"{name}-secret"
    secret.write_text("host secret")
    blob = tmp_path / "blob"
    blob.write_bytes(b"pushed")

    with pytest.raises(DeviceCommandError, match="couldn't create file: Read-only file system"):
        conn.push(blob, f"/data/../../{name}")
    with pytest.raises(DeviceCommandError, match="Read-only file system"):
        conn.push(blob, f"/data/../..{outside}/{name}")
    with pytest.raises(DeviceCommandError, match="open failed: No such file or directory"):
        conn.pull(f"/data/../../{secret.name}", tmp_path / "got")

    assert conn.shell("ln -s / /data/local/tmp/hostroot && ln -s ../../../../../../.. /data/local/tmp/up && "
                      f"ln -s {outside} /data/local/tmp/hostdir && ln -s {secret} /data/local/tmp/link").exit_code == 0
    for remote in (f"/data/local/tmp/hostroot{secret}", f"/data/local/tmp/up{secret}",
                   f"/data/local/tmp/hostdir/{secret.name}", "/data/local/tmp/link", "/data/local/tmp/hostroot/etc/passwd"):
        with pytest.raises(DeviceCommandError, match="open failed: No such file or directory"):
            conn.pull(remote, tmp_path / "got")
        assert not (tmp_path / "got").exists() or b"secret" not in (tmp_path / "got").read_bytes()
    for remote in (f"/data/local/tmp/hostroot{outside}/{name}", f"/data/local/tmp/hostdir/{name}"):
        with pytest.raises(DeviceCommandError):
            conn.push(blob, remote)
    # Pushing onto a symlink replaces the link (as adbd does), never writes through it.
    conn.push(blob, "/data/local/tmp/link")
    assert secret.read_text() == "host secret"
    assert phone.sandbox_path("/data/local/tmp/link").read_bytes() == b"pushed"
    # STAT and LIST through the links see the device's tree, not the host's.
    assert conn._device.stat(f"/data/local/tmp/hostroot{secret}") == (0, 0, 0)
    listed = {bytes(entry.filename) for entry in conn._device.list("/data/local/tmp/hostroot/")}
    assert {b"data", b"system"} <= listed and b"etc" not in listed and b"home" not in listed
    assert list(outside.glob(f"{name}*")) == [secret]
    # Inside the tree everything still works, through device-side links too.
    conn.push(blob, "/data/local/tmp/new/dir/file.bin")
    conn.pull("/data/local/tmp/hostroot/data/local/tmp/new/dir/file.bin", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == b"pushed"
    conn.close()
    secret.unlink()


def test_phone_state_writes_do_not_follow_device_symlinks(phone, tmp_path):
    """The phone process writes /data/system/*.json (battery, storage) on the host; a device user who swaps
    that folder for a symlink to a host folder must not get files written there."""
    target = tmp_path / "host-folder"
    target.mkdir()
    conn = connect(phone.serial)
    assert conn.shell(f"rm -rf /data/system && ln -s {target} /data/system").exit_code == 0
    time.sleep(0.5)  # the power model rewrites storage.json 20 times a second
    phone.set_charging("usb")
    assert list(target.iterdir()) == []
    conn.close()
