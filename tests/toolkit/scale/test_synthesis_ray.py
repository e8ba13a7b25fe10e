"""`synthesize --executor ray`: the same tiny synthesis in-process and on a 2-CPU local Ray cluster (in the test's
own network namespace) gives the same candidates, also when the Ray run's driver is killed mid-search and resumed;
the driver alone writes the store. Then one cycle of it with a phone target: prototype and supernet trained by Ray
tasks, the candidates converted by Ray tasks, screened by --predictor on the driver and measured on a virtual phone
that a `ferminet agent` registered in the cluster.

The in-process and Ray runs start from the session's shared tiny run's prototype and supernet (``tiny_synthesis`` in
tests/toolkit/conftest.py, same images): what they are compared on is the search and the final, not that training.
The phone run still trains its own prototype and supernet, as Ray tasks."""
import pytest


@pytest.fixture(scope="module")
def runs(tiny_synthesis, ray_cluster, tmp_path_factory):
    """One pass of _driver_synthesis.py: in-process, Ray (killed and resumed), Ray with the agent's phone."""
    return ray_cluster.run_driver("_driver_synthesis.py", str(tmp_path_factory.mktemp("synthesis")),
                                  tiny_synthesis[0].out_dir, timeout=600)


def test_same_seeds_same_candidates_in_process_and_on_ray_after_kill_and_resume(runs):
    r = runs
    local, remote = r["inprocess"]["candidates"], r["ray"]["candidates"]
    assert r["ray"]["cluster_cpus"] == 2.0
    # The Ray run's driver was killed (SIGKILL) after storing part of the search, then resumed: nothing written twice.
    assert r["killed"]["returncode"] == -9 and 1 <= r["killed"]["stored_before"] < 4
    assert r["ray_rows"][0] == r["ray_rows"][1]
    # supernet-max plus 2 cycles x 2 candidates, every one evaluated (none failed), once each.
    assert [c[0] for c in local] == ["c000-00", "c000-01", "c001-00", "c001-01", "supernet-max"]
    assert all(c[2] == "ok" for c in local)
    # Same ids, same architectures (spec hash), same MACs, same proxy accuracy within float noise.
    assert [(c[0], c[1], c[4]) for c in remote] == [(c[0], c[1], c[4]) for c in local]
    assert all(abs(a[3] - b[3]) < 1e-6 for a, b in zip(local, remote))
    # The final (trained as a Ray task on a worker) is the same network, evaluated, stored once by the driver.
    local_f, remote_f = r["inprocess"]["finals"], r["ray"]["finals"]
    assert len(local_f) == 1 and [f[:2] for f in remote_f] == [f[:2] for f in local_f]
    assert remote_f[0][2] == "ok" and remote_f[0][3] is not None
    print("wall s: in-process", {k: round(v, 1) for k, v in r["inprocess"]["phases"].items()},
          "ray", {k: round(v, 1) for k, v in r["ray"]["phases"].items()}, "killed", r["killed"])


def test_ray_run_on_the_agents_phone_measures_every_network_there(runs):
    p, local = runs["phones"], runs["inprocess"]["candidates"]
    # The executor found the phone the agent registered; the run measured on it.
    assert p["serials"] == [p["serial"]]
    # The prototype and the supernet were trained by Ray tasks, in worker processes, not by the driver.
    assert set(p["trained_by"]) == {"prototype", "supernet"}
    assert p["driver_pid"] not in p["trained_by"].values()
    # A Ray worker was killed (SIGKILL) while it ran a candidate's task: Ray ran the task again, the run completed.
    assert p["killed_worker"] is not None
    # Cycle 0 proposes the same candidates as in-process (same seed, same space), all evaluated.
    assert [c[:2] for c in p["candidates"]] == [c[:2] for c in local if c[0].startswith("c000") or c[0] == "supernet-max"]
    assert all(c[2] == "ok" for c in p["candidates"])
    # Every stored network (prototype, candidates, supernet-max, the final) was measured on the agent's phone, and
    # says so: latency and energy from the virtual phone, never the workers' host.
    rows = {m[0]: m for m in p["measurements"]}
    assert set(rows) == {"prototype", "c000-00", "c000-01", "supernet-max", p["finals"][0][0]}
    for cid, latency_source, energy_source, energy_mj, device, source in p["measurements"]:
        assert device == p["serial"] and source == "virtual:pixel_6", (cid, device, source)
        assert latency_source == "virtual:pixel_6" and energy_source == "virtual:pixel_6", cid
    # The final: trained and converted by a Ray task, measured on the phone, its test top-1 read by the driver.
    assert len(p["finals"]) == 1 and p["finals"][0][2] == "ok" and p["finals"][0][3] is not None
    # --predictor on the driver: each search candidate was screened (a band from the host predictor) when its Ray
    # task completed, then measured on the phone (share 1), and its band checked against the phone's value.
    summary, decisions = p["screen"]["summary"], p["screen"]["decisions"]
    assert set(decisions) == {"c000-00", "c000-01"} and summary["predicted"] == 0
    assert all(d["action"] == "measured" and d["predicted_latency_ms"]["source"] == "predicted:host"
               and d["measured_latency_ms"] > 0 for d in decisions.values())
    assert summary["checked_latency"] == 2
    # The inquisitor's per-op profile of the prototype came from the phone too.
    assert p["op_profile"] and all(o["avg_ms"] >= 0 for o in p["op_profile"])
    print("phone run wall s:", round(p["wall_s"], 1), {k: round(v, 1) for k, v in p["phases"].items()})


def test_ray_address_without_the_ray_executor_is_refused(tmp_path, capsys):
    from toolkit.cli.main import main

    code = main(["synthesize", "--out", str(tmp_path / "run"), "--ray-address", "127.0.0.1:6379"])
    err = capsys.readouterr().err
    assert code == 2 and "--ray-address is for --executor ray" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
