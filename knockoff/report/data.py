"""The page's data: a compact index of every listing (what search, sort and filters need) and detail chunks
(photos, match, reasons, signals) that the page loads when it shows their rows.

Both are JavaScript files calling ``KO.index(...)`` / ``KO.detail(...)``, so that a page opened from disk
(``file://``, where a page may not fetch files) can load them with ``<script>`` elements. User text is
JSON-encoded with ``<`` ``>`` ``&`` escaped, so it can never end a script element.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from knockoff.report.entry import Entry, fmt_money, file_name
from knockoff.report.results import VERDICT_ORDER
from knockoff.report.thumbs import Thumbnails

INDEX_CHUNK = 25_000
DETAIL_CHUNK = 100


def js_json(value: Any) -> str:
    """JSON safe to put inside a ``<script>`` element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


class Vocabulary:
    """Strings that repeat (brands, sellers, codes) stored once; rows hold their number."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, value: str) -> int:
        if not value:
            return -1
        if value not in self._ids:
            self._ids[value] = len(self.items)
            self.items.append(value)
        return self._ids[value]


def index_row(entry: Entry, brands: Vocabulary, sellers: Vocabulary, codes: Vocabulary) -> list[Any]:
    """[id, verdict, risk, brand, seller, price ratio, reason codes, title, photo text] of one listing."""
    verdict = VERDICT_ORDER.index(entry.verdict) if entry.verdict in VERDICT_ORDER else len(VERDICT_ORDER)
    reason_codes = sorted({codes.id(code) for code, _ in entry.reasons if code})
    return [entry.listing_id, verdict, round(entry.risk, 4), brands.id(entry.brand), sellers.id(entry.seller),
            entry.price_ratio, reason_codes, entry.title, entry.photo_text]


def _verification(match: dict[str, Any], photo: list[Any]) -> dict[str, Any] | None:
    ver = match.get("verification")
    if not isinstance(ver, dict):
        return None
    out = {"ok": ver.get("verified") is not False, "inl": ver.get("inliers"), "pix": ver.get("pixel_agreement"),
           "cov": ver.get("reference_coverage"), "fail": ver.get("failed_check")}
    box, frame = ver.get("reference_box"), ver.get("listing_size") or photo[1:3]
    try:
        points = [[round(float(p[0]), 1), round(float(p[1]), 1)] for p in (box or ())]
        frame = [float(frame[0]), float(frame[1])]
    except (TypeError, ValueError, IndexError, KeyError):
        points, frame = [], []
    if out["ok"] and len(points) == 4 and frame[0] > 0 and frame[1] > 0:
        out["box"], out["fr"] = points, frame  # a failed check's box would point at a region that does not match
    return out


def _match(entry: Entry, thumbs: Thumbnails, photo: list[Any]) -> dict[str, Any] | None:
    match = entry.match
    if not match:
        return None
    reference = str(match.get("reference_image") or "")
    label = match.get("reference_label") or file_name(reference)
    return {"b": match.get("brand"), "pn": match.get("product_name"), "pid": match.get("product_id"),
            "ref": thumbs.photo(reference).to_json(str(label)), "sim": match.get("similarity"),
            "tier": match.get("tier"), "ver": _verification(match, photo)}


def _text_boxes(entry: Entry, images: Sequence[str]) -> list[list[Any]]:
    """[photo position, width, height, [[x1, y1, ..., x4, y4, text], ...], [mention boxes]] per photo that had
    text read (the boxes in that photo's decoded size; the page scales them to the photo it shows)."""
    out = []
    for image, width, height, boxes, hits in entry.text_boxes:
        if image in images:
            out.append([images.index(image), width, height, [[*corners, text] for corners, text in boxes], list(hits)])
    return out


def detail_row(entry: Entry, thumbs: Thumbnails) -> dict[str, Any]:
    """Everything the page shows of one listing beyond the index: photos, match, reasons, signals, price."""
    images = entry.images or ((entry.listing_image,) if entry.listing_image else ())
    photos = [thumbs.photo(image).to_json(file_name(image)) for image in images]
    matched = images.index(entry.listing_image) if entry.listing_image in images else 0
    match = _match(entry, thumbs, photos[matched] if photos else [None, 0, 0])
    said = {(code, message) for code, _, message in entry.signals}  # a hit's reason is its signal's message
    row: dict[str, Any] = {"p": photos, "mi": matched, "r": [list(r) for r in entry.reasons if r not in said],
                           "s": [list(s) for s in entry.signals]}
    row["m" if entry.matched else "n"] = match
    reference = fmt_money(entry.match.get("reference_price"), entry.match.get("reference_currency"))
    row["pr"] = [fmt_money(entry.price, entry.currency), reference if entry.matched else "", entry.price_note]
    text = _text_boxes(entry, images)
    if text:
        row["t"] = text
    for key, value in (("e", entry.error), ("k", list(entry.skipped)), ("g", entry.engine)):
        if value:
            row[key] = value
    return row


def chunks(rows: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``rows`` cut in pieces of ``size``."""
    return [rows[i:i + size] for i in range(0, len(rows), size)] or [[]]
