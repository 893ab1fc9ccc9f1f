"""``results.csv``: one row per listing for spreadsheets, every signal's state in its own column."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from knockoff.decide.verdict import Verdict
from knockoff.report.entry import Entry, entry_from_result, signal_codes
from knockoff.report.files import atomic_writer
from knockoff.report.results import sort_results

BASE_COLUMNS: tuple[str, ...] = (
    "listing_id", "verdict", "risk", "brand", "product_id", "product_name", "similarity", "tier",
    "reference_image", "listing_image", "title", "price", "currency", "reference_price", "reference_currency",
    "price_ratio", "price_note", "seller", "reasons", "signals", "error", "nearest_reference",
)
#: the CSV's columns: :data:`BASE_COLUMNS`, then ``signal_<CODE>`` (hit, clear, unknown or not checked)
#: for each code of :data:`knockoff.report.entry.KNOWN_CODES` and any other code the results carry
CSV_COLUMNS = BASE_COLUMNS

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula (CSV injection) gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def columns(codes: Sequence[str]) -> tuple[str, ...]:
    """The header for these signal codes."""
    return BASE_COLUMNS + tuple(f"signal_{code}" for code in codes)


def csv_row(entry: Entry, codes: Sequence[str]) -> dict[str, Any]:
    """The flat row of one listing (values not yet escaped). A no_match row's nearest reference is in
    ``nearest_reference`` only: its brand and product columns stay empty, since it is not a match."""
    match = entry.match if entry.matched else {}
    nearest = entry.match.get("reference_image") if entry.match and not entry.matched else None
    row = {
        "listing_id": entry.listing_id, "verdict": entry.verdict, "risk": entry.risk, "brand": entry.brand,
        "product_id": match.get("product_id"), "product_name": match.get("product_name"),
        "similarity": match.get("similarity"), "tier": match.get("tier"),
        "reference_image": match.get("reference_image"), "listing_image": entry.listing_image,
        "title": entry.title, "price": entry.price, "currency": entry.currency,
        "reference_price": match.get("reference_price"), "reference_currency": match.get("reference_currency"),
        "price_ratio": entry.price_ratio, "price_note": entry.price_note, "seller": entry.seller,
        "reasons": " | ".join(message for _, message in entry.reasons),
        "signals": " | ".join(f"{code} {state}: {message}" for code, state, message in entry.signals),
        "error": entry.error, "nearest_reference": nearest,
    }
    row.update({f"signal_{code}": entry.signal_state(code) for code in codes})
    return row


def write_entries_csv(entries: Sequence[Entry], path: str | Path) -> Path:
    """Write the CSV of entries already in review order."""
    codes = signal_codes(list(entries))
    path = Path(path)
    with atomic_writer(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns(codes))
        writer.writeheader()
        for entry in entries:
            writer.writerow({k: cell(v) for k, v in csv_row(entry, codes).items()})
    return path


def write_csv(results: Iterable[Verdict], path: str | Path) -> Path:
    """Write ``results.csv`` from verdicts: one row per listing in review order (suspects first).

    Text cells that start like a spreadsheet formula (``=``, ``+``, ``-``, ``@``) get a leading ``'``.
    """
    return write_entries_csv([entry_from_result(r) for r in sort_results(results)], path)
