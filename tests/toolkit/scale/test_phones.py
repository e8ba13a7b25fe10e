"""Phones as Ray resources: `ferminet agent` per phone host, RayPhonePool on the driver, on a real local Ray cluster
in the test's own network namespace (conftest.py), with virtual phones speaking the real ADB protocol."""


def test_agent_phones_survive_a_killed_worker_and_a_leaving_host(ray_cluster, int8_tflite):
    r = ray_cluster.run_driver("_driver_phones.py", str(int8_tflite[0]), timeout=480)
    a, b = r["serials"]
    # Each agent added its phone's model and serial as custom resources of its own node.
    assert set(r["resources"]) == {"phone:Pixel 6", f"phone-serial:{a}", f"phone-serial:{b}"}
    assert r["models"] == ["Pixel 6"]
    # The actor's process was killed mid-measurement: Ray restarted the actor and the measurement completed.
    assert r["pid_after"] != r["pid_before"]
    assert r["retried"]["device"] == a and r["retried"]["source"] == "virtual:pixel_6"
    assert r["retried"]["count"] >= 5 and r["retried"]["jobs_done"] == 1
    # B's host left while measuring: all four jobs completed, the lost one on A; B is marked unreachable.
    assert len(r["after_leave"]) == 4 and r["after_leave"].count(a) >= 3
    status = {serial: (reachable, done) for serial, reachable, done in r["status"]}
    assert status[b][0] is False and status[a][0] is True
    assert status[a][1] + status[b][1] == 4
    assert "agent stopped" in r["agent_b_output"], r["agent_b_output"]


def test_agent_with_an_unreachable_phone_fails_in_one_line_before_joining(capsys):
    # The phone is read before any Ray node starts: nothing joins a cluster (no Ray runs outside the namespace).
    from toolkit.cli.main import main

    code = main(["agent", "--ray-address", "127.0.0.1:6379", "--connect", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("ferminet: error:") and "127.0.0.1:1" in err
    assert len(err.strip().splitlines()) == 1
