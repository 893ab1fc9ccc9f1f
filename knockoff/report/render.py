"""Kept for older imports: the reports now live in :mod:`knockoff.report` (``write_reports`` and friends)."""

from knockoff.report.build import write_reports
from knockoff.report.csvfile import CSV_COLUMNS, write_csv
from knockoff.report.results import ReportError, read_results, sort_results

__all__ = ["CSV_COLUMNS", "ReportError", "read_results", "sort_results", "write_csv", "write_reports"]
