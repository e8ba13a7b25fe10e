"""A report built from real runs (host, virtual phone, a tiny synthesis run), rendered in headless Chromium.

The synthesis run starts from the session's shared tiny prototype and supernet (``tiny_synthesis`` in
tests/toolkit/conftest.py, same images); the report reads only what this run stores. It does not retrain the
reference (``retrain_reference=False``): the report shows the prototype and the final, and asserts nothing about a
reference (measured: the reference's training and evaluation were 45 s of this fixture's 151 s)."""
import http.server
import json
import re
import shutil
import subprocess
import threading
from functools import partial

import numpy as np
import pytest

from toolkit.errors import StoreError
from toolkit.report import build_report, candidates_table, load, pareto_front, summary

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]

CHECK_PAGE = """<!doctype html><html><head><link rel="icon" href="data:,"></head><body><pre id="result">pending</pre>
<iframe id="f" src="report.html" style="width:1200px;height:900px"></iframe>
<script>
document.getElementById('f').onload = function () {
  const doc = this.contentDocument;
  const imgs = Array.from(doc.images);
  const external = Array.from(doc.querySelectorAll('[src],[href]')).map(e => e.getAttribute('src') || e.getAttribute('href'))
      .filter(u => !u.startsWith('data:'));
  document.getElementById('result').textContent = JSON.stringify({
    images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    external: external, text: doc.body.innerText.length, h2: doc.querySelectorAll('h2').length});
};
</script></body></html>"""


@pytest.fixture(scope="module")
def store(tmp_path_factory, int8_tflite, tiny_synthesis):
    from android_harness.virtual import VirtualPhone
    from toolkit.store import Store
    from toolkit.synthesis import SynthesisConfig, run_synthesis
    from toolkit.targets import HostTarget, ProfileOptions, get_target

    ws = tmp_path_factory.mktemp("report")
    db = ws / "r.db"
    host = HostTarget().profile(int8_tflite[0], ProfileOptions(num_runs=30))
    with VirtualPhone("pixel_6") as phone:
        virtual = get_target("android", device=phone.serial).profile(int8_tflite[0], ProfileOptions(min_secs=0.5))
    with Store(db) as s:
        s.record_run("profile", measurements=(host, virtual))
    cfg = SynthesisConfig(prototype="resnet20", prototype_width=0.25, n_train=600, prototype_epochs=1,
                          supernet_epochs=1, final_k=1, n_eval=100, cycles=2, population=2,
                          profile_runs=5, probe_samples=64, retrain_reference=False,
                          requirements=("accuracy_drop<=100pt", "macs<=1.5M"),
                          prototype_path=f"{tiny_synthesis[0].out_dir}/prototype.keras",
                          supernet_path=tiny_synthesis[0].out_dir)
    synth = run_synthesis(cfg, ws / "run", db, progress=False)
    return ws, db, synth


def test_tables_keep_sources_apart(store):
    ws, db, synth = store
    measurements, candidates = load(db)
    table = summary(measurements)
    kinds = set(table["energy_kind"].dropna())
    assert {"virtual", "estimated"} <= kinds and "measured" not in kinds  # no phone here: nothing is "measured"
    assert (table[table["energy_kind"] == "estimated"]["energy_source"] == "estimated:host").all()
    cands = candidates_table(candidates)
    assert set(cands["strategy"]) == {"prototype", "gensynth"} and cands["pareto_latency"].any()


def test_synthesis_progress_counts_each_cycle_s_search_candidates_only(store):
    from toolkit.report import synthesis_progress

    ws, db, synth = store
    _, candidates = load(db)
    prog = synthesis_progress(candidates)
    searched = {}
    for c in synth.candidates:
        if c.status == "ok":
            searched[c.cycle] = searched.get(c.cycle, 0) + 1
    assert synth.finals and synth.finals[0].cycle in searched  # the final carries its parent's cycle ...
    assert dict(zip(prog["cycle"], prog["candidates"])) == searched  # ... and is not counted in it


def test_pareto_front_logic():
    import pandas as pd

    df = pd.DataFrame({"cost": [1, 2, 3, 2.5], "int8_top1": [0.5, 0.7, 0.9, 0.6]})
    assert pareto_front(df, "cost").tolist() == [True, True, True, False]


def test_report_renders_in_chromium(store, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is required for this test: apt-get install chromium"
    ws, db, synth = store
    result = build_report(db, ws / "report")
    assert len(result.figures) >= 6 and (ws / "report" / "candidates.csv").is_file()
    out = ws / "report"
    (out / "check.html").write_text(CHECK_PAGE)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            requests.append((self.path, int(code)))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run(common + ["--virtual-time-budget=15000", "--dump-dom", f"{base}/check.html"],
                             capture_output=True, text=True, timeout=120).stdout
        shot = tmp_path / "report.png"
        subprocess.run(common + ["--window-size=1200,2400", f"--screenshot={shot}", f"{base}/report.html"],
                       capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    check = json.loads(re.search(r'<pre id="result">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))
    assert check["images"] == len(result.figures) and check["loaded"] == check["images"]
    assert check["external"] == [] and check["text"] > 500 and check["h2"] >= 6
    assert requests and all(code == 200 for _, code in requests)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # not blank
    shutil.copy(shot, out / "screenshot.png")


def test_report_errors(store, tmp_path):
    ws, db, _ = store
    with pytest.raises(StoreError, match="No results store"):
        build_report(tmp_path / "none.db", tmp_path / "r")
    with pytest.raises(StoreError, match="No run 'nope'"):
        build_report(db, tmp_path / "r", run="nope")
    from toolkit.store import Store

    with Store(tmp_path / "empty.db"):
        pass
    with pytest.raises(StoreError, match="nothing to report"):
        build_report(tmp_path / "empty.db", tmp_path / "r")
    assert not (tmp_path / "r").exists()
