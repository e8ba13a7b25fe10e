"""`ferminet synthesize --predictor` on a phone farm of two device models (a virtual Pixel 6 and a virtual Pixel
4a, the real ADB protocol on loopback): each model gets its own predictor, fitted on its own measurements; a
predicted candidate stores a prediction for both models (``predicted:pixel_6`` and ``predicted:pixel_4a``), never a
measured or virtual label; a measured one is measured on both; screen.json counts per device agree with the store.
The run starts from the session's tiny prototype and supernet (``tiny_synthesis`` in tests/toolkit/conftest.py)."""
import dataclasses
import json
import sqlite3

from android_harness.virtual import VirtualPhone
from toolkit.synthesis import run_synthesis
from toolkit.synthesis.screen import MIN_FIT, read_summary


def _rows(db, sql, args=()):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


def test_two_device_models_each_get_their_own_predictor(tmp_path, tiny_synthesis, reuse_tiny):
    _, host_config = tiny_synthesis
    db = tmp_path / "farm.db"
    with VirtualPhone("pixel_6") as a, VirtualPhone("pixel_4a") as b:
        config = dataclasses.replace(host_config, target="android", device=a.serial, devices=(a.serial, b.serial),
                                     cycles=3, population=4, final_k=0, screen=True, measure_share=0.2,
                                     refit_every=3, **reuse_tiny)
        result = run_synthesis(config, tmp_path / "run", db, progress=False)
    assert result.stopped == "done"
    saved = json.loads((tmp_path / "run" / "screen.json").read_text())
    summary, decisions = saved["summary"], saved["decisions"]
    run_id = _rows(db, "SELECT DISTINCT run_id FROM candidates")[0]["run_id"]
    rows = {r["candidate_id"]: r for r in _rows(db, "SELECT * FROM candidates WHERE run_id=?", (run_id,))}

    def sources(cid):
        return sorted((m["source"], m["device"], m["count"]) for m in _rows(
            db, "SELECT * FROM measurements WHERE run_id=? AND model_id=?", (run_id, rows[cid]["model_id"])))

    # Every non-screened network (prototype, search reference) was measured on both models: both got data to fit.
    assert [s for s, _, _ in sources("prototype")] == ["virtual:pixel_4a", "virtual:pixel_6"]
    predicted = [c for c, d in decisions.items() if d["action"] == "predicted"]
    assert predicted, summary  # after the warm-up, some candidates were predicted
    for cid, d in decisions.items():
        other = d["others"]["Pixel 4a"]
        if d["action"] == "predicted":
            # Both models predicted, each by its own predictor, with its own phones' device field; nothing measured.
            assert other["action"] == "predicted" and other["device"] == "pixel_4a", (cid, d)
            assert sources(cid) == [("predicted:pixel_4a", b.serial, 0), ("predicted:pixel_6", a.serial, 0)]
            assert rows[cid]["latency_source"] == "predicted:pixel_6"
            assert rows[cid]["energy_source"] in (None, "predicted:pixel_6")
            assert other["predicted_latency_ms"]["source"] == "predicted:pixel_4a"
            assert d["predicted_latency_ms"]["source"] == "predicted:pixel_6"
            # Two models, two predictors: the same network's predictions differ (a Pixel 4a is slower).
            assert other["predicted_latency_ms"]["value"] != d["predicted_latency_ms"]["value"]
            m4a = _rows(db, "SELECT median_ms FROM measurements WHERE run_id=? AND model_id=? AND source=?",
                        (run_id, rows[cid]["model_id"], "predicted:pixel_4a"))[0]
            assert abs(m4a["median_ms"] - other["predicted_latency_ms"]["value"]) < 1e-9
        else:
            assert other["action"] == "measured"
            assert [s for s, _, _ in sources(cid)] == ["virtual:pixel_4a", "virtual:pixel_6"]
            assert abs(other["measured_latency_ms"] - _rows(
                db, "SELECT median_ms FROM measurements WHERE run_id=? AND model_id=? AND source=?",
                (run_id, rows[cid]["model_id"], "virtual:pixel_4a"))[0]["median_ms"]) < 1e-9
            # Band checked on the other model where its predictor had given a band.
            assert ("latency_miss" in other) == (other["predicted_latency_ms"] is not None)
    # The other model's band checks happened: candidates measured after its predictor was fitted.
    per = summary["per_device"]
    assert set(per) == {"pixel_6", "pixel_4a"} and per["pixel_6"]["require_on"] and not per["pixel_4a"]["require_on"]
    assert per["pixel_4a"]["checked_latency"] >= 1 and per["pixel_4a"]["refits"] >= 1
    # Counters agree with the store, per device.
    screened_ids = {rows[c]["model_id"] for c in decisions}
    for device in ("pixel_6", "pixel_4a"):
        stored = [m["source"] for m in _rows(db, "SELECT source, model_id FROM measurements WHERE run_id=?",
                                             (run_id,)) if m["model_id"] in screened_ids]
        assert per[device]["predicted"] == stored.count(f"predicted:{device}") == len(predicted)
        assert per[device]["measured"] == stored.count(f"virtual:{device}") == len(decisions) - len(predicted)
        entries = [d if device == "pixel_6" else d["others"]["Pixel 4a"] for d in decisions.values()]
        assert per[device]["band_misses_latency"] == sum(1 for e in entries if e.get("latency_miss"))
        assert per[device]["checked_latency"] == sum(1 for e in entries if "latency_miss" in e)
    # The summary's own fields stay the require-on model's.
    assert (summary["predicted"], summary["measured"]) == (per["pixel_6"]["predicted"], per["pixel_6"]["measured"])
    assert summary["checked_latency"] == per["pixel_6"]["checked_latency"]
    # Each device's predictor was fitted on that device's measured networks only (>= MIN_FIT of them).
    assert "on pixel_6" in summary["predictor"] and per["pixel_6"]["refits"] == summary["refits"] >= 1
    assert len(_rows(db, "SELECT 1 FROM measurements WHERE run_id=? AND source='virtual:pixel_4a'",
                     (run_id,))) >= MIN_FIT
    text = read_summary(tmp_path / "run").text()
    assert "other device models: pixel_4a:" in text


