"""Stage 6, reporting: the CSV for spreadsheets and the reviewer's HTML page, read from a scan's results.

``write_reports(out_dir)`` is the one entry point (the CLI's ``scan`` and ``report`` use it).
"""

from knockoff.report.build import CSV_FILE, HTML_FILE, ONE_FILE_MAX, ReportFiles, write_reports
from knockoff.report.csvfile import write_csv
from knockoff.report.results import RESULTS_FILE, ReportError, iter_results, read_results, sort_results

__all__ = ["CSV_FILE", "HTML_FILE", "ONE_FILE_MAX", "RESULTS_FILE", "ReportError", "ReportFiles", "iter_results",
           "read_results", "sort_results", "write_csv", "write_reports"]
