"""``benchmarks/synthesis_draws.py``: P1 and P2 are tallied over the runs a draw made with its own settings."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "synthesis_draws.py"
SETTINGS = "python benchmarks/synthesis_fashion_mnist.py --search-budget 6m --final-k 2 --shortlist 12"


def _final(cid, macs, proxy, val, test, drop):
    return {"candidate_id": cid, "macs": macs, "proxy_val_top1": proxy, "val_top1": val, "test_top1": test,
            "drop_pt": drop, "meets_on_test": drop <= 1.0}


def _strategy(finals, p2=None, shortlist=True):
    phases = {"search": 360.0, "final": 200.0, **({"shortlist": 130.0} if shortlist else {})}
    return {"finals": finals, "phase_seconds": phases, "candidates_per_hour": 1300.0,
            **({"targets": {"p2": {"random": p2}}} if p2 is not None else {})}


def _draw(tmp_path, seed, gensynth, random):
    path = tmp_path / f"seed{seed}.json"
    path.write_text(json.dumps({"command": f"{SETTINGS} --seed {seed} --out /w/{seed}",
                                "prototype": {"macs": 31_021_952, "test_top1": 0.9092},
                                "strategies": {"gensynth": gensynth, "random": random}}))
    return str(path)


def test_a_run_linked_in_without_the_draws_shortlist_is_not_counted(tmp_path):
    linked = _strategy([_final("final-c010-00", 2_000_000, 0.78, 0.89, 0.904, 0.5),
                        _final("final-c007-03", 1_500_000, 0.76, 0.88, 0.895, 1.3)],
                       p2={"rival": None, "fewer_macs": True}, shortlist=False)
    own_gensynth = _strategy([_final("final-c008-00", 1_300_000, 0.77, 0.885, 0.900, 0.9),
                              _final("final-c008-01", 1_100_000, 0.75, 0.880, 0.897, 1.2)],
                             p2={"rival": "final-c004-02", "fewer_macs": False})
    random = _strategy([_final("final-c004-02", 980_000, 0.74, 0.884, 0.902, 0.6),
                        _final("final-c004-05", 2_500_000, 0.79, 0.890, 0.906, 0.3),
                        _final("final-c004-07", 700_000, 0.70, 0.870, 0.890, 1.9)])
    files = [_draw(tmp_path, 4, linked, random), _draw(tmp_path, 5, own_gensynth, random)]
    out = tmp_path / "draws.json"
    run = subprocess.run([sys.executable, str(SCRIPT), *files, "--results", str(out)], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert "made without the draw's --shortlist: not counted" in run.stdout
    tally = json.loads(out.read_text())["p2_tally"]
    assert tally == {"gensynth": {"held": 0, "draws": 1, "held_with_baseline_within": 0}}  # the linked run's
    # "held" is not the draw's; P1 (>= 10x fewer MACs than 31.0M within 1 pt) counts the own draws only
    assert json.loads(out.read_text())["p1_tally"] == {"gensynth": {"met": 1, "draws": 1, "seeds": [5]},
                                                       "random": {"met": 1, "draws": 1, "seeds": [4]}}


def test_p1_needs_ten_times_fewer_macs_and_p2_says_whether_the_baseline_had_a_final_within(tmp_path):
    """Seed 1: gensynth holds P2 with random also within 1 pt (at more MACs). Seed 2: gensynth holds P2 only because
    random has no final within 1 pt, and gensynth's is 9.9x, so not P1."""
    held = {"rival": None, "fewer_macs": True}
    files = [_draw(tmp_path, 1, _strategy([_final("final-c001-00", 1_500_000, 0.77, 0.89, 0.900, 0.9)], p2=held),
                   _strategy([_final("final-c002-00", 2_400_000, 0.77, 0.89, 0.901, 0.8)])),
             _draw(tmp_path, 2, _strategy([_final("final-c003-00", 3_133_530, 0.77, 0.89, 0.900, 0.5)], p2=held),
                   _strategy([_final("final-c004-00", 1_000_000, 0.72, 0.87, 0.890, 1.7)]))]
    out = tmp_path / "draws.json"
    run = subprocess.run([sys.executable, str(SCRIPT), *files, "--results", str(out)], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    record = json.loads(out.read_text())
    assert record["p1_tally"]["gensynth"] == {"met": 1, "draws": 2, "seeds": [1]}
    assert record["p1_tally"]["random"] == {"met": 1, "draws": 2, "seeds": [1]}
    assert record["p2_tally"] == {"gensynth": {"held": 2, "draws": 2, "held_with_baseline_within": 1}}
    assert "P2 gensynth vs random: held in 2 of 2 draws; in 1 of them random also had a final within 1 pt" \
        in run.stdout
