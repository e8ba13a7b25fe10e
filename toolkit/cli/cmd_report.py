"""`ferminet report`: an energy/latency report (HTML + PNG + CSV) from the results store."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="build an HTML energy/latency report from the store",
                              description="Build a self-contained HTML report (figures embedded) plus PNGs and CSVs: "
                                          "latency, energy per inference and inferences/J (marked measured / virtual "
                                          "/ estimated), power traces, top ops, accuracy-vs-cost with the Pareto "
                                          "front, synthesis progress and provenance.")
    p.add_argument("--db", default="ferminet.db", help="results store (default ./ferminet.db)")
    p.add_argument("--run", default=None, help="only this run (id or name)")
    p.add_argument("--out", required=True,
                   help="output folder: created if missing; an existing one must be empty or hold a previous "
                        "report (whose files are replaced), else pass --force")
    p.add_argument("--force", action="store_true",
                   help="write into a folder holding other files: only report.html and the report's PNGs/CSVs are "
                        "written, nothing else is changed or deleted")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolkit.report import build_report

    r = build_report(args.db, args.out, args.run, force=args.force)
    print(f"report: {r.html_path} ({len(r.figures)} figures, {len(r.csvs)} CSVs)")
    return 0
