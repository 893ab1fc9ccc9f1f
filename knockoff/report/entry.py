"""One listing as the reports show it: a small, flat :class:`Entry` made from a :class:`Verdict`.

Everything the CSV and the page say about a listing is decided here once, so that the two agree: which brand
it is counted under (only a real match's brand; a ``no_match`` row's nearest reference is not a match), the
state of every signal (hit, clear, unknown and why, or not checked), the price against the reference price or
the reason it could not be compared, and the text read from the photo when the result carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.catalog.readers import Listing
from knockoff.decide.signals import PRICE_IMPLAUSIBLE, TITLE_NAMES_BRAND
from knockoff.decide.verdict import Match, Verdict
from knockoff.report.results import MATCHED_VERDICTS

#: signal codes that always get a column, in this order; codes seen in the results are added after them
KNOWN_CODES: tuple[str, ...] = (
    "VISUAL_MATCH", "UNAUTHORIZED_SELLER", "PRICE_IMPLAUSIBLE", "BRAND_MISUSE", "REPLICA_TERMS",
    "BRAND_IN_PHOTO", "MISSPELLED_BRAND_IN_PHOTO",
)
NOT_CHECKED = "not checked"
_PHOTO_TEXT_KEYS = ("photo_text", "ocr_text")


#: one photo's text boxes: (photo path, width, height, ((8 corner coordinates), text) per box, the positions
#: of the boxes that a brand mention spans)
PhotoBoxes = tuple[str, int, int, tuple[tuple[tuple[int, ...], str], ...], tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Entry:
    """What the reports say about one listing (strings and tuples only, to keep 100,000 of them small)."""

    listing_id: str
    verdict: str
    risk: float
    brand: str  # the matched brand (a review on the title alone: the brand the title names), "" for no match
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
    text_boxes: tuple[PhotoBoxes, ...]  # the text boxes read, for photos that had any
    price_ratio: float | None  # listing price / reference price, when they could be compared
    price_note: str  # why the price could not be compared, when it could not

    @property
    def matched(self) -> bool:
        """A photo (or photo text) match: not a review that rests on the title alone, whose ``match`` is only the
        nearest reference (tier None), often of another brand than the one the title names."""
        return self.verdict in MATCHED_VERDICTS and bool(self.match) and self.match.get("tier") is not None

    def signal_state(self, code: str) -> str:
        """``hit``, ``clear``, ``unknown`` or ``not checked`` (no such signal in the result)."""
        return next((state for c, state, _ in self.signals if c == code), NOT_CHECKED)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _float(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _box(item: Any) -> tuple[tuple[int, ...], str] | None:
    """((x1, y1, ..., x4, y4), text) of one box read, or None when it is not four corners."""
    try:
        corners = tuple(round(float(c)) for point in item["box"] for c in point[:2])
        return (corners, str(item.get("text") or "")) if len(corners) == 8 else None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return None


def _read_photo(item: Any, marked: set[tuple[Any, int]]) -> PhotoBoxes | None:
    """One ``photo_text`` entry as the page draws it (None without a usable size or any box)."""
    if not isinstance(item, dict):
        return None
    try:
        width, height = (int(v) for v in item["size"])
    except (TypeError, ValueError, KeyError):
        return None
    boxes: list[tuple[tuple[int, ...], str]] = []
    hits: list[int] = []
    for number, raw in enumerate(item.get("boxes") or ()):
        box = _box(raw)
        if box is not None:
            if (item.get("photo"), number) in marked:
                hits.append(len(boxes))
            boxes.append(box)
    if not boxes or width <= 0 or height <= 0:
        return None
    return str(item.get("image") or ""), width, height, tuple(boxes), tuple(hits)


def _photo_text(verdict: Verdict) -> tuple[str, tuple[PhotoBoxes, ...]]:
    """The text read from the listing's photos, when a signal carries it in its details (a string, a list of
    strings, or the detector's ``photo_text`` entries with their boxes), and those boxes, photo by photo; the
    boxes a brand mention spans (its signal's ``mentions``) are marked."""
    marked = {(m.get("photo"), b) for s in verdict.signals for m in s.details.get("mentions") or ()
              if isinstance(m, dict) for b in m.get("boxes") or () if isinstance(b, int)}
    for signal in verdict.signals:
        for key in _PHOTO_TEXT_KEYS:
            value = signal.details.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip(), ()
            if isinstance(value, (list, tuple)) and value:
                photos = tuple(p for p in (_read_photo(v, marked) for v in value) if p is not None)
                texts = [str(b.get("text") or "") for v in value if isinstance(v, dict)
                         for b in v.get("boxes") or () if isinstance(b, dict)]
                texts += [str(v) for v in value if isinstance(v, (str, int, float))]
                return " ".join(t for t in texts if t.strip()), photos
    return "", ()


def _price(verdict: Verdict, listing: Listing | None, match: Match | None) -> tuple[float | None, str]:
    """(price ratio, note) from the PRICE_IMPLAUSIBLE signal; else from the same-currency prices."""
    signal = verdict.signal(PRICE_IMPLAUSIBLE)
    if signal is not None:
        share = _float(signal.details.get("share"))
        if share is not None:
            return round(share, 4), ""
        return None, signal.message if signal.state == "unknown" else ""
    if listing is None or match is None or match.tier is None or verdict.verdict not in MATCHED_VERDICTS:
        return None, ""
    price, reference = listing.price, match.reference_price
    if price is not None and reference and (listing.currency or None) == (match.reference_currency or None):
        return round(price / reference, 4), ""
    return None, ""


def _brand(verdict: Verdict) -> str:
    """The brand a listing is checked against: its match's; for a review on the title alone (no photo match, the
    ``match`` only the nearest reference), the brand the title names; "" otherwise."""
    match = verdict.match
    if verdict.verdict not in MATCHED_VERDICTS or match is None:
        return ""
    if match.tier is not None:
        return match.brand
    named = verdict.signal(TITLE_NAMES_BRAND)
    return str(named.details.get("brand") or "") if named is not None and named.hit else ""


def _listing_image(match: Match | None, images: tuple[str, ...]) -> str:
    return match.listing_image if match and match.listing_image else (images[0] if images else "")


def entry_from_result(verdict: Verdict) -> Entry:
    """The :class:`Entry` of one verdict (as :func:`knockoff.report.results.iter_results` reads it)."""
    match, listing = verdict.match, verdict.listing
    images = tuple(str(p) for p in listing.images if str(p)) if listing else ()
    ratio, note = _price(verdict, listing, match)
    photo_text, text_boxes = _photo_text(verdict)
    return Entry(
        listing_id=verdict.listing_id, verdict=verdict.verdict, risk=verdict.risk,
        brand=_brand(verdict),
        match=match.to_dict() if match else {}, images=images, listing_image=_listing_image(match, images),
        title=listing.title if listing else "", price=listing.price if listing else None,
        currency=_text(listing.currency) if listing else "", seller=_text(listing.seller).strip() if listing else "",
        reasons=tuple((r.code, r.message) for r in verdict.reasons),
        signals=tuple((s.code, s.state, s.message) for s in verdict.signals), error=_text(verdict.error),
        skipped=verdict.skipped_images, engine=verdict.engine, photo_text=photo_text, text_boxes=text_boxes,
        price_ratio=ratio, price_note=note,
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
