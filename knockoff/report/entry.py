"""One listing as the reports show it: a small, flat :class:`Entry` made from a results line.

Everything the CSV and the page say about a listing is decided here once, so that the two agree: which brand
it is counted under (only a real match's brand; a ``no_match`` row's nearest reference is not a match), the
state of every signal (hit, clear, unknown and why, or not checked), the price against the reference price or
the reason it could not be compared, and the text read from the photo when the result carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.report.results import MATCHED_VERDICTS, risk_of

#: signal codes that always get a column, in this order; codes seen in the results are added after them
KNOWN_CODES: tuple[str, ...] = (
    "VISUAL_MATCH", "UNAUTHORIZED_SELLER", "PRICE_IMPLAUSIBLE", "BRAND_MISUSE", "REPLICA_TERMS",
    "BRAND_IN_PHOTO", "MISSPELLED_BRAND_IN_PHOTO",
)
NOT_CHECKED = "not checked"
_PHOTO_TEXT_KEYS = ("photo_text", "ocr_text")


@dataclass(frozen=True, slots=True)
class Entry:
    """What the reports say about one listing (strings and tuples only, to keep 100,000 of them small)."""

    listing_id: str
    verdict: str
    risk: float
    brand: str  # the matched brand, "" unless the verdict is a match (suspect, review, authorized)
    match: dict[str, Any]  # the match (for no_match: the nearest reference, which is NOT a match), or {}
    images: tuple[str, ...]
    listing_image: str  # the photo the match was found in (else the first photo)
    title: str
    price: float | None
    currency: str
    seller: str
    reasons: tuple[tuple[str, str], ...]  # (code, message)
    signals: tuple[tuple[str, str, str], ...]  # (code, state, message)
    error: str
    skipped: tuple[str, ...]
    engine: str
    photo_text: str
    price_ratio: float | None  # listing price / reference price, when they could be compared
    price_note: str  # why the price could not be compared, when it could not

    @property
    def matched(self) -> bool:
        return self.verdict in MATCHED_VERDICTS and bool(self.match)

    def signal_state(self, code: str) -> str:
        """``hit``, ``clear``, ``unknown`` or ``not checked`` (no such signal in the result)."""
        return next((state for c, state, _ in self.signals if c == code), NOT_CHECKED)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _pairs(items: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items or ():
        if isinstance(item, dict):
            out.append((_text(item.get("code")), _text(item.get("message"))))
        else:
            out.append(("", _text(item)))
    return tuple(out)


def _signals(items: Any) -> tuple[tuple[str, str, str], ...]:
    out = []
    for item in items or ():
        if isinstance(item, dict) and item.get("code"):
            out.append((_text(item["code"]), _text(item.get("state") or "unknown"), _text(item.get("message"))))
    return tuple(out)


def _photo_text(row: dict[str, Any], listing: dict[str, Any]) -> str:
    for source in (row, listing, _dict(row.get("match"))):
        for key in _PHOTO_TEXT_KEYS:
            value = source.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, (list, tuple)):
                return " ".join(str(v) for v in value if v)
    return ""


def _price(row: dict[str, Any], listing: dict[str, Any], match: dict[str, Any]) -> tuple[float | None, str]:
    """(price ratio, note) from the PRICE_IMPLAUSIBLE signal; else from the same-currency prices."""
    signal = next((s for s in row.get("signals") or () if isinstance(s, dict)
                   and s.get("code") == "PRICE_IMPLAUSIBLE"), None)
    if signal is not None:
        share = _float(_dict(signal.get("details")).get("share"))
        if share is not None:
            return round(share, 4), ""
        return None, _text(signal.get("message")) if signal.get("state") == "unknown" else ""
    price, reference = _float(listing.get("price")), _float(match.get("reference_price"))
    same = (listing.get("currency") or None) == (match.get("reference_currency") or None)
    if price is not None and reference and same and row.get("verdict") in MATCHED_VERDICTS:
        return round(price / reference, 4), ""
    return None, ""


def _listing_image(match: dict[str, Any], images: tuple[str, ...]) -> str:
    image = match.get("listing_image")
    return str(image) if image else (images[0] if images else "")


def entry_from_result(row: dict[str, Any]) -> Entry:
    """The :class:`Entry` of one results line (as :func:`knockoff.report.results.read_results` gives it)."""
    match, listing = _dict(row.get("match")), _dict(row.get("listing"))
    images = tuple(str(p) for p in listing.get("images") or () if p)
    verdict = _text(row.get("verdict"))
    ratio, note = _price(row, listing, match)
    return Entry(
        listing_id=_text(row.get("listing_id")), verdict=verdict, risk=risk_of(row),
        brand=_text(match.get("brand")) if verdict in MATCHED_VERDICTS else "",
        match=match, images=images, listing_image=_listing_image(match, images),
        title=_text(listing.get("title")), price=_float(listing.get("price")), currency=_text(listing.get("currency")),
        seller=_text(listing.get("seller")).strip(), reasons=_pairs(row.get("reasons")),
        signals=_signals(row.get("signals")), error=_text(row.get("error")),
        skipped=tuple(str(p) for p in row.get("skipped_images") or ()), engine=_text(row.get("engine")),
        photo_text=_photo_text(row, listing), price_ratio=ratio, price_note=note,
    )


def signal_codes(entries: list[Entry]) -> tuple[str, ...]:
    """:data:`KNOWN_CODES`, then any other signal code seen in the entries (sorted)."""
    seen = {code for e in entries for code, _, _ in e.signals}
    return KNOWN_CODES + tuple(sorted(seen - set(KNOWN_CODES)))


def fmt_money(amount: Any, currency: Any) -> str:
    """``1,234.5 USD``; "" for no amount."""
    value = _float(amount)
    if value is None:
        return ""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{text} {currency}" if currency else text


def file_name(path: str) -> str:
    """The last part of a path, for captions."""
    return Path(path).name if path else ""
