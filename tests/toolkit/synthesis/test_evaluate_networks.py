"""``evaluate_networks``: any networks of a finished run's space, evaluated as its search evaluated its candidates
(what ``generate`` and ``benchmarks/proxy_rank.py`` build on), and refused with the fix where there is no supernet."""
import json
import shutil
import sqlite3

import pytest

from toolkit.errors import InvalidArgumentError
from toolkit.synthesis import SynthesisConfig
from toolkit.synthesis.generate import evaluate_networks
from toolkit.synthesis.loop import _write_run_file


def _never(space):
    raise AssertionError("no network may be proposed for a run that is refused")


@pytest.mark.parametrize("strategy, match", [("l1prune", "has no supernet to take weights from"),
                                             ("gensynth", "has not finished training its supernet; resume it")])
def test_a_run_without_a_trained_supernet_is_refused_before_anything_is_written(tmp_path, strategy, match):
    run = tmp_path / "run"
    run.mkdir()
    config = SynthesisConfig(strategy=strategy, supernet_epochs=2)
    _write_run_file(run / "run.json", "synthesis-x", config, tmp_path / "s.db")
    with pytest.raises(InvalidArgumentError, match=match):
        evaluate_networks(run, _never)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and [p.name for p in run.iterdir()] == ["run.json"]


def test_proposed_networks_are_evaluated_as_the_search_did_and_stored_as_a_run_of_their_own(tmp_path,
                                                                                            tiny_synthesis):
    result, _ = tiny_synthesis
    run = tmp_path / "run"  # a copy: the shared run is only read
    shutil.copytree(result.out_dir, run)
    db = tmp_path / "copy.db"
    shutil.copy(result.db, db)
    with sqlite3.connect(db) as conn:
        searched = conn.execute("SELECT candidate_id, int8_top1, macs, extra_json FROM candidates WHERE run_id=? AND "
                                "phase='search' AND cycle>=0 AND status='ok' ORDER BY candidate_id",
                                (result.run_id,)).fetchall()
    seen = []

    def propose(space):
        seen.append(space)
        # Two networks the search evaluated: the same evaluator and split must give the same proxy and MACs. The
        # first proposed a second time is a repeat: not evaluated or stored again.
        two = [(f"again-{cid}", None, json.loads(extra)["choices"]) for cid, _, _, extra in searched[:2]]
        return two + [("repeat", None, two[0][2])]

    out = evaluate_networks(run, propose, db, keep=False, command="test", options={"why": "test"})
    assert len(seen) == 1 and len(out.networks) == 2 and out.sampled == out.networks
    assert out.repeats == (("repeat", f"again-{searched[0][0]}"),)
    for (cid, top1, macs, _), c in zip(searched[:2], out.networks):
        assert c.candidate_id == f"again-{cid}" and c.status == "ok" and c.strategy == "sampled"
        assert c.macs == macs and c.int8_top1 == pytest.approx(top1, abs=1e-9), (cid, c.int8_top1, top1)
        assert c.tflite_path is None  # keep=False: no files left behind
    assert not any((run / "generated").iterdir())
    with sqlite3.connect(db) as conn:
        kind, status = conn.execute("SELECT kind, status FROM runs WHERE run_id=?", (out.run_id,)).fetchone()
        stored = conn.execute("SELECT COUNT(*) FROM candidates WHERE run_id=?", (out.run_id,)).fetchone()[0]
    assert (kind, status, stored) == ("sample", "done", 2) and out.source_run_id == result.run_id
