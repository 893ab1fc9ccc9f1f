"""``decisions.csv``: what reviewers decided in the page (``listing_id, decision, note, when``).

The page exports it; :func:`read_decisions` reads it back, validated, so that a team's review work can be
used as labels (:mod:`knockoff.evaluate.decisions`). Text cells that a spreadsheet would run as a formula
were written with a leading ``'``; it is removed again here.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from knockoff.errors import CatalogError, ConfigError

log = logging.getLogger(__name__)

DECISIONS: tuple[str, ...] = ("counterfeit", "not_counterfeit", "unsure")
COLUMNS: tuple[str, ...] = ("listing_id", "decision", "note", "when")
_REQUIRED = ("listing_id", "decision")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class DecisionsError(CatalogError):
    """A ``decisions.csv`` file (or one of its rows) is invalid; the message names the file, line and field."""


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one listing."""

    listing_id: str
    decision: str
    note: str = ""
    when: datetime | None = None

    def __post_init__(self) -> None:
        if not self.listing_id:
            raise ConfigError("a decision needs a listing_id")
        if self.decision not in DECISIONS:
            raise ConfigError(f"decision must be one of {', '.join(DECISIONS)}, got {self.decision!r}")


@dataclass(frozen=True)
class Decisions:
    """The decisions of a file by listing id (a listing decided twice keeps its latest), and the rows skipped."""

    path: str
    by_listing: Mapping[str, Decision]
    problems: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.by_listing)


def _plain(text: str) -> str:
    """Undo the export's formula guard: ``'=x`` -> ``=x``."""
    return text[1:] if text.startswith("'") and text[1:2] in _FORMULA_START and text[1:2] else text


def _when(text: str, path: Path, line: int) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DecisionsError(path, f"not an ISO 8601 time: {text!r}", line=line, field="when") from None


def parse_row(row: Mapping[str, str | None], path: Path, line: int) -> Decision:
    """One CSV row as a :class:`Decision`; a :class:`DecisionsError` naming the line and field otherwise."""
    values = {k: _plain((row.get(k) or "").strip()) for k in COLUMNS}
    for name in _REQUIRED:
        if not values[name]:
            raise DecisionsError(path, "is empty", line=line, field=name)
    decision = values["decision"].lower().replace(" ", "_").replace("-", "_")
    if decision not in DECISIONS:
        raise DecisionsError(path, f"{values['decision']!r} is not one of {', '.join(DECISIONS)}", line=line,
                             field="decision")
    return Decision(values["listing_id"], decision, values["note"], _when(values["when"], path, line))


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str | None]]]:
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DecisionsError(path, f"cannot read file ({exc.strerror or exc})") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise DecisionsError(path, f"missing column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})",
                                 line=1)
        for row in reader:
            yield reader.line_num, row


def read_decisions(path: str | Path, *, strict: bool = False) -> Decisions:
    """Read a ``decisions.csv``. A bad row is logged and skipped (listed in ``problems``); ``strict`` raises
    :class:`DecisionsError` instead. A missing file or header is always an error. Of two rows for one
    listing the later ``when`` wins (the later row when times are equal or missing)."""
    path = Path(path)
    by_listing: dict[str, Decision] = {}
    problems: list[str] = []
    for line, row in _rows(path):
        try:
            decision = parse_row(row, path, line)
        except DecisionsError as error:
            if strict:
                raise
            log.warning("%s (row skipped)", error)
            problems.append(str(error))
            continue
        before = by_listing.get(decision.listing_id)
        if before is None or not (before.when and decision.when and _later(before.when, decision.when)):
            by_listing[decision.listing_id] = decision
    return Decisions(str(path), by_listing, tuple(problems))


def _later(a: datetime, b: datetime) -> bool:
    """True when ``a`` is strictly later than ``b`` (naive times are compared as given)."""
    try:
        return a > b
    except TypeError:  # one has a time zone, the other not: keep the file's order
        return False
