"""Reading a scan's ``results.jsonl`` for the reports, and the review order.

:func:`result_from_dict` is the one place where a results line becomes what the reports read: today it checks
the dict and returns it; once ``Verdict.from_dict`` exists it can validate through it instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from knockoff.errors import ReportError

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
SCHEMAS_KNOWN = (1, 2)

#: review order: what needs a person first
VERDICT_ORDER: tuple[str, ...] = ("suspect", "review", "authorized", "no_match", "error")
#: verdicts that name a matched brand (a no_match row's nearest reference is not a match)
MATCHED_VERDICTS: tuple[str, ...] = ("suspect", "review", "authorized")




def result_from_dict(row: Any) -> dict[str, Any] | None:
    """One results line as the reports read it, or None when it is not a result (no ``listing_id``)."""
    if not isinstance(row, dict) or not isinstance(row.get("listing_id"), str):
        return None
    return row


def iter_results(out_dir_or_jsonl: str | Path) -> Iterator[dict[str, Any]]:
    """Every result line of a scan (``results.jsonl``, or the output directory holding one), in file order.

    A line that is not a JSON object (the torn last line of a killed scan) is skipped with a logged warning.
    """
    path = Path(out_dir_or_jsonl)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ReportError(f"{path}: no results file (run `knockoff scan` first)")
    newer = 0
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = result_from_dict(json.loads(line))
            except json.JSONDecodeError as exc:
                torn = "" if line.endswith("\n") else " (torn last line, e.g. of a killed scan)"
                log.warning("%s, line %d: skipped, not valid JSON%s: %s", path, number, torn, exc)
                continue
            if row is None:
                log.warning("%s, line %d: skipped, not a result (no listing_id)", path, number)
                continue
            newer += row.get("schema", 1) not in SCHEMAS_KNOWN
            yield row
    if newer:
        log.warning("%s: %d lines have a schema this knockoff does not know; fields may be missing", path, newer)


def read_results(out_dir_or_jsonl: str | Path) -> list[dict[str, Any]]:
    """The results of a scan (see :func:`iter_results`). A listing that appears more than once keeps its last
    line; the order is the order of first appearance."""
    return list({row["listing_id"]: row for row in iter_results(out_dir_or_jsonl)}.values())


def risk_of(row: dict[str, Any]) -> float:
    """The row's risk as a float (0 when missing or not a number)."""
    try:
        return float(row.get("risk") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def rank_of(verdict: Any) -> int:
    """The verdict's place in :data:`VERDICT_ORDER` (unknown verdicts last)."""
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def sort_results(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Review order: suspects, then review, authorized, no_match, error; by risk within; ties by listing id."""
    return sorted(results, key=lambda r: (rank_of(r.get("verdict")), -risk_of(r), str(r.get("listing_id", ""))))
