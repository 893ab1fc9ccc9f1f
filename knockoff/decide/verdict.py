"""The typed results: :class:`Verdict` with its :class:`Match`, :class:`Reason` and signals, to and from the
plain dicts of ``results.jsonl`` (:func:`read_verdicts`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from knockoff.catalog.readers import Listing
from knockoff.decide.signals import Signal
from knockoff.errors import ResultError

__all__ = ["VERDICTS", "Match", "Reason", "Verdict", "error_verdict", "read_verdicts"]

VERDICTS: tuple[str, ...] = ("suspect", "review", "authorized", "no_match", "error")
"""Every verdict, most urgent first. ``review``: a person must look (a match whose risk signals could not all be
checked, or a title or price that names a brand while no photo matched); see :mod:`knockoff.decide.rule`."""

_IGNORED_KEYS = frozenset({"schema", "fingerprint"})  # written by the results store beside each verdict


@dataclass(frozen=True)
class Reason:
    """One reason for a verdict: a stable code and a plain message a reviewer can check."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reason:
        return cls(str(data["code"]), str(data["message"]))


@dataclass(frozen=True)
class Match:
    """The best reference product for a listing (``tier`` None: the nearest reference, not a match)."""

    brand: str
    product_id: str
    product_name: str
    reference_image: str
    reference_label: str
    similarity: float
    tier: str | None
    listing_image: str
    reference_price: float | None = None
    reference_currency: str | None = None
    verification: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Match:
        return cls(**_known(cls, data, "match"))


def _known(cls: Any, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The keys of ``data`` that are fields of ``cls``; any other key is an error (no silent loss)."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names - _IGNORED_KEYS)
    if unknown:
        raise ResultError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return {k: v for k, v in data.items() if k in names}


def _listing(data: Mapping[str, Any] | None) -> Listing | None:
    if data is None:
        return None
    values = _known(Listing, data, "listing")
    values["images"] = tuple(values.get("images") or ())
    return Listing(**values)


@dataclass(frozen=True)
class Verdict:
    """The decision on one listing: ``suspect``, ``review``, ``authorized``, ``no_match`` or ``error``."""

    listing_id: str
    verdict: str
    risk: float
    match: Match | None
    reasons: tuple[Reason, ...]
    signals: tuple[Signal, ...] = ()
    engine: str = ""
    listing: Listing | None = None
    skipped_images: tuple[str, ...] = ()
    error: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ResultError(f"listing {self.listing_id}: verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not 0.0 <= self.risk <= 1.0:
            raise ResultError(f"listing {self.listing_id}: risk must be in [0, 1], got {self.risk}")
        object.__setattr__(self, "risk", round(float(self.risk), 4))
        object.__setattr__(self, "reasons", tuple(self.reasons))
        object.__setattr__(self, "signals", tuple(self.signals))
        object.__setattr__(self, "skipped_images", tuple(self.skipped_images))

    @property
    def is_suspect(self) -> bool:
        return self.verdict == "suspect"

    def signal(self, code: str) -> Signal | None:
        """The signal with this code, if it was computed."""
        return next((s for s in self.signals if s.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "listing_id": self.listing_id,
            "verdict": self.verdict,
            "risk": self.risk,
            "match": self.match.to_dict() if self.match else None,
            "reasons": [r.to_dict() for r in self.reasons],
            "signals": [s.to_dict() for s in self.signals],
            "engine": self.engine,
            "listing": self.listing.to_dict() if self.listing else None,
            "skipped_images": list(self.skipped_images),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """The inverse of :meth:`to_dict` (a results.jsonl line's ``schema`` key is ignored)."""
        values = _known(cls, data, f"listing {data.get('listing_id', '?')}")
        try:
            return cls(
                listing_id=str(values["listing_id"]), verdict=values["verdict"], risk=float(values["risk"]),
                match=Match.from_dict(values["match"]) if values.get("match") else None,
                reasons=tuple(Reason.from_dict(r) for r in values.get("reasons") or ()),
                signals=tuple(Signal.from_dict(s) for s in values.get("signals") or ()),
                engine=str(values.get("engine") or ""), listing=_listing(values.get("listing")),
                skipped_images=tuple(values.get("skipped_images") or ()), error=values.get("error"),
            )
        except ResultError:
            raise
        except KeyError as exc:
            raise ResultError(f"listing {data.get('listing_id', '?')}: field {exc} is missing") from exc
        except (TypeError, ValueError) as exc:
            raise ResultError(f"listing {data.get('listing_id', '?')}: {exc}") from exc


def error_verdict(listing: Listing, problems: Sequence[str], engine: str = "") -> Verdict:
    """The verdict of a listing none of whose photos could be read."""
    text = "; ".join(problems) or "no readable image"
    return Verdict(
        listing.listing_id, "error", 0.0, None, (Reason("ERROR", text),), engine=engine, listing=listing,
        skipped_images=tuple(str(p) for p in listing.images), error=text,
    )


def read_verdicts(path: str | Path) -> list[Verdict]:
    """The verdicts of a ``results.jsonl`` file (one JSON object a line, blank lines skipped); a bad line is a
    :class:`~knockoff.errors.ResultError` naming the file and the line."""
    path = Path(path)
    verdicts = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise ResultError("not a JSON object")
                verdicts.append(Verdict.from_dict(data))
            except (json.JSONDecodeError, ResultError) as exc:
                raise ResultError(f"{path}, line {number}: {exc}") from exc
    return verdicts
