"""`ferminet synthesize --predictor`: a tiny real synthesis on the host target where some candidates are predicted
and some measured (the screen's rule, provenance, counters, refits), and a run with a deliberately wrong
predictor (fitted on a 10x faster device's numbers) whose bands the measurements fall out of."""
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TINY = dict(prototype="resnet20", prototype_width=0.25, n_train=1000, n_val=300, n_eval=100)
BOUND = 0.8  # latency_ms<=0.8x: some candidates' predicted bands straddle it, others stay below it


def ferminet(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "toolkit.cli.main", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def _rows(db, sql, args=()):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    ws = tmp_path_factory.mktemp("screen")
    done = ferminet("synthesize", "--prototype", "resnet20", "--prototype-width", "0.25", "--train-samples", "1000",
                    "--val-samples", "300", "--eval-samples", "100", "--prototype-epochs", "1", "--supernet-epochs",
                    "0", "--cycles", "2", "--population", "6", "--final-k", "1", "--no-reference-retrain",
                    "--require", "accuracy_drop<=100pt", "--require", f"latency_ms<={BOUND}x",
                    "--predictor", "--refit-every", "3", "--measure-share", "0", "--out", "run", "--db", "f.db", cwd=ws)
    assert done.returncode == 0, done.stderr[-3000:]
    return ws, done


def test_screened_run_predicts_some_measures_where_it_matters(screened):
    ws, done = screened
    db = ws / "f.db"
    saved = json.loads((ws / "run" / "screen.json").read_text())
    summary, decisions = saved["summary"], saved["decisions"]
    rows = {r["candidate_id"]: r for r in _rows(db, "SELECT * FROM candidates")}
    proto = rows["prototype"]
    bound_ms = BOUND * proto["latency_ms"]

    # Counters consistent: every screened candidate is either measured or predicted (a measurement saved).
    assert summary["screened"] == len(decisions) == summary["measured"] + summary["predicted"]
    assert summary["measured"] == sum(summary["reasons"].values())
    assert summary["predicted"] >= 1 and summary["measured"] >= 1, summary
    assert f"measurements saved: {summary['predicted']}" in done.stdout
    # Screened = the search candidates of the cycles that were evaluated (not copies of an evaluated twin).
    search = [r for r in rows.values() if r["phase"] == "search" and r["cycle"] >= 0 and r["status"] == "ok"]
    first_of_spec = {rows["supernet-max"]["spec_hash"]: "supernet-max"}  # a twin of it is copied, not screened
    for r in sorted(search, key=lambda r: (r["cycle"], r["candidate_id"])):
        first_of_spec.setdefault(r["spec_hash"], r["candidate_id"])
    assert set(decisions) == set(first_of_spec.values()) - {"supernet-max"}

    straddled = 0
    for cid, d in decisions.items():
        r = rows[cid]
        kind = r["latency_source"].split(":")[0]
        if d["action"] == "predicted":
            # Stored as a prediction, never as a measurement: candidate row and measurement row say predicted.
            assert r["latency_source"] == "predicted:host" and r["energy_source"] in (None, "predicted:host")
            assert abs(r["latency_ms"] - d["predicted_latency_ms"]["value"]) < 1e-9
            m = _rows(db, "SELECT * FROM measurements WHERE model_id=?", (r["model_id"],))
            assert [x["source"] for x in m] == ["predicted:host"] and m[0]["count"] == 0
        else:
            assert kind == "measured" and r["latency_source"] == "measured:host"
            assert abs(r["latency_ms"] - d["measured_latency_ms"]) < 1e-9
        band = d["predicted_latency_ms"]
        if band is not None and band["near_low"] <= bound_ms < band["near_high"]:
            straddled += 1  # within one sigma of the bound: it must have been measured, for that reason
            assert d["action"] == "measured" and d["reason"] in ("near a bound", "warm-up"), (cid, d)
    assert straddled >= 1
    # Warm-up: nothing is predicted before the run's own predictor exists (fitted after 5 measurements).
    assert summary["reasons"]["warm-up"] >= 1 and summary["reasons"]["share"] == 0  # --measure-share 0
    order = sorted(decisions, key=lambda c: (rows[c]["cycle"], c))
    first_predicted = next(i for i, c in enumerate(order) if decisions[c]["action"] == "predicted")
    assert all(decisions[c]["reason"] == "warm-up" for c in order[:3]) and first_predicted >= 3
    # Fitted and refitted by the rule, on measured rows only: before each decision, once 5 networks are measured
    # (prototype + search reference + measured candidates), then every --refit-every (3) new ones. How many
    # candidates get measured after the first fit depends on the host's timings, so the count is replayed from
    # the decisions rather than fixed.
    measured_rows, fitted_at, refits = 2, None, 0
    for c in order:
        if (fitted_at is None and measured_rows >= 5) or (fitted_at is not None and measured_rows - fitted_at >= 3):
            fitted_at, refits = measured_rows, refits + 1
        measured_rows += decisions[c]["action"] == "measured"
    assert refits >= 1 and summary["refits"] == refits
    assert int(re.search(r"(\d+) networks", summary["predictor"]).group(1)) == fitted_at
    # Band misses are counted over measured candidates that also had a prediction.
    assert summary["checked_latency"] == sum(1 for d in decisions.values()
                                             if d["action"] == "measured" and d["predicted_latency_ms"] is not None)
    assert summary["band_misses_latency"] == sum(1 for d in decisions.values() if d.get("latency_miss"))
    # Finals and the prototype are always measured.
    finals = [r for r in rows.values() if r["phase"] == "final"]
    assert finals and all(r["latency_source"] == "measured:host" for r in finals + [proto])
    assert rows["supernet-max"]["latency_source"] == "measured:host"


def test_wrong_predictor_gives_band_misses(screened, tmp_path):
    from toolkit.predict import LatencyPredictor, read_kernels
    from toolkit.synthesis import SynthesisConfig, run_synthesis

    ws, _ = screened
    measured = _rows(ws / "f.db", "SELECT model_path, median_ms FROM measurements WHERE source='measured:host'")
    # A predictor of another device, ten times faster than this host: confident, and wrong here.
    wrong = LatencyPredictor.fit_networks([read_kernels(r["model_path"]) for r in measured],
                                          [r["median_ms"] / 10 for r in measured], device="fast_phone", members=8)
    path = wrong.save(tmp_path / "fast.joblib")
    config = SynthesisConfig(**TINY, prototype_path=str(ws / "run" / "prototype.keras"), supernet_epochs=0,
                             cycles=1, population=3, final_k=0,
                             requirements=("accuracy_drop<=100pt",), screen=True, predictor_path=str(path),
                             measure_share=1.0)
    run_synthesis(config, tmp_path / "run", tmp_path / "w.db", progress=False)
    saved = json.loads((tmp_path / "run" / "screen.json").read_text())
    summary, decisions = saved["summary"], saved["decisions"]
    assert summary["predicted"] == 0 and summary["measured"] == summary["screened"] >= 2  # share 1: all measured
    judged = [d for d in decisions.values() if d["predicted_latency_ms"] and d["predicted_latency_ms"]["source"] == "predicted:fast_phone"]
    assert judged and sum(d["latency_miss"] for d in judged) >= 1  # measured ~10x above the band
    assert summary["band_misses_latency"] == sum(1 for d in decisions.values() if d.get("latency_miss")) >= 1


def test_screen_options_refused_when_wrong(tmp_path, capsys, monkeypatch):
    from toolkit.cli.main import main
    from toolkit.synthesis import SynthesisConfig

    monkeypatch.chdir(tmp_path)
    assert main(["synthesize", "--out", "x", "--measure-share", "0.5"]) != 0
    assert "apply to --predictor" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synthesize", "--out", "x", "--predictor", "--measure-share", "1.5"])
    assert "expected a share in [0, 1]" in capsys.readouterr().err
    assert main(["synthesize", "--out", "x", "--predictor", str(tmp_path / "none.joblib")]) != 0
    assert "No predictor file" in capsys.readouterr().err
    assert main(["synthesize", "--out", "x", "--predictor", "--executor", "ray"]) != 0
    assert "--executor ray needs a phone target" in capsys.readouterr().err
    with pytest.raises(ValueError, match="predictor_path is used only when screening"):
        SynthesisConfig(predictor_path="p.joblib")
    assert not (tmp_path / "x").exists()
