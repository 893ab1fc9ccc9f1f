"""Reading a scan's ``results.jsonl`` for the reports as typed :class:`~knockoff.decide.verdict.Verdict`
objects, streamed (a 100,000-line file is never held as dicts), and the review order.

A line that is not a valid result (the torn last line of a killed scan, a line a newer or older knockoff
wrote with fields this one does not know, a verdict out of range) is skipped with a warning naming the file
and the line: the report of the rest still gets written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from knockoff.decide.verdict import VERDICTS, Verdict
from knockoff.errors import KnockoffError, ReportError, ResultError
from knockoff.run.store import RESULTS_FILE, SCHEMA_VERSION

log = logging.getLogger(__name__)

SCHEMAS_KNOWN = tuple(range(1, SCHEMA_VERSION + 1))

#: review order: what needs a person first (:data:`knockoff.decide.verdict.VERDICTS`)
VERDICT_ORDER: tuple[str, ...] = VERDICTS
#: verdicts that name a matched brand (a no_match row's nearest reference is not a match)
MATCHED_VERDICTS: tuple[str, ...] = ("suspect", "review", "authorized")

__all__ = ["MATCHED_VERDICTS", "RESULTS_FILE", "ReportError", "VERDICT_ORDER", "iter_results", "parse_result",
           "rank_of", "read_results", "sort_results"]


def parse_result(line: str) -> tuple[Verdict, int]:
    """One results line as (verdict, schema); a :class:`~knockoff.errors.ResultError` saying why not."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        torn = "" if line.endswith("\n") else " (torn last line, e.g. of a killed scan)"
        raise ResultError(f"not valid JSON{torn}: {exc}") from exc
    if not isinstance(data, dict):
        raise ResultError("not a JSON object")
    if not isinstance(data.get("listing_id"), str):
        raise ResultError("not a result (no listing_id)")
    schema = data.get("schema", 1)
    try:
        verdict = Verdict.from_dict(data)
    except ResultError:
        raise
    except KnockoffError as exc:  # e.g. a listing that its own checks refuse
        raise ResultError(f"listing {data['listing_id']}: {exc}") from exc
    return verdict, schema if isinstance(schema, int) else -1


def results_path(out_dir_or_jsonl: str | Path) -> Path:
    """``results.jsonl`` of an output directory (or the file itself); a :class:`ReportError` when missing."""
    path = Path(out_dir_or_jsonl)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ReportError(f"{path}: no results file (run `knockoff scan` first)")
    return path


def iter_results(out_dir_or_jsonl: str | Path) -> Iterator[Verdict]:
    """Every verdict of a scan (``results.jsonl``, or the output directory holding one), in file order, read
    one line at a time. A line that is not a valid result is skipped with a logged warning (file and line)."""
    path = results_path(out_dir_or_jsonl)
    newer = skipped = 0
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                verdict, schema = parse_result(line)
            except ResultError as exc:
                log.warning("%s, line %d: skipped, %s", path, number, exc)
                skipped += 1
                continue
            newer += schema not in SCHEMAS_KNOWN
            yield verdict
    if newer:
        log.warning("%s: %d lines have a schema this knockoff does not know; fields may be missing", path, newer)
    if skipped:
        log.warning("%s: %d lines skipped (not valid results); the report leaves them out", path, skipped)


def read_results(out_dir_or_jsonl: str | Path) -> list[Verdict]:
    """The verdicts of a scan (see :func:`iter_results`). A listing that appears more than once keeps its last
    line; the order is the order of first appearance."""
    return list({v.listing_id: v for v in iter_results(out_dir_or_jsonl)}.values())


def rank_of(verdict: str) -> int:
    """The verdict's place in :data:`VERDICT_ORDER` (unknown verdicts last)."""
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def sort_results(results: Iterable[Verdict]) -> list[Verdict]:
    """Review order: suspects, then review, authorized, no_match, error; by risk within; ties by listing id."""
    return sorted(results, key=lambda v: (rank_of(v.verdict), -v.risk, v.listing_id))
