"""``--space-root``: the search space comes from another architecture than the prototype (dsnet), while the
prototype stays the reference. A tiny run (the shared run's prototype, its own dsnet root and supernet) checks that
the root is trained and stored with its gap to the prototype, that the search searches dsnet children and measures
their drop against the prototype (the root's proxy plus the root's own gap), and that the final is judged against
the prototype."""
import dataclasses
import json
import sqlite3

import pytest

from toolkit.arch import build_model, count_macs, get_prototype
from toolkit.errors import InvalidArgumentError
from toolkit.synthesis import SynthesisConfig, run_synthesis
from toolkit.synthesis.space import DecisionSpace


def test_space_root_is_checked_when_the_run_is_defined():
    with pytest.raises(InvalidArgumentError, match="Unknown space root 'resnet99'"):
        SynthesisConfig(space_root="resnet99")
    with pytest.raises(InvalidArgumentError, match="gensynth and random strategies: width scales the prototype"):
        SynthesisConfig(strategy="width", space_root="dsnet")


def test_dsnet_space_reaches_ten_times_fewer_macs_than_resnet20():
    resnet20 = count_macs(build_model(get_prototype("resnet20")))
    space = DecisionSpace.from_prototype(get_prototype("dsnet"))
    root = count_macs(build_model(space.prototype))
    smallest = count_macs(build_model(space.apply({d.name: min(d.options) if d.kind != "keep" else False
                                                   for d in space.decisions})))
    assert root < resnet20 / 3 and smallest < resnet20 / 50
    assert {d.kind for d in space.decisions} == {"width", "keep", "kernel", "resolution"}


