"""PhoneFarm: measure on several phones at once, one job at a time per phone.

    farm = PhoneFarm(["127.0.0.1:5555", "127.0.0.1:5556"])
    futures = [farm.submit(p, ProfileOptions(min_secs=1.0)) for p in paths]   # queued, first free phone takes one
    measurements = [f.result() for f in futures]                               # in submission order
    farm.close()

Each phone has one worker thread and its own :class:`~toolkit.targets.android.AndroidTarget` (its own connection
and energy-baseline cache). A job may name a device model (``submit(..., model="Pixel 6")``): then only phones of
that model take it. A phone that fails with a connection error, a timeout or a thermal gate is taken out (marked
unreachable) and its job goes back to the front of the queue for another phone; a background probe brings it back
(with a new connection, so its first measurement takes a fresh idle baseline) once it answers and is not
throttling. A job that no reachable phone can take for ``lost_timeout_s`` fails with one ToolkitError naming the
phones and the fix; a job that lost its phone ``max_attempts`` times fails with the last error. Any other error
(a bad model, a benchmark failure) is the job's own: its future fails, the phone stays in.

Every Measurement keeps its provenance (``measured:<serial>`` / ``virtual:<profile>`` and the serial) as the
phone's AndroidTarget made it. The same interface (``submit``, ``status``, ``models``, ``close``) is what a Ray
phone pool implements.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from toolkit.errors import DeviceError, InvalidArgumentError, TargetError, ToolkitError
from toolkit.targets.base import Measurement, ProfileOptions, Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhoneStatus:
    """One phone of the farm as last seen. ``battery_pct``/``temperature_c``/``thermal_status`` are from the last
    successful reading (connect, probe, or ``status(refresh=True)``); ``source`` is the provenance its numbers get."""

    serial: str
    model: str
    soc: str
    battery_pct: int | None
    temperature_c: float | None
    thermal_status: str
    busy: bool
    reachable: bool
    jobs_done: int
    source: str = ""
    last_error: str = ""


@dataclass
class _Job:
    path: Path
    options: ProfileOptions
    model: str | None
    future: Future
    number: int
    attempts: int = 0
    started: bool = False
    waiting_since: float | None = None  # since when no reachable phone could take it
    errors: list = None


class _Phone:
    def __init__(self, serial: str, target, info):
        self.serial = serial
        self.target = target
        self.info = info
        self.model = info.model
        self.reachable = True
        self.busy = False
        self.jobs_done = 0
        self.last_error = ""
        self.lock = threading.Lock()  # held while the phone is used (a measurement, a refresh)

    def status(self) -> PhoneStatus:
        i = self.info
        return PhoneStatus(serial=self.serial, model=self.model, soc=i.soc, battery_pct=i.battery.level,
                           temperature_c=i.battery.temperature_c, thermal_status=i.thermal.status_name,
                           busy=self.busy, reachable=self.reachable, jobs_done=self.jobs_done, source=i.source,
                           last_error=self.last_error)


def phone_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is the phone's problem (gone, not answering, too hot), not the job's: such a job goes to
    another phone."""
    return isinstance(exc, DeviceError) and exc.transient