def test_resumed_screen_counts_each_device_from_saved_decisions(tmp_path):
    """A resumed run's screen reads its saved decisions (one per candidate, the other models under ``others``) and
    counts them per device again; a screen.json written before per-device counters still reads."""
    from toolkit.synthesis.screen import SUMMARY_FILE, Screen

    def band(value):
        return {"value": value, "low": value / 2, "high": value * 1.5, "near_low": value * 0.8,
                "near_high": value * 1.2, "uncertainty": value / 5, "source": "predicted:x"}

    def entry(action, miss=None, device="pixel_4a"):
        e = {"device": device, "action": action, "reason": None, "predicted_latency_ms": band(2.0),
             "predicted_energy_mj": None}
        return e if miss is None else {**e, "measured_latency_ms": 9.0 if miss else 2.0, "latency_miss": miss}

    decisions = {
        "c000-00": {"action": "measured", "reason": "warm-up", "predicted_latency_ms": None,
                    "predicted_energy_mj": None, "others": {"Pixel 4a": {**entry("measured"),
                                                                         "predicted_latency_ms": None}}},
        "c001-00": {"action": "measured", "reason": "elite", "predicted_latency_ms": band(1.0),
                    "predicted_energy_mj": None, "measured_latency_ms": 1.1, "latency_miss": False,
                    "others": {"Pixel 4a": entry("measured", miss=True)}},
        "c001-01": {"action": "predicted", "reason": None, "predicted_latency_ms": band(1.0),
                    "predicted_energy_mj": None, "others": {"Pixel 4a": entry("predicted")}},
        "c001-02": {"action": "predicted", "reason": None, "predicted_latency_ms": band(1.0),
                    "predicted_energy_mj": None, "others": {"Pixel 4a": entry("measured", miss=False)}},
    }
    old = {"screened": 4, "measured": 2, "predicted": 2, "reasons": {"warm-up": 1, "elite": 1}, "checked_latency": 1,
           "band_misses_latency": 0, "checked_energy": 0, "band_misses_energy": 0, "refits": 2, "predictor": "p"}
    (tmp_path / SUMMARY_FILE).write_text(json.dumps({"summary": old, "decisions": decisions}))
    assert read_summary(tmp_path).per_device == {}  # written before per-device counters: still reads

    s = Screen(tmp_path, share=0.2, refit_every=3, seed=0, final_k=1).write()
    assert (s.screened, s.measured, s.predicted, s.checked_latency, s.band_misses_latency) == (4, 2, 2, 1, 0)
    assert s.per_device == {
        "require-on": {"predicted": 2, "measured": 2, "checked_latency": 1, "band_misses_latency": 0,
                       "checked_energy": 0, "band_misses_energy": 0, "refits": 2, "require_on": True},
        "pixel_4a": {"predicted": 1, "measured": 3, "checked_latency": 2, "band_misses_latency": 1,
                     "checked_energy": 0, "band_misses_energy": 0, "refits": 0, "require_on": False}}
    assert "other device models: pixel_4a: 1 predicted, 3 measured, band misses latency 1/2" in s.text()
    assert read_summary(tmp_path) == s  # per-device counters round-trip through screen.json
