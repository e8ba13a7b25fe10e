"""Phones as Ray resources: one actor per phone on the host it is plugged into, and the driver's pool over them.

A phone host runs ``ferminet agent`` (:mod:`toolkit.scale.agent`): its Ray node carries the custom resources
``phone:<model>`` and ``phone-serial:<serial>``, and one detached actor per phone, named ``phone-serial:<serial>``
and pinned there by that resource, measures on it (:class:`PhoneWorker`, an :class:`AndroidTarget`). Ray restarts a
phone's actor whose process died, on the same node, and retries the measurement it was running.

:class:`RayPhonePool` is the driver's side, with the interface of the local phone farm
(``submit``/``status``/``models``/``close``): jobs are queued, each phone runs one at a time, a phone whose host
leaves the cluster (or whose connection is lost) is taken out and its job re-queued on another phone of the same
model; it comes back when its actor answers again.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.scale.cluster import NAMESPACE, ScaleError, connect
from toolkit.targets.base import Measurement, ProfileOptions
from toolkit.targets.farm import FarmTarget, PhoneStatus, same_model

log = logging.getLogger(__name__)

MODEL_RESOURCE = "phone:"  # phone:<model>, e.g. "phone:Pixel 6"
SERIAL_RESOURCE = "phone-serial:"  # phone-serial:<serial>; also the name of the phone's actor


def actor_name(serial: str) -> str:
    return f"{SERIAL_RESOURCE}{serial}"


def phone_resources(model: str, serial: str) -> dict[str, float]:
    """The custom resources a phone adds to its host's Ray node."""
    return {f"{MODEL_RESOURCE}{model}": 1.0, f"{SERIAL_RESOURCE}{serial}": 1.0}


@dataclass(frozen=True)
class RemotePhone:
    """A phone as its actor describes it: where it is (Ray node, process) and its state when asked."""

    serial: str
    model: str
    soc: str
    source: str  # measured:<serial> | virtual:<profile>
    node_id: str
    pid: int
    battery_percent: int | None = None
    temperature_c: float | None = None
    thermal_status: str | None = None


class PhoneWorker:
    """The body of a phone's Ray actor (runs on the phone's host). Measurements arrive as the model's bytes, so
    the driver's files need not be visible on the phone host."""

    def __init__(self, serial: str, target_kwargs: dict | None = None):
        self.serial = serial
        self.target_kwargs = dict(target_kwargs or {})
        self._target = None
        self._folder = Path(tempfile.mkdtemp(prefix="ferminet-phone-"))

    def _get_target(self):
        if self._target is None:
            from toolkit.targets.android import AndroidTarget

            self._target = AndroidTarget(self.serial, **self.target_kwargs)
        return self._target

    def describe(self) -> RemotePhone:
        import ray

        info = self._get_target().device.info()
        return RemotePhone(serial=self.serial, model=info.model, soc=info.soc, source=info.source,
                           node_id=ray.get_runtime_context().get_node_id(), pid=os.getpid(),
                           battery_percent=info.battery.level, temperature_c=info.battery.temperature_c,
                           thermal_status=info.thermal.status_name)

    def pid(self) -> int:
        return os.getpid()

    def profile(self, model_path: str, data: bytes, options: ProfileOptions) -> Measurement:
        """Measure the model (``data``, the bytes of the driver's ``model_path``) on this phone."""
        local = self._folder / Path(model_path).name
        local.write_bytes(data)
        try:
            m = self._get_target().profile(local, options)
        finally:
            local.unlink(missing_ok=True)
        return dataclasses.replace(m, model_path=model_path)  # the same bytes: the store keys them by SHA-256


def remote_phone_class():
    """PhoneWorker as a Ray actor class (Ray is imported only when phones are used)."""
    import ray

    return ray.remote(PhoneWorker)


def list_phone_actors() -> list[str]:
    """Serials of the phones registered in the cluster (named actors of the ``ferminet`` namespace)."""
    import ray

    names = ray.util.list_named_actors(all_namespaces=True)
    return sorted(n["name"][len(SERIAL_RESOURCE):] for n in names
                  if n["namespace"] == NAMESPACE and n["name"].startswith(SERIAL_RESOURCE))


@dataclass
class _Job:
    tflite_path: str
    data: bytes
    options: ProfileOptions
    model: str | None
    future: concurrent.futures.Future
    tries: int = 0


@dataclass
class _Phone:
    serial: str
    handle: object
    info: RemotePhone
    reachable: bool = True
    busy: bool = False
    jobs_done: int = 0
    last_error: str = ""
    thread: threading.Thread | None = None


