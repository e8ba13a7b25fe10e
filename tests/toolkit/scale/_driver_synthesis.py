"""Runs inside the test's network namespace (see conftest.py): the same tiny synthesis in-process and with the Ray
executor on the namespace's 2-CPU Ray cluster; the Ray run's driver is killed (SIGKILL) after its first search
candidate is stored, and resumed. Then one cycle of the same synthesis on a phone target: a virtual phone served by
a `ferminet agent` of the cluster, the Ray tasks only converting and the driver queueing each measurement on the
phone's actor; its prototype and supernet trained by Ray tasks. Prints one line, "RESULT <JSON>": each run's candidates and times.

The in-process run starts from the prototype and supernet of the session's shared tiny host run (``tiny_synthesis``
in tests/toolkit/conftest.py: same images, n_train=600 and data seed 0; TINY_RUN is its folder), so it trains neither:
training them is not what it is compared on. The Ray run starts from the same prototype (the in-process run's copy),
channel importance, per-op profile and supernet (copied or named, as `--supernet-from` does), so the two runs differ
only in where candidates are evaluated. The phone run trains its own prototype and supernet, as Ray tasks.

usage: _driver_synthesis.py WORKDIR TINY_RUN            (the test)
       _driver_synthesis.py WORKDIR TINY_RUN --ray-run [--resume|--phones]   (a Ray run's driver, a child process)
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from toolkit.synthesis import SynthesisConfig, run_synthesis

ws, tiny = Path(sys.argv[1]), Path(sys.argv[2])
config = SynthesisConfig(prototype="resnet20", prototype_width=0.25, n_train=600, prototype_epochs=1,
                         supernet_epochs=1, cycles=2, population=2, final_k=1, retrain_reference=False,
                         requirements=("accuracy_drop<=100pt", "macs<=1.5M", "params<=0.9x"))


def reusing(prototype: Path, supernet: Path) -> SynthesisConfig:
    """``config`` starting from a trained prototype and supernet instead of training them."""
    return SynthesisConfig(**{**config.to_dict(), "requirements": config.requirements,
                              "width_options": config.width_options,
                              "resolution_options": config.resolution_options,
                              "prototype_path": str(prototype), "supernet_path": str(supernet)})


def measurements(db):
    with sqlite3.connect(db) as conn:
        return [list(r) for r in conn.execute(
            "SELECT c.candidate_id, c.latency_source, c.energy_source, c.energy_mj, m.device, m.source "
            "FROM candidates c JOIN measurements m ON m.model_id = c.model_id AND m.run_id = c.run_id "
            "ORDER BY c.candidate_id")]


def kill_first_task_worker(run, title):
    """SIGKILL the first Ray worker process seen running a task titled ``title`` (Ray names the process
    ``ray::<function>`` while it runs one) while ``run`` is alive; returns its pid, or None if none was seen."""
    while run.poll() is None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith(title):
                os.kill(int(proc.name), signal.SIGKILL)
                return int(proc.name)
        time.sleep(0.05)
    return None


def candidates(db, phase="search"):
    with sqlite3.connect(db) as conn:
        return [list(r) for r in conn.execute(
            "SELECT candidate_id, spec_hash, status, int8_top1, macs FROM candidates WHERE phase=? "
            "ORDER BY candidate_id", (phase,))]


if "--ray-run" in sys.argv:
    from toolkit.scale.tasks import RayExecutor

    executor = RayExecutor("127.0.0.1:6379")
    if "--phones" in sys.argv:  # one cycle on the cluster's phones; prototype and supernet trained by Ray tasks
        serials = executor.phone_serials()
        phone_config = SynthesisConfig(**{**config.to_dict(), "requirements": config.requirements,
                                          "width_options": config.width_options,
                                          "resolution_options": config.resolution_options, "cycles": 1,
                                          # its own prototype and supernet, trained on 300 images (as before
                                          # the other runs moved to the shared tiny run's 600)
                                          "n_train": 300,
                                          "profile_runs": 10, "target": "android", "device": serials[0],
                                          # --predictor on the driver, from a predictor of the in-process run's
                                          # host; share 1: every candidate still measured (on the phone)
                                          "screen": True, "predictor_path": str(ws / "host.joblib"),
                                          "measure_share": 1.0})
        run_synthesis(phone_config, ws / "phones", ws / "phones.db", progress=False, executor=executor)
        print("SERIALS " + json.dumps({"serials": serials, "driver_pid": os.getpid(),
                                       "trained_by": executor.trained_by}), flush=True)
        sys.exit(0)
    if "--resume" in sys.argv:
        run_synthesis(config, ws / "ray", resume=True, progress=False, executor=executor)
    else:
        # the in-process run's prototype (its copy of the shared one) and the supernet it read (the shared run's)
        run_synthesis(reusing(ws / "inprocess" / "prototype.keras", tiny), ws / "ray", ws / "ray.db",
                      progress=False, executor=executor)
    sys.exit(0)

out = {}
t = time.monotonic()
local = run_synthesis(reusing(tiny / "prototype.keras", tiny), ws / "inprocess", ws / "inprocess.db", progress=False)
out["inprocess"] = {"wall_s": time.monotonic() - t, "phases": local.phase_seconds,
                    "candidates": candidates(ws / "inprocess.db"),
                    "finals": candidates(ws / "inprocess.db", "final")}

# A latency predictor fitted on the in-process run's host measurements, for the phone run's --predictor.
from toolkit.predict import LatencyPredictor, read_kernels  # noqa: E402

with sqlite3.connect(ws / "inprocess.db") as conn:
    host_rows = conn.execute("SELECT model_path, median_ms FROM measurements WHERE source='measured:host'").fetchall()
LatencyPredictor.fit_networks([read_kernels(p) for p, _ in host_rows], [ms for _, ms in host_rows], device="host",
                              members=8).save(ws / "host.joblib")

shared = ws / "ray"
shared.mkdir()
for name in ("prototype_op_profile.json", "importance.npz"):
    shutil.copy(ws / "inprocess" / name, shared / name)
child = [sys.executable, __file__, str(ws), str(tiny), "--ray-run"]
t = time.monotonic()
first = subprocess.Popen(child)
stored = []
while first.poll() is None:
    if (ws / "ray.db").exists():
        try:
            stored = [c for c in candidates(ws / "ray.db") if c[0].startswith("c")]
        except sqlite3.OperationalError:
            stored = []
        if stored:
            os.kill(first.pid, signal.SIGKILL)  # the driver dies mid-search; its Ray tasks die with its job
            break
    time.sleep(0.05)
first.wait()
out["killed"] = {"returncode": first.returncode, "stored_before": len(stored)}
resumed = subprocess.run(child + ["--resume"])
assert resumed.returncode == 0, resumed.returncode
with sqlite3.connect(ws / "ray.db") as conn:
    out["ray_rows"] = conn.execute("SELECT COUNT(*), COUNT(DISTINCT candidate_id) FROM candidates").fetchone()
out["ray"] = {"wall_s": time.monotonic() - t, "phases": json.loads((shared / "phases.json").read_text()),
              "candidates": candidates(ws / "ray.db"), "finals": candidates(ws / "ray.db", "final")}
import ray  # noqa: E402 - only to read the cluster's size

ray.init(address="127.0.0.1:6379", log_to_driver=False)
out["ray"]["cluster_cpus"] = ray.cluster_resources().get("CPU")
ray.shutdown()

# The phone target: a virtual phone on this host, registered by its own `ferminet agent` (a Ray node of its own).
from android_harness.virtual import VirtualPhone  # noqa: E402
from toolkit.scale import connect, disconnect, wait_for_phones  # noqa: E402

with VirtualPhone("pixel_6") as phone, open(ws / "agent.log", "w") as agent_log:
    agent = subprocess.Popen([sys.executable, "-m", "toolkit.cli.main", "agent", "--ray-address", "127.0.0.1:6379",
                              "--connect", phone.serial], stdout=agent_log, stderr=subprocess.STDOUT)
    try:
        connect("127.0.0.1:6379")
        wait_for_phones([phone.serial], timeout_s=300)
        disconnect()
        t = time.monotonic()
        with open(ws / "phones.out", "w") as so, open(ws / "phones.err", "w") as se:
            run = subprocess.Popen(child + ["--phones"], stdout=so, stderr=se, text=True)
            killed = kill_first_task_worker(run, "ray::_evaluate_task")  # a worker dies mid-task
            run.wait()
        stdout = (ws / "phones.out").read_text()
        assert run.returncode == 0, (ws / "phones.err").read_text()[-6000:] + (ws / "agent.log").read_text()[-3000:]
        out["phones"] = {"wall_s": time.monotonic() - t, "serial": phone.serial, "killed_worker": killed,
                         **json.loads(stdout.split("SERIALS ", 1)[1].splitlines()[0]),
                         "candidates": candidates(ws / "phones.db"),
                         "finals": candidates(ws / "phones.db", "final"),
                         "measurements": measurements(ws / "phones.db"),
                         "op_profile": json.loads((ws / "phones" / "prototype_op_profile.json").read_text()),
                         "phases": json.loads((ws / "phones" / "phases.json").read_text()),
                         "screen": json.loads((ws / "phones" / "screen.json").read_text())}
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
print("RESULT " + json.dumps(out), flush=True)
