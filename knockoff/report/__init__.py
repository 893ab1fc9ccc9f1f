"""Stage 6, reporting: the CSV for spreadsheets and the reviewer's HTML page, read from a scan's results."""