class RayPhonePool:
    """Measure on the phones registered in a Ray cluster (by ``ferminet agent``), like the local phone farm.

    ``pool = RayPhonePool("10.0.0.5:6379"); m = pool.submit("m.tflite", ProfileOptions()).result()``

    ``serials`` limits the pool to these phones (default: every registered phone). ``refresh_s``: how often lost
    phones are asked again and new ones looked for. ``max_tries``: a job re-queued this often after lost phones
    fails instead.
    """

    def __init__(self, address: str | None = None, *, serials=None, refresh_s: float = 3.0, max_tries: int = 5):
        self._ray = connect(address)
        self._wanted = set(serials) if serials else None
        self.refresh_s = refresh_s
        self.max_tries = max_tries
        self._cond = threading.Condition()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._phones: dict[str, _Phone] = {}
        self._closed = False
        self._discover()
        if not self._phones:
            raise ScaleError(f"No phones are registered in the Ray cluster"
                             f"{' among ' + ', '.join(sorted(self._wanted)) if self._wanted else ''}. "
                             f"Run `ferminet agent --ray-address ADDR` on the hosts the phones are plugged into")
        self._refresher = threading.Thread(target=self._refresh_loop, name="ray-phones-refresh", daemon=True)
        self._refresher.start()

    # -- the farm interface ------------------------------------------------------------------------------------
    def submit(self, tflite_path, options: ProfileOptions | None = None, *,
               model: str | None = None) -> concurrent.futures.Future:
        """Queue one measurement; the future's result is the Measurement (or the error that ended it)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        path = Path(tflite_path)
        job = _Job(str(path), path.read_bytes(), options or ProfileOptions(), model, future)
        with self._cond:
            if self._closed:
                raise ScaleError("This phone pool is closed; make a new RayPhonePool")
            self._jobs.append(job)
            self._fail_orphans()
            self._cond.notify_all()
        return future

    def models(self) -> list[str]:
        """Distinct device models of the registered phones."""
        with self._cond:
            return list(dict.fromkeys(p.info.model for p in self._sorted()))

    def serials(self, model: str | None = None) -> list[str]:
        with self._cond:
            return [p.serial for p in self._sorted() if model is None or same_model(p.info.model, model)]

    def status(self, refresh: bool = False) -> list[PhoneStatus]:
        """Every phone (by serial) as last described by its actor; ``refresh``: ask the idle reachable ones now."""
        if refresh:
            for p in list(self._phones.values()):
                if p.reachable and not p.busy:
                    try:
                        p.info = self._ray.get(p.handle.describe.remote(), timeout=30)
                    except Exception as exc:  # noqa: BLE001 - shown as its last error
                        p.last_error = f"{type(exc).__name__}: {exc}"
        with self._cond:
            return [PhoneStatus(p.serial, p.info.model, p.info.soc, p.info.battery_percent, p.info.temperature_c,
                                p.info.thermal_status or "", p.busy, p.reachable, p.jobs_done, p.info.source,
                                p.last_error) for p in self._sorted()]

    def target(self, model: str | None = None) -> FarmTarget:
        """A Target whose ``profile`` waits for a measurement on one of these phones (of ``model``)."""
        return FarmTarget(self, model)

    def _sorted(self) -> list:
        return sorted(self._phones.values(), key=lambda p: p.serial)

    def close(self) -> None:
        """Stop taking jobs; queued ones fail, running ones finish. The phones' actors stay (they are the agent's)."""
        with self._cond:
            self._closed = True
            while self._jobs:
                self._jobs.popleft().future.set_exception(ScaleError("The phone pool was closed before this "
                                                                     "measurement ran"))
            self._cond.notify_all()
        for p in list(self._phones.values()):
            if p.thread is not None:
                p.thread.join(timeout=600)

    def __enter__(self) -> "RayPhonePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- inside ----------------------------------------------------------------------------------------------
    def _discover(self) -> None:
        """Add phones registered since the last look; bring back lost ones whose actor answers again."""
        ray = self._ray
        for serial in list_phone_actors():
            if self._wanted is not None and serial not in self._wanted:
                continue
            with self._cond:
                known = self._phones.get(serial)
            if known is not None and known.reachable:
                continue
            try:
                handle = ray.get_actor(actor_name(serial), namespace=NAMESPACE)
                info = ray.get(handle.describe.remote(), timeout=max(self.refresh_s, 10.0))
            except Exception as exc:  # noqa: BLE001 - a phone that does not answer stays out until it does
                log.info("phone %s does not answer (%s)", serial, type(exc).__name__)
                continue
            if not self._node_alive(info.node_id):
                continue
            with self._cond:
                if self._closed:
                    return
                phone = _Phone(serial, handle, info, jobs_done=known.jobs_done if known else 0)
                self._phones[serial] = phone
                phone.thread = threading.Thread(target=self._work, args=(phone,), name=f"ray-phone-{serial}",
                                                daemon=True)
                phone.thread.start()
                if known is not None:
                    log.warning("phone %s (%s) is back", serial, info.model)
                self._cond.notify_all()

    def _refresh_loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(self.refresh_s)
                if self._closed:
                    return
            try:
                self._discover()
            except Exception as exc:  # noqa: BLE001 - keep looking; the next round may reach the cluster
                log.warning("looking for phones failed: %s", exc)

    def _node_alive(self, node_id: str) -> bool:
        return any(n["NodeID"] == node_id and n["Alive"] for n in self._ray.nodes())

    def _take(self, phone: _Phone) -> _Job | None:
        with self._cond:
            while True:
                if self._closed or not phone.reachable or self._phones.get(phone.serial) is not phone:
                    return None
                for job in self._jobs:
                    if job.model is None or same_model(job.model, phone.info.model):
                        self._jobs.remove(job)
                        phone.busy = True
                        return job
                self._cond.wait()

    def _work(self, phone: _Phone) -> None:
        while (job := self._take(phone)) is not None:
            lost = None
            try:
                ref = phone.handle.profile.remote(job.tflite_path, job.data, job.options)
                while True:
                    ready, _ = self._ray.wait([ref], timeout=1.0)
                    if ready:
                        break
                    if not self._node_alive(phone.info.node_id):
                        raise ScaleError(f"the Ray node holding phone {phone.serial} left the cluster")
                result = self._ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - sorted below: lost phone (re-queue) or the job's own error
                cause = getattr(exc, "cause", None) or exc
                if _is_lost(exc, cause):
                    lost = cause
                else:
                    job.future.set_exception(cause)
            else:
                job.future.set_result(result)
            with self._cond:
                phone.busy = False
                if lost is None:
                    phone.jobs_done += 1
                else:
                    phone.reachable = False
                    phone.last_error = f"{type(lost).__name__}: {lost}"
                    job.tries += 1
                    log.warning("phone %s lost (%s); its job goes back to the queue", phone.serial, lost)
                    if job.tries >= self.max_tries:
                        job.future.set_exception(ScaleError(
                            f"{job.tflite_path}: lost {job.tries} phones while measuring it (last: {phone.serial}: "
                            f"{lost}); check the phones and their agents"))
                    else:
                        self._jobs.appendleft(job)
                    self._fail_orphans()
                self._cond.notify_all()
            if lost is not None:
                return

    def _fail_orphans(self) -> None:
        """Jobs no reachable phone can take fail at once, naming the phones (call with the lock held)."""
        reachable = {p.info.model for p in self._phones.values() if p.reachable}
        for job in list(self._jobs):
            if not any(job.model is None or same_model(job.model, m) for m in reachable):
                self._jobs.remove(job)
                known = ", ".join(f"{p.serial} ({p.info.model}, {'up' if p.reachable else 'lost'})"
                                  for p in self._phones.values()) or "none"
                need = f"a {job.model}" if job.model else "a phone"
                job.future.set_exception(ScaleError(
                    f"No reachable phone can measure {job.tflite_path}: it needs {need}; phones: {known}. Start "
                    f"`ferminet agent` on a host with one, or submit for one of {', '.join(sorted(reachable)) or '-'}"))


def _is_lost(exc: BaseException, cause: BaseException) -> bool:
    """A lost phone (its job may pass elsewhere) rather than the job's own failure."""
    import ray.exceptions as rex

    if isinstance(exc, (rex.RayActorError, rex.ActorUnavailableError, rex.ObjectLostError, ScaleError)):
        return True
    return isinstance(cause, ToolkitError) and getattr(cause, "transient", False)


def wait_for_phones(serials, timeout_s: float = 60.0) -> list[str]:
    """Block until the phones with these serials are registered (e.g. right after starting an agent)."""
    deadline = time.monotonic() + timeout_s
    while True:
        present = set(list_phone_actors())
        if set(serials) <= present:
            return sorted(present)
        if time.monotonic() > deadline:
            raise ScaleError(f"Phones {', '.join(sorted(set(serials) - present))} did not register within "
                             f"{timeout_s:.0f} s; is `ferminet agent` running on their host?")
        time.sleep(0.5)
