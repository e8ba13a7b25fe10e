"""The phone-host agent: joins this machine to a Ray cluster as a node that carries its phones as resources.

``ferminet agent --ray-address HEAD:6379 --device SERIAL ...`` reads each phone (model, SoC), starts a Ray node
(``ray start --address HEAD --resources {"phone:<model>": 1, "phone-serial:<serial>": 1, ...} --block``: custom
resources are fixed when a node starts, so the agent starts the node itself) and registers one detached actor per
phone (:class:`toolkit.scale.phones.PhoneWorker`), named ``phone-serial:<serial>`` and pinned to this node by that
resource. Ray restarts an actor whose process dies (and retries the measurement it ran); when the agent stops, its
actors are removed and its node leaves, so drivers treat its phones as lost and re-queue their work.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.scale.cluster import NAMESPACE, ScaleError, connect
from toolkit.scale.phones import RemotePhone, actor_name, phone_resources, remote_phone_class

log = logging.getLogger(__name__)


class _NodeExited(Exception):
    """`ray start` exited before this host's node joined."""


@dataclass(frozen=True)
class AgentPhone:
    serial: str
    model: str
    resources: dict


def _ray_executable() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else "ray"


def _default_node_ip(ray_address: str) -> str | None:
    """A head on loopback means a one-machine cluster: this node is on loopback too (Ray would otherwise use the
    machine's interface address). Elsewhere Ray finds the address itself."""
    host = ray_address.rsplit(":", 1)[0].strip("[]")
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return "127.0.0.1" if host == "localhost" else None


class Agent:
    """``with Agent("10.0.0.5:6379", ["R58M123", "127.0.0.1:5555"]) as agent: agent.wait()``

    ``target_kwargs`` go to each phone's :class:`~toolkit.targets.android.AndroidTarget` (backend, adb_server,
    benchmark_binary, thermal_timeout_s ...). ``num_cpus``: CPUs this node offers to other Ray work (0: phones only).
    """

    def __init__(self, ray_address: str, serials, *, target_kwargs: dict | None = None, num_cpus: int = 0,
                 node_ip: str | None = None, start_timeout_s: float = 90.0, node_attempts: int = 3):
        if not serials:
            raise ScaleError("The agent needs at least one phone: pass --device SERIAL or --connect HOST:PORT")
        self.ray_address = ray_address
        self.serials = list(dict.fromkeys(serials))
        self.target_kwargs = dict(target_kwargs or {})
        self.num_cpus = num_cpus
        self.node_ip = node_ip or _default_node_ip(ray_address)
        self.start_timeout_s = start_timeout_s
        self.node_attempts = node_attempts
        self.phones: list[AgentPhone] = []
        self.described: list[RemotePhone] = []
        self._node: subprocess.Popen | None = None
        self._node_log: Path | None = None
        self._handles: list = []

    def _read_phones(self) -> list[AgentPhone]:
        from toolkit.targets.android import AndroidTarget

        phones = []
        for serial in self.serials:
            info = AndroidTarget(serial, **self.target_kwargs).device.info()  # unreachable -> DeviceError now
            phones.append(AgentPhone(serial, info.model, phone_resources(info.model, serial)))
        return phones

    def start(self) -> "Agent":
        self.phones = self._read_phones()
        resources: dict[str, float] = {}
        for p in self.phones:
            for k, v in p.resources.items():
                resources[k] = resources.get(k, 0.0) + v
        cmd = [_ray_executable(), "start", "--address", self.ray_address, "--resources", json.dumps(resources),
               "--num-cpus", str(self.num_cpus), "--disable-usage-stats", "--block"]
        if self.node_ip:
            cmd += ["--node-ip-address", self.node_ip]
        try:
            for attempt in range(1, self.node_attempts + 1):
                try:
                    self._start_node(cmd)
                    break
                except _NodeExited as exc:
                    # `ray start` gives a raylet 30 s to register (hard-coded); a busy host can miss that.
                    if attempt == self.node_attempts:
                        raise ScaleError(str(exc)) from None
                    log.warning("%s; starting this host's Ray node again (attempt %d of %d)", exc, attempt + 1,
                                self.node_attempts)
                    self._stop_node()
            self._register()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, cmd: list[str]) -> None:
        """Start this host's Ray node and wait until the cluster lists its phone resources."""
        fd, name = tempfile.mkstemp(prefix="ferminet-agent-node-", suffix=".log")
        self._node_log = Path(name)
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
        with os.fdopen(fd, "w") as out:
            self._node = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        ray = connect(self.ray_address)
        wanted = {f"phone-serial:{p.serial}" for p in self.phones}
        deadline = time.monotonic() + self.start_timeout_s
        while not wanted <= set(ray.cluster_resources()):
            if self._node.poll() is not None:
                raise _NodeExited(f"`ray start --address {self.ray_address}` exited ({self._node.returncode}): "
                                  f"{self._node_tail()}")
            if time.monotonic() > deadline:
                raise ScaleError(f"This host's Ray node did not join {self.ray_address} within "
                                 f"{self.start_timeout_s:.0f} s: {self._node_tail()}")
            time.sleep(0.5)

    def _register(self) -> None:
        ray = connect(self.ray_address)
        cls = remote_phone_class()
        for p in self.phones:
            handle = cls.options(name=actor_name(p.serial), namespace=NAMESPACE, lifetime="detached",
                                 get_if_exists=True, num_cpus=0, resources={f"phone-serial:{p.serial}": 1},
                                 max_restarts=-1, max_task_retries=-1).remote(p.serial, self.target_kwargs)
            self._handles.append(handle)
        self.described = ray.get([h.describe.remote() for h in self._handles], timeout=self.start_timeout_s)
        for d in self.described:
            log.info("phone %s (%s, %s) registered on Ray node %s", d.serial, d.model, d.source, d.node_id[:12])

    def _node_tail(self) -> str:
        text = self._node_log.read_text(errors="replace") if self._node_log and self._node_log.exists() else ""
        return " | ".join(text.strip().splitlines()[-5:]) or "no output"

    def alive(self) -> bool:
        return self._node is not None and self._node.poll() is None

    def wait(self, stop=None, poll_s: float = 1.0) -> None:
        """Serve until ``stop`` (a threading.Event) is set or this host's Ray node exits."""
        while self.alive() and not (stop is not None and stop.is_set()):
            time.sleep(poll_s)
        if not self.alive():
            raise ScaleError(f"This host's Ray node stopped: {self._node_tail()}")

    def stop(self) -> None:
        """Remove this host's phone actors and take its node out of the cluster. Never raises."""
        try:
            import ray

            if ray.is_initialized():
                for h in self._handles:
                    try:
                        ray.kill(h, no_restart=True)
                    except Exception:  # noqa: BLE001 - already gone
                        pass
                ray.shutdown()
        except Exception as exc:  # noqa: BLE001 - stopping never raises
            log.warning("leaving the Ray cluster: %s", exc)
        self._handles = []
        self._stop_node()

    def _stop_node(self) -> None:
        node, self._node = self._node, None
        if node is not None:
            if node.poll() is None:
                node.terminate()  # `ray start --block` stops the processes it started when it is terminated
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
            try:  # what a failed `ray start` left behind (raylet, agents): its own session, which we started
                os.killpg(node.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._node_log is not None:
            self._node_log.unlink(missing_ok=True)
            self._node_log = None

    def __enter__(self) -> "Agent":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
