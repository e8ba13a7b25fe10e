import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from android_harness.virtual import VirtualPhone


@pytest.fixture(scope="session", autouse=True)
def user_home(tmp_path_factory):
    """A private "home" whose .android holds the adb key: the tests never touch the machine's ~/.android.

    Both the harness and the virtual phone find the key through $ANDROID_USER_HOME; Debian's adb (29) looks
    in $HOME/.android, so the adb fixtures run it with HOME set to this folder."""
    home = tmp_path_factory.mktemp("user-home")
    old = os.environ.get("ANDROID_USER_HOME")
    os.environ["ANDROID_USER_HOME"] = str(home / ".android")
    try:
        yield home
    finally:
        if old is None:
            os.environ.pop("ANDROID_USER_HOME", None)
        else:
            os.environ["ANDROID_USER_HOME"] = old


@pytest.fixture
def phone():
    with VirtualPhone("pixel_6") as p:
        yield p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_adb_server(home: Path):
    """Debian's real adb server on a private port, with ``home/.android`` as its key folder (the test FAILS,
    not skips, without `adb`). Returns (port, run, stop)."""
    adb = shutil.which("adb")
    assert adb, "Debian's adb is required for this test: apt-get install adb"
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), ANDROID_USER_HOME=str(home / ".android"))
    env.pop("ANDROID_SDK_HOME", None)
    env.pop("ADB_VENDOR_KEYS", None)

    def run(*args, timeout=60):
        return subprocess.run([adb, "-P", str(port), *args], capture_output=True, text=True, env=env, timeout=timeout)

    started = run("start-server")
    assert started.returncode == 0, started.stderr
    return port, run, lambda: run("kill-server")


@pytest.fixture
def adb_server_in():
    """``start(home) -> (port, run)``: Debian's adb server keeping its key in ``home/.android``; stopped after
    the test."""
    stops = []

    def start(home: Path):
        port, run, stop = start_adb_server(home)
        stops.append(stop)
        return port, run
    try:
        yield start
    finally:
        for stop in stops:
            stop()


@pytest.fixture
def adb_server(user_home):
    """Debian's adb server using the same key as the harness (the user's ~/.android/adbkey)."""
    port, run, stop = start_adb_server(user_home)
    try:
        yield port, run
    finally:
        stop()
