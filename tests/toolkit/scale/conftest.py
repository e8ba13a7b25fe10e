"""A real local Ray cluster for the scale tests, inside a network namespace the fixture makes itself.

Ray must never see a network interface here: outside a namespace it probes external addresses to learn its IP and
uses the machine's interface address. So the head node runs under ``unshare --net --pid --fork --mount-proc`` (its
own loopback, brought up with ``ip link set lo up``, and its own process tree), and every Ray-side piece of a test
(drivers, agents, virtual phones) is a subprocess entered into the same namespaces with ``nsenter``. Teardown kills
``unshare``; with ``--kill-child`` its child is the namespace's init, and every process in the namespace dies with it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parents[2]
HEAD = "127.0.0.1:6379"


class NamespacedRay:
    """The head node's namespaces; ``run`` executes a command inside them."""

    def __init__(self, unshare: subprocess.Popen, ns_pid: int, temp_dir: str):
        self.unshare = unshare
        self.ns_pid = ns_pid
        self.temp_dir = temp_dir
        self.address = HEAD

    def command(self, argv: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.ns_pid), "--net", "--pid", "--mount", f"--wd={REPO}", *argv]

    def env(self, **extra) -> dict:
        return dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO), **extra)

    def run_driver(self, script: str, *args: str, timeout: float = 240) -> dict:
        """Run tests/toolkit/scale/<script> in the namespace; it prints its JSON result on a line starting with
        ``RESULT `` (Ray may print its own lines to stdout too)."""
        proc = subprocess.run(self.command(["nice", "-n", "19", sys.executable, str(HERE / script), *args]),
                              env=self.env(), capture_output=True, text=True, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                               f"{proc.stderr[-6000:]}"
        return json.loads(lines[-1][len("RESULT "):])


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.fixture(scope="session")
def ray_cluster():
    """A 2-CPU Ray head on 127.0.0.1 inside its own network and PID namespaces (two workers for tasks)."""
    for tool in ("unshare", "nsenter", "ip"):
        assert shutil.which(tool), f"{tool} is needed for the Ray tests (util-linux / iproute2)"
    ray_exe = str(Path(sys.executable).with_name("ray"))
    temp_dir = tempfile.mkdtemp(prefix="frt-ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    log = open(Path(temp_dir) / "head.log", "w")
    script = (f"ip link set lo up && exec nice -n 19 {ray_exe} start --head --node-ip-address 127.0.0.1 "
              f"--port 6379 --include-dashboard=false --num-cpus 2 --disable-usage-stats "
              f"--temp-dir {temp_dir} --block")
    unshare = subprocess.Popen(["unshare", "--net", "--pid", "--fork", "--mount-proc", "--kill-child",
                                "bash", "-c", script], stdout=log, stderr=subprocess.STDOUT,
                               env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
    try:
        deadline = time.monotonic() + 90
        ns_pid = None
        while time.monotonic() < deadline:
            assert unshare.poll() is None, (Path(temp_dir) / "head.log").read_text()[-3000:]
            kids = _children(unshare.pid)
            if kids and (Path(temp_dir) / "ray_current_cluster").exists():
                ns_pid = kids[0]
                break
            time.sleep(0.3)
        assert ns_pid is not None, "the Ray head did not start in 90 s: " + (Path(temp_dir) / "head.log").read_text()
        cluster = NamespacedRay(unshare, ns_pid, temp_dir)
        # Ready when a driver can join it.
        probe = subprocess.run(cluster.command([sys.executable, "-c", "import ray; ray.init(address='127.0.0.1:6379',"
                                                " log_to_driver=False); print(ray.cluster_resources()['CPU'])"]),
                               env=cluster.env(), capture_output=True, text=True, timeout=90)
        assert probe.returncode == 0 and probe.stdout.strip().endswith("2.0"), probe.stderr[-3000:]
        yield cluster
    finally:
        unshare.kill()  # --kill-child: the namespace's init dies, and with it every process inside
        unshare.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
