"""Runs inside the test's network namespace (see conftest.py): the same tiny synthesis in-process and with
``--executor ray`` on the namespace's 2-CPU Ray cluster. Prints one JSON line: each run's candidates and times.

The Ray run starts from the in-process run's prototype, channel importance, per-op profile and supernet (copied or
named, as `--supernet-from` does), so the two runs differ only in where candidates are evaluated.

usage: _driver_synthesis.py WORKDIR
"""
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from toolkit.scale.tasks import RayExecutor
from toolkit.synthesis import SynthesisConfig, run_synthesis

ws = Path(sys.argv[1])
config = SynthesisConfig(prototype="resnet20", prototype_width=0.25, n_train=300, prototype_epochs=1,
                         supernet_epochs=1, cycles=2, population=2, final_k=1, retrain_reference=False,
                         requirements=("accuracy_drop<=100pt", "macs<=1.5M", "params<=0.9x"))


def candidates(db, phase="search"):
    with sqlite3.connect(db) as conn:
        return [list(r) for r in conn.execute(
            "SELECT candidate_id, spec_hash, status, int8_top1, macs FROM candidates WHERE phase=? "
            "ORDER BY candidate_id", (phase,))]


out = {}
t = time.monotonic()
local = run_synthesis(config, ws / "inprocess", ws / "inprocess.db", progress=False)
out["inprocess"] = {"wall_s": time.monotonic() - t, "phases": local.phase_seconds,
                    "candidates": candidates(ws / "inprocess.db"),
                    "finals": candidates(ws / "inprocess.db", "final")}

shared = ws / "ray"
shared.mkdir()
for name in ("prototype_op_profile.json", "importance.npz"):
    shutil.copy(ws / "inprocess" / name, shared / name)
ray_config = SynthesisConfig(**{**config.to_dict(), "prototype_path": str(ws / "inprocess" / "prototype.keras"),
                                "supernet_path": str(ws / "inprocess"),
                                "requirements": config.requirements, "width_options": config.width_options,
                                "resolution_options": config.resolution_options})
t = time.monotonic()
executor = RayExecutor("127.0.0.1:6379")
remote = run_synthesis(ray_config, shared, ws / "ray.db", progress=False, executor=executor)
out["ray"] = {"wall_s": time.monotonic() - t, "phases": remote.phase_seconds, "candidates": candidates(ws / "ray.db"),
              "finals": candidates(ws / "ray.db", "final"),
              "cluster_cpus": executor.ray.cluster_resources().get("CPU")}
print(json.dumps(out))
