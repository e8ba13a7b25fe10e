"""Energy/latency reports from the store: DataFrames (``tables``), matplotlib figures, a self-contained HTML page."""
from toolkit.report.html import ReportResult, build_report
from toolkit.report.tables import (
    candidates_table,
    load,
    pareto_front,
    power_traces,
    provenance,
    summary,
    synthesis_progress,
    top_ops,
)

__all__ = ["ReportResult", "build_report", "candidates_table", "load", "pareto_front", "power_traces", "provenance",
           "summary", "synthesis_progress", "top_ops"]
