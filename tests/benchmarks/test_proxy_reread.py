"""``benchmarks/proxy_reread.py``: a final's proxy is its search proxy, also when it came through the shortlist."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from proxy_reread import stored_finals  # noqa: E402

from toolkit.store import Store  # noqa: E402


def _row(conn, run_id, cid, phase, parent, proxy, int8, test=None, macs=1_000_000, spec="h"):
    conn.execute("INSERT INTO candidates(run_id, candidate_id, cycle, strategy, parent, spec_hash, status, int8_top1, "
                 "macs, phase, test_top1, proxy_top1, extra_json, created_at) VALUES (?, ?, 0, 'gensynth', ?, ?, 'ok', "
                 "?, ?, ?, ?, ?, ?, 0)", (run_id, cid, parent, spec, int8, macs, phase, test, proxy,
                                           json.dumps({"choices": {"width": cid}})))


def test_shortlisted_final_keeps_its_search_proxy(tmp_path):
    folder = tmp_path / "gensynth"
    folder.mkdir()
    with Store(tmp_path / "bench.db") as store:
        run_id = store.record_run("synthesis", options={})
        with store.transaction() as conn:
            # through the shortlist: search proxy 0.78, shortlist top-1 0.84, final 0.895 / 0.899
            _row(conn, run_id, "c004-11", "search", "prototype", None, 0.7815, spec="a")
            _row(conn, run_id, "short-c004-11", "shortlist", "c004-11", 0.7815, 0.8415, spec="a")
            _row(conn, run_id, "final-c004-11", "final", "short-c004-11", 0.8415, 0.895, test=0.8987, spec="a")
            # chosen on the search's proxy directly
            _row(conn, run_id, "c001-02", "search", "prototype", None, 0.75, spec="b")
            _row(conn, run_id, "final-c001-02", "final", "c001-02", 0.75, 0.88, test=0.87, spec="b")
        finals = {f["candidate_id"]: f for f in stored_finals(store, run_id, folder)}
    assert set(finals) == {"final-c004-11", "final-c001-02"}
    assert finals["final-c004-11"]["proxy_stored"] == 0.7815  # not the shortlist's 0.8415
    assert finals["final-c001-02"]["proxy_stored"] == 0.75
    assert finals["final-c004-11"]["test_top1"] == 0.8987