@pytest.fixture(scope="module")
def root_run(tiny_synthesis, tmp_path_factory):
    result, shared = tiny_synthesis
    ws = tmp_path_factory.mktemp("space-root")
    config = SynthesisConfig.from_dict({**shared.to_dict(), "space_root": "dsnet", "cycles": 1, "population": 2,
                                        "final_k": 1, "requirements": ("accuracy_drop<=0pt",),
                                        "retrain_reference": True, "distill": True,  # the final learns from it
                                        "prototype_path": f"{result.out_dir}/prototype.keras"})
    run = run_synthesis(config, ws / "run", ws / "r.db", progress=False)
    with sqlite3.connect(ws / "r.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = {r["candidate_id"]: dict(r) for r in conn.execute("SELECT * FROM candidates")}
    return run, rows, ws / "run"


def test_the_root_is_trained_stored_and_measured_against_the_prototype(root_run):
    run, rows, out = root_run
    root, proto = rows["space-root"], rows["prototype"]
    assert json.loads(root["spec_json"])["name"] == "dsnet" and root["cycle"] == -1 and root["phase"] == "search"
    assert root["macs"] == count_macs(build_model(get_prototype("dsnet"))) and (out / "space_root.keras").is_file()
    # Its drop is against the prototype (resnet20), not itself: it meets accuracy_drop<=0pt only by matching it.
    assert bool(root["requirements_met"]) == (root["int8_top1"] >= proto["int8_top1"])
    assert json.loads(proto["spec_json"])["name"] == "resnet20" and run.prototype.macs == proto["macs"]
    # The supernet was built over the root, and says so (a run reusing it must give the same --space-root).
    state = json.loads((out / "supernet" / "supernet.json").read_text())
    assert state["root"] == get_prototype("dsnet").spec_hash()


def test_search_candidates_are_root_children_with_their_drop_against_the_prototype(root_run):
    run, rows, _ = root_run
    gap = rows["prototype"]["int8_top1"] - rows["space-root"]["int8_top1"]
    reference = rows["supernet-max"]["int8_top1"] + gap
    assert len(run.candidates) == 2
    for c in run.candidates:
        kinds = {b["kind"] for b in json.loads(rows[c.candidate_id]["spec_json"])["blocks"]}
        assert kinds <= {"conv_bn_relu", "depthwise_separable", "classifier"}, kinds
        drop = (reference - c.int8_top1) * 100.0  # accuracy_drop<=0pt: violation = drop / 100 when it fails
        assert c.feasible == (drop <= 1e-9) and c.violation == pytest.approx(max(drop, 0.0) / 100.0, abs=1e-9)


def test_the_final_is_a_root_child_judged_against_the_prototype(root_run):
    run, rows, _ = root_run
    (final,) = run.finals
    assert final.status == "ok" and final.test_top1 is not None
    assert {b["kind"] for b in json.loads(rows[final.candidate_id]["spec_json"])["blocks"]} <= {
        "conv_bn_relu", "depthwise_separable", "classifier"}
    # The reference is the prototype architecture (resnet20) given the finals' extra training, never the root.
    reference = run.reference
    assert reference.status == "ok" and reference.macs == run.prototype.macs and reference.choices == {}
    assert {b["kind"] for b in json.loads(rows["reference"]["spec_json"])["blocks"]} == {
        "conv_bn_relu", "resnet_basic", "classifier"}
    judge = max(run.prototype.int8_top1, reference.int8_top1)  # the stronger on validation
    drop = (judge - final.int8_top1) * 100.0
    assert final.feasible == (drop <= 1e-9) and final.violation == pytest.approx(max(drop, 0.0) / 100.0, abs=1e-9)


def test_a_run_judges_its_finals_against_another_runs_reference(root_run, tmp_path):
    """``reference_path`` (``--reference-from``): the other run's reference is assessed here, not trained again;
    a reference trained with another recipe is refused before anything is written."""
    import numpy as np

    from toolkit.convert import load_keras_model

    first, rows, out = root_run
    config = SynthesisConfig.from_dict({**SynthesisConfig.from_dict(json.loads((out / "run.json").read_text())[
        "config"]).to_dict(), "strategy": "random", "reference_path": str(out), "supernet_path": str(out)})
    other = dataclasses.replace(config, final_epochs=config.prototype_epochs + 1)
    with pytest.raises(InvalidArgumentError, match=r"another recipe .*final_epochs=1 there, 2 here"):
        run_synthesis(other, tmp_path / "refused", tmp_path / "r.db", progress=False)
    assert not (tmp_path / "refused").exists()

    run = run_synthesis(config, tmp_path / "run", tmp_path / "r.db", progress=False)
    assert run.reference.status == "ok" and run.reference.macs == first.reference.macs
    assert run.reference.int8_top1 == first.reference.int8_top1  # the same network on the same validation images
    assert run.reference.test_top1 == first.reference.test_top1
    kept = load_keras_model(tmp_path / "run" / "finals" / "reference.keras")
    for mine, theirs in zip(kept.get_weights(), load_keras_model(out / "finals" / "reference.keras").get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_final_budget_retrains_a_final_with_and_without_the_runs_teacher(root_run, tmp_path, monkeypatch, capsys):
    """``benchmarks/final_budget.py --distill none,reference`` over a run with a space root: the teacher is what the
    run's finals learned from (the stronger of its reference and prototype), and the reference row is the run's."""
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[3] / "benchmarks"))
    import final_budget

    run, rows, out = root_run
    final = next(r for r in rows.values() if r["phase"] == "final" and r["status"] == "ok")
    judge = "reference" if rows["reference"]["int8_top1"] > rows["prototype"]["int8_top1"] else "prototype"
    monkeypatch.setattr(sys, "argv", [
        "final_budget.py", "--run", str(out), "--db", str(out.parent / "r.db"), "--epochs", "1",
        "--reference", "stored", "--distill", "none,reference", "--work", str(tmp_path / "work"),
        "--networks", f"{final['strategy']}:{final['candidate_id']}@{out}", "--results", str(tmp_path / "b.json")])
    assert final_budget.main() == 0
    assert f"teacher 'reference': the run's {judge} (" in capsys.readouterr().out
    record = json.loads((tmp_path / "b.json").read_text())
    assert record["reference_teacher"] == judge
    got = [(r["network"], r.get("teacher"), r["macs"]) for r in record["rows"]]
    assert got == [("reference", None, run.prototype.macs), (f"{final['strategy']}:{final['candidate_id']}", "none",
                   final["macs"]), (f"{final['strategy']}:{final['candidate_id']}", "reference", final["macs"])]
    assert record["distillation_gains"]["reference"]["pairs"] == 1
