"""``build_report``: the energy/latency report as one self-contained HTML page (figures embedded as base64
PNG, no network fetches) plus the PNGs and CSVs beside it.

The output folder belongs to the user: the report never deletes a folder, and it replaces only the files it
writes itself (``report.html``, its PNGs and CSVs). The files are made in a temporary folder inside the output
folder (``.ferminet-report.ferminet-tmp-<pid>``) and renamed into place at the end, so a failure leaves nothing
half-written; a killed run's temporary is removed by the next report into the same folder.

Which folders it writes into:

- a folder that does not exist: created;
- an empty folder, or one a previous report wrote (it holds the marker file ``.ferminet-report`` listing that
  report's files): used; the previous report's files are replaced, and those this report no longer makes
  (e.g. an energy figure) are removed: they belong to the old report, nothing else is;
- any other existing folder: refused unless ``force=True``, and then only the report's own files are written
  (other files, the results store included, are left as they are).
"""
from __future__ import annotations

import base64
import html
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit import safe_io
from toolkit.errors import InvalidArgumentError
from toolkit.report import figures, tables

MARKER = ".ferminet-report"
# Only names of this form are ever removed as "the previous report's files".
_REPORT_FILE = re.compile(r"^(report\.html|[A-Za-z0-9_]+\.(png|csv))$")


