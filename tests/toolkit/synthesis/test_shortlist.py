"""``--shortlist N``: search candidates fine-tuned and judged again before the finals are chosen among them
(toolkit.synthesis.shortlist). A real run on the shared tiny run's prototype and supernet."""
import sqlite3

import pytest

from toolkit.errors import InvalidArgumentError
from toolkit.synthesis import SynthesisConfig, run_synthesis
from toolkit.synthesis.finals import choose_finals


def _config(shared, reuse, **changes) -> SynthesisConfig:
    return SynthesisConfig(**{**shared.to_dict(), "requirements": shared.requirements,
                              "width_options": shared.width_options, "resolution_options": shared.resolution_options,
                              **reuse, **changes})


@pytest.fixture(scope="module")
def shortlisted(tiny_synthesis, tmp_path_factory):
    result, shared = tiny_synthesis
    reuse = dict(prototype_path=f"{result.out_dir}/prototype.keras", supernet_path=result.out_dir)
    # accuracy_drop<=0pt: a network meets it only by matching its reference, so which reference a drop is judged
    # against shows in every verdict.
    config = _config(shared, reuse, final_k=2, shortlist=4, shortlist_images=300, cycles=2, population=4,
                     requirements=("accuracy_drop<=0pt",))
    ws = tmp_path_factory.mktemp("shortlist")
    run = run_synthesis(config, ws / "run", ws / "s.db", progress=False)
    return run, config, ws


def _rows(db, run_id):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["candidate_id"]: r for r in conn.execute("SELECT * FROM candidates WHERE run_id=?", (run_id,))}


def test_the_shortlist_is_the_finals_rule_over_the_search_fine_tuned_and_never_read_on_test(shortlisted):
    run, config, _ = shortlisted
    rows = _rows(run.db, run.run_id)
    picked = choose_finals(run.candidates, config.shortlist)
    assert [c.candidate_id for c in run.shortlist] == [f"short-{p.candidate_id}" for p in picked]
    assert len(run.shortlist) >= config.final_k
    for c, parent in zip(run.shortlist, picked):
        row = rows[c.candidate_id]
        assert row["phase"] == "shortlist" and row["parent"] == parent.candidate_id
        assert row["spec_hash"] == parent.spec_hash and row["macs"] == parent.macs
        assert row["proxy_top1"] == pytest.approx(parent.int8_top1)
        assert row["test_top1"] is None and row["test_requirements_met"] is None  # validation only
        assert row["latency_ms"] > 0  # measured on the target like any network
    # Fine-tuning changed what the networks score (the proxy has no training at all).
    assert any(abs(c.int8_top1 - c.proxy_top1) > 1e-9 for c in run.shortlist)


def test_shortlist_drops_are_judged_against_the_prototype_fine_tuned_the_same_way(shortlisted):
    run, _, _ = shortlisted
    rows = _rows(run.db, run.run_id)
    ref = rows["short-reference"]
    assert ref["phase"] == "shortlist" and ref["test_top1"] is None
    assert ref["int8_top1"] != rows["supernet-max"]["int8_top1"]  # a reference of its own, not the search's
    for c in run.shortlist:  # accuracy_drop<=0pt holds exactly when it matches the fine-tuned prototype
        assert c.feasible == (c.int8_top1 >= ref["int8_top1"]), c


def test_finals_are_chosen_among_the_shortlist_on_its_numbers(shortlisted):
    run, config, _ = shortlisted
    rows = _rows(run.db, run.run_id)
    chosen = choose_finals(run.shortlist, config.final_k)
    assert [c.candidate_id for c in run.finals] == [f"final-{c.parent}" for c in chosen]
    for final, parent in zip(run.finals, chosen):
        row = rows[final.candidate_id]
        assert row["phase"] == "final" and row["parent"] == parent.candidate_id
        assert row["proxy_top1"] == pytest.approx(parent.int8_top1)  # the shortlist's number it was chosen on
        assert row["test_top1"] is not None
    assert "shortlist" in run.phase_seconds


def test_a_resumed_run_reuses_its_shortlist_and_finals(shortlisted):
    run, config, ws = shortlisted
    before = _rows(run.db, run.run_id)
    again = run_synthesis(config, run.out_dir, run.db, resume=True, progress=False)
    after = _rows(run.db, run.run_id)
    assert set(after) == set(before)  # nothing evaluated twice
    assert [c.candidate_id for c in again.finals] == [c.candidate_id for c in run.finals]
    assert [c.int8_top1 for c in again.shortlist] == [c.int8_top1 for c in run.shortlist]


@pytest.mark.parametrize("changes, message", [
    (dict(shortlist=2, final_k=3), r"needs at least final_k \(3\) networks.*--shortlist 12"),
    (dict(shortlist=-1), r"shortlist must be an integer >= 0"),
    (dict(shortlist=12, final_k=0), r"with final_k=0 there are none"),
    (dict(shortlist=12, shortlist_images=0), r"shortlist_images must be an integer >= 1"),
])
def test_bad_shortlist_settings_are_refused(changes, message):
    with pytest.raises(InvalidArgumentError, match=message):
        SynthesisConfig(**changes)