def same_model(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


class PhoneFarm:
    """Phones measuring in parallel from one queue; see the module docstring.

    ``devices``: serials or HOST:PORT addresses (each reached once now: an unreachable one fails here, naming it).
    ``target_kwargs`` go to each phone's AndroidTarget (backend, adb_server, benchmark_binary, ...).
    ``probe_interval_s``: how often taken-out phones are tried again. ``lost_timeout_s``: how long a job waits when
    no reachable phone can take it before it fails. ``max_attempts``: phones a job may lose before it fails.
    """

    def __init__(self, devices: Sequence[str], *, probe_interval_s: float = 3.0, lost_timeout_s: float = 60.0,
                 max_attempts: int = 3, **target_kwargs):
        from toolkit.targets.android import AndroidTarget

        devices = list(devices)
        if not devices or any(not isinstance(d, str) or not d for d in devices):
            raise InvalidArgumentError(f"A phone farm needs at least one device serial or HOST:PORT. "
                                       f"Received: devices={devices!r}")
        repeated = sorted({d for d in devices if devices.count(d) > 1})
        if repeated:
            raise InvalidArgumentError(f"Each phone may be given once (one job at a time per phone). "
                                       f"Received twice: {', '.join(repeated)}")
        for name, value in (("probe_interval_s", probe_interval_s), ("lost_timeout_s", lost_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InvalidArgumentError(f"{name} must be a number > 0. Received: {name}={value!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidArgumentError(f"max_attempts must be an integer >= 1. Received: max_attempts={max_attempts!r}")
        self._make_target = lambda serial: AndroidTarget(serial, **target_kwargs)
        self.probe_interval_s = float(probe_interval_s)
        self.lost_timeout_s = float(lost_timeout_s)
        self.max_attempts = max_attempts
        phones, failed = [], []
        for serial in devices:
            target = self._make_target(serial)
            try:
                phones.append(_Phone(serial, target, target.info()))
            except ToolkitError as exc:
                target.close()
                failed.append(f"{serial} ({exc})")
        if failed:
            for p in phones:
                p.target.close()
            raise TargetError(f"Cannot reach {len(failed)} of {len(devices)} phones: {'; '.join(failed)}. Connect "
                              f"them (`adb connect HOST:PORT`, or start the virtual phone) or leave them out; "
                              f"`ferminet devices` lists the reachable ones")
        self._phones: list[_Phone] = phones
        self._queue: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._submitted = 0
        self._threads = [threading.Thread(target=self._work, args=(p,), name=f"farm-{p.serial}", daemon=True)
                         for p in phones]
        self._threads.append(threading.Thread(target=self._probe, name="farm-probe", daemon=True))
        for t in self._threads:
            t.start()
        log.info("phone farm: %s", ", ".join(f"{p.serial} ({p.model})" for p in phones))

    # -- the interface -------------------------------------------------------------------------------------------

    def submit(self, tflite_path: str | Path, options: ProfileOptions | None = None, *,
               model: str | None = None) -> "Future[Measurement]":
        """Queue one measurement; it runs on the first free phone (of device model ``model`` if given)."""
        options = options or ProfileOptions()
        if model is not None and not any(same_model(p.model, model) for p in self._phones):
            raise InvalidArgumentError(f"No phone of model {model!r} in the farm; it has {', '.join(self.models())}. "
                                       f"Received: model={model!r}")
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise ToolkitError("The phone farm is closed; make a new PhoneFarm to measure again")
            self._submitted += 1
            self._queue.append(_Job(Path(tflite_path), options, model, future, self._submitted, errors=[]))
            self._cond.notify_all()
        return future

    def models(self) -> list[str]:
        """Distinct device models, in the order their first phone was given."""
        return list(dict.fromkeys(p.model for p in self._phones))

    def serials(self, model: str | None = None) -> list[str]:
        return [p.serial for p in self._phones if model is None or same_model(p.model, model)]

    def status(self, refresh: bool = False) -> list[PhoneStatus]:
        """Every phone, in the order given. ``refresh``: read battery/thermal of idle reachable phones now."""
        if refresh:
            for p in self._phones:
                if p.reachable and p.lock.acquire(blocking=False):
                    try:
                        p.info = p.target.info()
                    except ToolkitError as exc:
                        self._take_out(p, exc)
                    finally:
                        p.lock.release()
        with self._cond:
            return [p.status() for p in self._phones]

    def target(self, model: str | None = None) -> "FarmTarget":
        """A :class:`Target` whose ``profile`` waits for a measurement of the farm (on a phone of ``model``)."""
        return FarmTarget(self, model)

    def close(self) -> None:
        """Stop the workers and the probe; queued jobs that never started are cancelled. Never raises; safe twice."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in queued:
            job.future.cancel()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5.0)
        for p in self._phones:
            p.target.close()

    def __enter__(self) -> "PhoneFarm":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- inside --------------------------------------------------------------------------------------------------

    def _next_job(self, phone: _Phone) -> _Job | None:
        for job in self._queue:
            if job.model is None or same_model(job.model, phone.model):
                self._queue.remove(job)
                return job
        return None

    def _work(self, phone: _Phone) -> None:
        while True:
            with self._cond:
                job = None
                while not self._closed:
                    if phone.reachable:
                        job = self._next_job(phone)
                        if job is not None:
                            break
                    self._cond.wait()
                if self._closed:
                    return
                phone.busy = True
            if not job.started:
                job.started = True
                if not job.future.set_running_or_notify_cancel():  # cancelled while queued
                    with self._cond:
                        phone.busy = False
                    continue
            job.attempts += 1
            try:
                with phone.lock:
                    measurement = phone.target.profile(job.path, job.options)
            except Exception as exc:  # noqa: BLE001 - every error ends up in the job's future or re-queues it
                if phone_lost(exc):
                    self._take_out(phone, exc)
                    job.errors.append(f"{phone.serial}: {exc}")
                    with self._cond:
                        phone.busy = False
                        if job.attempts < self.max_attempts and not self._closed:
                            log.warning("phone %s taken out (%s); job %d goes to another phone", phone.serial, exc,
                                        job.number)
                            self._queue.appendleft(job)
                            self._cond.notify_all()
                            continue
                    job.future.set_exception(exc if job.attempts >= self.max_attempts else ToolkitError(
                        "The phone farm closed before the job could run again"))
                    continue
                with self._cond:
                    phone.busy = False
                job.future.set_exception(exc)
                continue
            with self._cond:
                phone.busy = False
                phone.jobs_done += 1
                self._cond.notify_all()
            job.future.set_result(measurement)

    def _take_out(self, phone: _Phone, exc: BaseException) -> None:
        with self._cond:
            phone.reachable = False
            phone.last_error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        phone.target.close()  # a dead connection is never reused: the probe makes a new one

    def _probe(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed, timeout=self.probe_interval_s)
                if self._closed:
                    return
                out = [p for p in self._phones if not p.reachable]
            for phone in out:
                target = self._make_target(phone.serial)
                try:
                    info = target.info()
                except ToolkitError:
                    target.close()
                    continue
                if info.thermal.throttling:
                    target.close()  # still too hot: stays out
                    continue
                with self._cond:
                    phone.target, phone.info, phone.reachable, phone.last_error = target, info, True, ""
                    self._cond.notify_all()
                log.info("phone %s is back", phone.serial)
            self._fail_orphans()

    def _fail_orphans(self) -> None:
        """Jobs no reachable phone can take: fail them once they waited ``lost_timeout_s``."""
        now = time.monotonic()
        failed = []
        with self._cond:
            for job in list(self._queue):
                if any(p.reachable and (job.model is None or same_model(job.model, p.model)) for p in self._phones):
                    job.waiting_since = None
                    continue
                if job.waiting_since is None:
                    job.waiting_since = now
                elif now - job.waiting_since >= self.lost_timeout_s:
                    self._queue.remove(job)
                    failed.append(job)
            phones = [p for p in self._phones]
        for job in failed:
            wanted = [p for p in phones if job.model is None or same_model(job.model, p.model)]
            names = "; ".join(f"{p.serial} ({p.last_error or 'unreachable'})" for p in wanted)
            what = f"of model {job.model!r} " if job.model else ""
            exc = TargetError(f"No phone {what}is left to measure {job.path.name}: {names}, unreachable for "
                              f"{self.lost_timeout_s:g} s. Reconnect them (`adb connect HOST:PORT`, plug in, or "
                              f"restart the virtual phone) or add another with --device")
            if job.started:
                job.future.set_exception(exc)
            elif job.future.set_running_or_notify_cancel():
                job.future.set_exception(exc)


class FarmTarget(Target):
    """The farm as one :class:`Target`: ``profile`` queues the measurement (on a phone of ``model``) and waits."""

    name = "android"

    def __init__(self, farm: PhoneFarm, model: str | None = None):
        self.farm = farm
        self.model = model

    def profile(self, tflite_path: str | Path, options: ProfileOptions | None = None) -> Measurement:
        return self.farm.submit(tflite_path, options, model=self.model).result()


def all_devices(adb_server: str = "127.0.0.1:5037", extra: Sequence[str] = ()) -> list[str]:
    """``--devices all``: every phone the adb server lists, then ``extra`` addresses (e.g. virtual phones)."""
    from toolkit.targets.android import adb_server_serials

    found = list(dict.fromkeys(adb_server_serials(adb_server) + list(extra)))
    if not found:
        raise TargetError(f"--devices all found no phone: the adb server at {adb_server} lists none and no address "
                          f"was given. Connect phones (`adb connect HOST:PORT`) or name them with --device")
    return found


def profile_on_each(devices: Sequence[str], tflite_path: str | Path, options: ProfileOptions | None = None,
                    **target_kwargs) -> tuple[list[Measurement], list[tuple[str, ToolkitError]]]:
    """Measure one model on every phone in ``devices`` at once (a thread per phone): (measurements in the order
    of ``devices``, (serial, error) of each phone that could not measure it)."""
    from concurrent.futures import ThreadPoolExecutor

    from toolkit.targets.android import AndroidTarget

    devices = list(dict.fromkeys(devices))
    if not devices:
        raise InvalidArgumentError("Name at least one phone (--device SERIAL, or --devices all). Received: none")

    def one(serial: str) -> Measurement:
        target = AndroidTarget(serial, **target_kwargs)
        try:
            return target.profile(tflite_path, options)
        finally:
            target.close()

    measured, failed = [], []
    with ThreadPoolExecutor(max_workers=len(devices), thread_name_prefix="profile") as pool:
        futures = [(serial, pool.submit(one, serial)) for serial in devices]
        for serial, future in futures:
            try:
                measured.append(future.result())
            except ToolkitError as exc:
                failed.append((serial, exc))
    return measured, failed