@dataclass(frozen=True)
class ReportResult:
    out_dir: str
    html_path: str
    figures: tuple[str, ...]
    csvs: tuple[str, ...]


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}h1{font-size:1.5em}
h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}th{background:#f3f3f3}img{max-width:100%}
.note{color:#555;font-size:13px}.empty{color:#a33;font-style:italic}.kind-estimated{color:#777}"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df, max_rows: int = 60) -> str:
    return df.head(max_rows).to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="n/a", border=0)


def _previous_files(out: Path) -> list[str] | None:
    """The files the report that wrote ``out`` listed in its marker; None when no report wrote it."""
    marker = out / MARKER
    if not marker.is_file():
        return None
    try:
        files = json.loads(marker.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [f for f in files if isinstance(f, str) and _REPORT_FILE.match(f)]


def _check_out_dir(out: Path, db: Path, force: bool) -> tuple[bool, list[str]]:
    """(create the folder?, previous report's files) or an error when the folder is not ours to write."""
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"--out must be a folder; {str(out)!r} is a file. Pass a folder path")
    if not out.exists():
        if not out.parent.exists():
            raise InvalidArgumentError(f"The parent folder of --out does not exist. Received: out={str(out)!r}; "
                                       f"create {str(out.parent)!r} first")
        return True, []
    previous = _previous_files(out)
    if previous is not None:
        return False, previous
    others = [p.name for p in out.iterdir() if not safe_io._TMP_RE.match(p.name)]
    if others and not force:
        shown = ", ".join(sorted(others)[:3]) + (", ..." if len(others) > 3 else "")
        raise InvalidArgumentError(
            f"The output folder {str(out)!r} already holds files that are not a ferminet report ({shown}). "
            f"Pass an empty or new folder, or --force to write the report's files (report.html, PNGs, CSVs) "
            f"beside them (nothing else is touched)")
    return False, []


def build_report(db: str | Path = "ferminet.db", out_dir: str | Path = "ferminet-report", run: str | None = None,
                 *, force: bool = False) -> ReportResult:
    """Build the report of the store ``db`` (or of one ``run``) into the folder ``out_dir``.

    See the module docstring for which folders are written and what is replaced; ``force`` allows a
    folder holding other files (they are kept).
    """
    out = Path(out_dir)
    create, previous = _check_out_dir(out, Path(db), force)
    measurements, candidates = tables.load(db, run)
    if create:
        out.mkdir()
    else:
        safe_io.remove_stale_temps(out)
    tmp = safe_io.temp_path(out / MARKER)
    shutil.rmtree(tmp, ignore_errors=True)  # only ever ours: the name carries this process's id
    tmp.mkdir()
    try:
        sections, pngs, csvs = [], [], []

        def figure(name: str, maker, *args, alt: str) -> str:
            path = tmp / f"{name}.png"
            maker(*args, path)
            pngs.append(path.name)
            return _img(path, alt)

        def csv(name: str, df) -> None:
            df.to_csv(tmp / f"{name}.csv", index=False)
            csvs.append(f"{name}.csv")

        summary = tables.summary(measurements)
        if not summary.empty:
            csv("measurements", summary)
            samples = tables.latency_samples(measurements)
            sections.append("<h2>Latency</h2>" + figure("latency", figures.latency_distribution, samples, summary,
                                                         alt="latency distribution per model and device")
                            + _table(summary[[c for c in ("label", "device", "source", "num_threads", "delegate",
                                                          "delegate_fallback", "median_ms", "p90_ms", "p95_ms",
                                                          "mean_ms", "std_ms", "count", "memory_increment_mb",
                                                          "process_peak_memory_mb") if c in summary]]))
            # Below-resolution energies stay in the table (as "below resolution (< X mJ)"), never as numbers.
            energy = summary.dropna(subset=["energy_source"]) if "energy_source" in summary else summary.iloc[:0]
            if not energy.empty:
                kinds = sorted(set(energy["energy_kind"].dropna()))
                sections.append(
                    "<h2>Energy</h2><p class='note'>Each number carries its source: <b>measured</b> on a phone's "
                    "battery counters, <b>virtual</b> from the virtual phone's power model, <b>estimated</b> from "
                    "a device profile (never a measurement), or <b>predicted</b> by a fitted predictor for a "
                    f"candidate synthesize --predictor did not measure. Present here: {', '.join(kinds)}.</p>"
                    + figure("energy", figures.energy_bars, summary, alt="energy per inference and inferences per joule")
                    + _table(energy[["label", "device", "energy", "energy_mj", "energy_uncertainty_mj",
                                     "inferences_per_j", "avg_power_mw", "energy_method", "energy_source",
                                     "energy_kind"]]))
            else:
                sections.append("<h2>Energy</h2><p class='empty'>No energy numbers in this selection.</p>")
            traces = tables.power_traces(measurements)
            if not traces.empty:
                csv("power_traces", traces)
                sections.append("<h2>Power trace</h2>" + figure("power_trace", figures.power_trace, traces,
                                                                alt="power over the run"))
            else:
                sections.append("<h2>Power trace</h2><p class='empty'>No power samples: traces come from phones "
                                "(measured or virtual); host profiles only estimate energy.</p>")
            ops = tables.top_ops(measurements)
            if not ops.empty:
                csv("top_ops", ops)
                sections.append("<h2>Top ops by latency</h2>" + figure("top_ops", figures.top_ops_bars, ops,
                                                                       alt="top ops by latency") + _table(ops))
            else:
                sections.append("<h2>Top ops by latency</h2><p class='empty'>No per-op profile: profile with "
                                "--op-profiling (phones, the virtual phone and the host all give one).</p>")
        else:
            sections.append("<h2>Measurements</h2><p class='empty'>No measurements in this selection.</p>")

        cands = tables.candidates_table(candidates)
        if not cands.empty:
            csv("candidates", cands)
            parts = ["<h2>Accuracy vs cost</h2><p class='note'>Prototype, synthesized networks and baselines; the "
                     "line marks the Pareto front (no other network is both cheaper and more accurate).</p>"]
            if cands["energy_mj"].notna().any():
                kinds = ", ".join(sorted(set(cands["energy_kind"].dropna())))
                parts.append(figure("accuracy_energy", figures.accuracy_scatter, cands.dropna(subset=["energy_mj"]),
                                    "energy_mj", "pareto_energy", f"energy per inference (mJ, {kinds})",
                                    alt="accuracy versus energy"))
            parts.append(figure("accuracy_latency", figures.accuracy_scatter, cands, "latency_ms", "pareto_latency",
                                "median latency (ms)", alt="accuracy versus latency"))
            parts.append(_table(cands[cands["pareto_latency"] | cands["pareto_energy"]]))
            reported = cands[cands["phase"].isin(["prototype", "reference", "final"])]
            if not reported.empty:
                parts.append("<h3>Reported networks</h3><p class='note'>int8 top-1 on the validation split (what the "
                             "search decided on) and on the test split (read once per reported network); "
                             "'reference' is the prototype architecture given the finals' training.</p>"
                             + _table(reported[["run_id", "candidate_id", "strategy", "phase", "int8_top1",
                                                "test_top1", "macs", "params", "latency_ms", "latency_source",
                                                "energy", "energy_source", "requirements_met",
                                                "test_requirements_met"]]
                                      .rename(columns={"int8_top1": "val_top1"})))
            sections.append("".join(parts))
            prog = tables.synthesis_progress(candidates)
            if not prog.empty:
                csv("synthesis_progress", prog)
                sections.append("<h2>Synthesis progress</h2>" + figure("progress", figures.progress, prog,
                                                                       alt="synthesis progress per cycle")
                                + _table(prog))
        else:
            sections.append("<h2>Accuracy vs cost</h2><p class='empty'>No synthesis candidates in this selection: "
                            "run `ferminet synthesize`.</p>")
        if not measurements.empty:
            prov = tables.provenance(measurements)
            csv("provenance", prov)
            sections.append("<h2>Provenance</h2>" + _table(prov))
        title = f"ferminet report — {html.escape(run) if run else html.escape(str(db))}"
        page = (f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>{title}</title><style>{_CSS}</style>"
                f"</head><body><h1>{title}</h1><p class='note'>Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
                f" from {len(measurements)} measurement(s) and {len(candidates)} candidate(s).</p>"
                + "".join(sections) + "</body></html>")
        (tmp / "report.html").write_text(page, encoding="utf-8")
        written = ["report.html"] + pngs + csvs
        db_path = Path(db)
        for name in written:
            if safe_io.same_file(out / name, db_path):
                raise InvalidArgumentError(f"The report would overwrite the results store {str(db)!r} with its "
                                           f"{name}; rename the store or pass another --out")
        (tmp / MARKER).write_text(json.dumps({"written_by": "ferminet report", "files": written}, indent=1),
                                  encoding="utf-8")
        for name in written + [MARKER]:
            safe_io.publish(tmp / name, out / name)
        for name in set(previous) - set(written):  # the previous report's files this one does not make
            if (out / name).is_file() and not safe_io.same_file(out / name, db_path):
                (out / name).unlink()
    except BaseException:
        if create and out.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            if not any(out.iterdir()):
                out.rmdir()  # the folder this call created, still empty
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReportResult(str(out), str(out / "report.html"), tuple(str(out / p) for p in pngs),
                        tuple(str(out / c) for c in csvs))
