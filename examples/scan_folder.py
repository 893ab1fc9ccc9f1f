"""Scan a folder of listing photos from Python, then write the CSV and HTML reports.

Runs offline as it stands. The scan is resumable: run it again on the same output folder and it skips
what is done. The scan decodes photos in worker processes, so the script keeps its work under
`if __name__ == "__main__":` (Python starts the workers by importing the main module).
"""

import tempfile
from pathlib import Path

import knockoff
from knockoff.evaluate.synthetic import make_labeled_set
from knockoff.report.render import write_reports
from knockoff.run.scan import scan


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="knockoff-scan-"))
    set_dir = make_labeled_set(work / "marketplace-dump", seed=2).root  # photos + listings.csv + a catalog

    index = knockoff.build_index(knockoff.Catalog.from_dir(set_dir), embedder="auto")
    summary = scan(set_dir, index, work / "scan-out", workers=1)
    csv_path, html_path = write_reports(work / "scan-out")

    print(f"{summary.total} listings: {summary.counts}")
    print(f"results: {summary.results_path}\nspreadsheet: {csv_path}\nreview page: {html_path}")


if __name__ == "__main__":
    main()
