"""Runs inside the test's network namespace (see conftest.py): two virtual phones, one `ferminet agent` each,
a RayPhonePool over them. Prints one line, "RESULT <JSON>" with what happened.

usage: _driver_phones.py MODEL.tflite
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from android_harness.virtual import VirtualPhone
from toolkit.scale import RayPhonePool, connect, wait_for_phones
from toolkit.targets import ProfileOptions

ADDRESS = "127.0.0.1:6379"
tflite = sys.argv[1]
out = {}


LOGS = Path(tempfile.mkdtemp(prefix="ferminet-agents-"))


def agent(serial):
    log = open(LOGS / f"{serial.replace(':', '_')}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "toolkit.cli.main", "agent", "--ray-address", ADDRESS,
                             "--connect", serial], stdout=log, stderr=subprocess.STDOUT, text=True)


def agent_output(serial):
    return (LOGS / f"{serial.replace(':', '_')}.log").read_text(errors="replace")


def running(pool, serial):
    return any(s.serial == serial and s.busy for s in pool.status())


t0 = time.monotonic()
with VirtualPhone("pixel_6") as a, VirtualPhone("pixel_6") as b:
    agents = {a.serial: agent(a.serial), b.serial: agent(b.serial)}
    try:
        ray = connect(ADDRESS)
        wait_for_phones([a.serial, b.serial], timeout_s=300)
        out["agents_up_s"] = time.monotonic() - t0
        out["resources"] = sorted(k for k in ray.cluster_resources() if k.startswith("phone"))
        long = ProfileOptions(num_threads=1, warmup_runs=1, num_runs=5, min_secs=3.0, measure_energy=False)
        short = ProfileOptions(num_threads=1, warmup_runs=1, num_runs=5, measure_energy=False)

        # 1. A phone's actor process killed mid-measurement: Ray restarts the actor and retries the task.
        actor = ray.get_actor(f"phone-serial:{a.serial}", namespace="ferminet")
        pid_before = ray.get(actor.pid.remote())
        with RayPhonePool(ADDRESS, serials=[a.serial]) as pool:
            fut = pool.submit(tflite, long)
            while not running(pool, a.serial):
                time.sleep(0.1)
            time.sleep(1.5)
            os.kill(pid_before, signal.SIGKILL)  # the worker process running PhoneWorker.profile
            t = time.monotonic()
            m = fut.result(timeout=180)
            out["retried"] = {"device": m.device, "source": m.source, "count": m.latency.count,
                              "after_kill_s": time.monotonic() - t, "jobs_done": pool.status()[0].jobs_done}
        out["pid_before"] = pid_before
        out["pid_after"] = ray.get(actor.pid.remote())

        # 2. A host leaves mid-run (its agent stops): its job is re-queued on the other phone; nothing lost.
        with RayPhonePool(ADDRESS) as pool:
            out["models"] = pool.models()
            futs = [pool.submit(tflite, long if i < 2 else short) for i in range(4)]
            while not running(pool, b.serial):
                time.sleep(0.1)
            time.sleep(1.0)
            agents[b.serial].send_signal(signal.SIGTERM)
            results = [f.result(timeout=180) for f in futs]
            agents[b.serial].wait(timeout=60)
            out["after_leave"] = [r.device for r in results]
            out["status"] = [[s.serial, s.reachable, s.jobs_done] for s in pool.status()]
            out["agent_b_output"] = agent_output(b.serial)[-3000:]
    except BaseException:
        for serial in agents:
            print(f"--- agent {serial}:\n{agent_output(serial)[-4000:]}", file=sys.stderr)
        raise
    finally:
        for p in agents.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=60)
    out["serials"] = [a.serial, b.serial]
    out["wall_s"] = time.monotonic() - t0
print("RESULT " + json.dumps(out), flush=True)
