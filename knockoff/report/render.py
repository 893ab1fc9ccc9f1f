"""Reports of a scan: ``results.csv`` for spreadsheets and one self-contained ``report.html`` for reviewers.

Both are made from ``results.jsonl`` (one :meth:`knockoff.Verdict.to_dict` per line). The rows are in review
order: suspects first by risk, then authorized, no_match and error listings.

Size limits, so that a scan of 100,000 listings gives a page a browser opens: the CSV has every row; the HTML
page has the first ``max_rows`` rows (default 5,000) and embeds photo thumbnails (base64 JPEG) for the first
``max_thumbnails`` of them (default 1,000, about 10-20 MB); the rows beyond show text only and the page says
so. Suspects come first, so the photos go to the listings a reviewer looks at. The summary at the top counts
every listing. The page is written as it is made, so memory holds the results and one thumbnail at a time
(plus a small cache of reference thumbnails, which many listings share).
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import io
import json
import logging
import os
import tempfile
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from PIL import Image, ImageDraw

from knockoff.errors import ConfigError, ImageError, ReportError
from knockoff.catalog.images import load_image

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
CSV_FILE = "results.csv"
HTML_FILE = "report.html"

VERDICT_ORDER: tuple[str, ...] = ("suspect", "authorized", "no_match", "error")

CSV_COLUMNS: tuple[str, ...] = (
    "listing_id", "verdict", "risk", "brand", "product_id", "product_name", "similarity", "tier",
    "reference_image", "listing_image", "title", "price", "currency", "reference_price", "reference_currency",
    "seller", "reasons", "error",
)

DEFAULT_MAX_ROWS = 5_000
DEFAULT_MAX_THUMBNAILS = 1_000
_REFERENCE_CACHE_SIZE = 256
_BOX_COLOR = (255, 0, 200)
_PLACEHOLDER_COLOR = (200, 200, 200)


# -- reading -------------------------------------------------------------------------------------------------


def read_results(out_dir_or_jsonl: str | Path) -> list[dict[str, Any]]:
    """Read the results of a scan: a ``results.jsonl`` file, or the scan's output directory holding one.

    A line that is not a JSON object (the torn last line of a killed scan) is skipped with a logged warning.
    A listing that appears more than once keeps its last line. The order is the order of first appearance.
    """
    return _read_results(out_dir_or_jsonl, drop=())


def _read_results(out_dir_or_jsonl: str | Path, drop: Sequence[str]) -> list[dict[str, Any]]:
    path = Path(out_dir_or_jsonl)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ReportError(f"{path}: no results file (run `knockoff scan` first)")
    results: dict[str, dict[str, Any]] = {}
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                torn = "" if line.endswith("\n") else " (torn last line, e.g. of a killed scan)"
                log.warning("%s, line %d: skipped, not valid JSON%s: %s", path, number, torn, exc)
                continue
            if not isinstance(row, dict) or not isinstance(row.get("listing_id"), str):
                log.warning("%s, line %d: skipped, not a result (no listing_id)", path, number)
                continue
            for key in drop:
                row.pop(key, None)
            results[row["listing_id"]] = row
    return list(results.values())


# -- ordering and fields -------------------------------------------------------------------------------------


def _risk(row: dict[str, Any]) -> float:
    try:
        return float(row.get("risk") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _rank(row: dict[str, Any]) -> int:
    verdict = row.get("verdict")
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def sort_results(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Review order: suspects by risk (highest first), then authorized, no_match, error; ties by listing id."""
    return sorted(results, key=lambda r: (_rank(r), -_risk(r), str(r.get("listing_id", ""))))


def _match(row: dict[str, Any]) -> dict[str, Any]:
    match = row.get("match")
    return match if isinstance(match, dict) else {}


def _listing(row: dict[str, Any]) -> dict[str, Any]:
    listing = row.get("listing")
    return listing if isinstance(listing, dict) else {}


def _brand(row: dict[str, Any]) -> str:
    return str(_match(row).get("brand") or "")


def _listing_image(row: dict[str, Any]) -> str:
    image = _match(row).get("listing_image")
    if image:
        return str(image)
    images = _listing(row).get("images") or []
    return str(images[0]) if images else ""


def _reason_messages(row: dict[str, Any]) -> list[str]:
    out = []
    for reason in row.get("reasons") or []:
        if isinstance(reason, dict):
            out.append(str(reason.get("message", "")))
        else:
            out.append(str(reason))
    return out


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _fmt_money(amount: Any, currency: Any) -> str:
    if amount is None or amount == "":
        return ""
    try:
        text = f"{float(amount):,.2f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError):
        text = str(amount)
    return f"{text} {currency}" if currency else text


# -- CSV -----------------------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula (CSV injection) gets a leading quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return _blank(value)


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """The flat row of one result, with the columns of :data:`CSV_COLUMNS` (values not yet escaped)."""
    match, listing = _match(row), _listing(row)
    return {
        "listing_id": row.get("listing_id"),
        "verdict": row.get("verdict"),
        "risk": row.get("risk"),
        "brand": match.get("brand"),
        "product_id": match.get("product_id"),
        "product_name": match.get("product_name"),
        "similarity": match.get("similarity"),
        "tier": match.get("tier"),
        "reference_image": match.get("reference_image"),
        "listing_image": _listing_image(row),
        "title": listing.get("title"),
        "price": listing.get("price"),
        "currency": listing.get("currency"),
        "reference_price": match.get("reference_price"),
        "reference_currency": match.get("reference_currency"),
        "seller": listing.get("seller"),
        "reasons": " | ".join(_reason_messages(row)),
        "error": row.get("error"),
    }


def write_csv(results: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write ``results.csv``: one row per listing, the columns of :data:`CSV_COLUMNS`, suspects first by risk.

    Text cells that start like a spreadsheet formula (``=``, ``+``, ``-``, ``@``) get a leading ``'``.
    """
    path = Path(path)
    with _atomic_writer(path, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in sort_results(results):
            writer.writerow({k: _cell(v) for k, v in csv_row(row).items()})
    return path


# -- thumbnails ----------------------------------------------------------------------------------------------


def _resolve(image: str, base_dir: Path | None) -> Path:
    path = Path(image)
    if not path.is_absolute() and base_dir is not None and not path.exists():
        candidate = base_dir / path
        if candidate.exists():
            return candidate
    return path


def _full_size(path: Path) -> tuple[int, int] | None:
    """The size of the photo as :func:`load_image` gives it at full resolution (EXIF orientation applied)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, KeyError, Image.DecompressionBombError):
        return None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


@functools.lru_cache(maxsize=4)
def _placeholder_uri(size: int) -> str:
    return _data_uri(_placeholder(size))


def _placeholder(size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), _PLACEHOLDER_COLOR)
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, size - 1, size - 1), fill=(170, 170, 170), width=2)
    draw.line((0, size - 1, size - 1, 0), fill=(170, 170, 170), width=2)
    return image


def _data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _box_points(verification: Any) -> list[tuple[float, float]] | None:
    if not isinstance(verification, dict) or verification.get("verified") is False:
        return None  # a failed check's box would point the reviewer at a region that does not match
    box = verification.get("reference_box")
    try:
        points = [(float(p[0]), float(p[1])) for p in box]  # type: ignore[union-attr]
    except (TypeError, ValueError, IndexError, KeyError):
        return None
    return points if len(points) == 4 else None


def _frame(value: Any) -> tuple[float, float] | None:
    try:
        width, height = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def make_thumbnail(
    image_path: str | Path | None,
    size: int = 160,
    *,
    box: Sequence[Sequence[float]] | None = None,
    box_frame: Sequence[float] | None = None,
) -> tuple[str, str | None]:
    """A JPEG data URI of the photo fitted in ``size`` x ``size``, and the problem when it is a placeholder.

    ``box``: four ``[x, y]`` points in the photo's pixel coordinates (at full resolution, EXIF orientation
    applied; or in a ``box_frame`` of ``[width, height]`` when given), drawn as a closed quadrilateral.
    A missing or unreadable photo gives a grey placeholder and the reason, never an exception.
    """
    if not image_path:
        return _placeholder_uri(size), "no photo"
    path = Path(image_path)
    try:
        image = load_image(path, min_side=size)
    except ImageError as error:
        return _placeholder_uri(size), error.problem
    frame = _frame(box_frame) or _full_size(path) or image.size if box is not None else image.size
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    if box is not None and frame[0] > 0 and frame[1] > 0:
        sx, sy = image.width / float(frame[0]), image.height / float(frame[1])
        points = [(x * sx, y * sy) for x, y in box]
        draw = ImageDraw.Draw(image)
        draw.line([*points, points[0]], fill=_BOX_COLOR, width=max(2, size // 60), joint="curve")
    return _data_uri(image), None


class _Thumbnails:
    """Makes thumbnails; reference photos (shared by many listings) are cached."""

    def __init__(self, size: int, base_dir: Path | None):
        self.size = size
        self.base_dir = base_dir
        self._references: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def listing(self, row: dict[str, Any]) -> tuple[str, str | None]:
        image = _listing_image(row)
        verification = _match(row).get("verification")
        box = _box_points(verification)
        # The box is in the pixels of the listing photo as the verifier saw it: ``listing_size`` [w, h] when
        # the verification records it, else the photo's full size (EXIF orientation applied).
        frame = verification.get("listing_size") if isinstance(verification, dict) else None
        path = _resolve(image, self.base_dir) if image else None
        return make_thumbnail(path, self.size, box=box, box_frame=frame)

    def reference(self, row: dict[str, Any]) -> tuple[str, str | None]:
        image = str(_match(row).get("reference_image") or "")
        cached = self._references.get(image)
        if cached is not None:
            self._references.move_to_end(image)
            return cached
        made = make_thumbnail(_resolve(image, self.base_dir) if image else None, self.size)
        self._references[image] = made
        if len(self._references) > _REFERENCE_CACHE_SIZE:
            self._references.popitem(last=False)
        return made


# -- HTML ----------------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f4f5f8}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c5cad6;font-size:13px}
main{padding:16px 24px}
.summary{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:10px 14px;box-shadow:0 1px 2px rgba(0,0,0,.08);min-width:110px}
.card b{display:block;font-size:22px} .card span{color:#5b6475;font-size:12px;text-transform:uppercase}
.card.suspect b{color:#c0262d} .card.authorized b{color:#1c7c3c} .card.error b{color:#a15c00}
table.brands{border-collapse:collapse;background:#fff;border-radius:8px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
table.brands th,table.brands td{padding:4px 12px;text-align:right;border-bottom:1px solid #eceef3}
table.brands th:first-child,table.brands td:first-child{text-align:left}
.filters{display:flex;gap:16px;align-items:center;margin:16px 0;background:#fff;padding:10px 14px;border-radius:8px;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
.filters select{font:inherit;padding:2px 6px} #shown{color:#5b6475}
.note{background:#fff8e1;border:1px solid #f0d98c;padding:8px 12px;border-radius:6px;margin:8px 0}
table.results{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
table.results th{position:sticky;top:0;background:#e9ecf2;text-align:left;padding:6px 8px;font-size:12px;
 text-transform:uppercase;color:#4a5264;z-index:1}
table.results td{padding:8px;border-top:1px solid #eceef3;vertical-align:top}
tr.suspect td:first-child{border-left:4px solid #c0262d} tr.authorized td:first-child{border-left:4px solid #1c7c3c}
tr.no_match td:first-child{border-left:4px solid #9aa1ae} tr.error td:first-child{border-left:4px solid #e08a00}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.badge.suspect{background:#c0262d} .badge.authorized{background:#1c7c3c} .badge.no_match{background:#8a91a0}
.badge.error{background:#e08a00}
.risk{font-size:18px;font-weight:700;margin-top:4px}
.bar{height:5px;background:#eceef3;border-radius:3px;width:80px} .bar i{display:block;height:5px;border-radius:3px;
 background:#c0262d}
.pair{display:flex;gap:8px;align-items:flex-start}
figure{margin:0;text-align:center;flex:none}
figure img{display:block;border:1px solid #d5d9e2;background:#eee;object-fit:contain}
figcaption{font-size:11px;color:#5b6475;max-width:var(--thumb);overflow-wrap:anywhere}
.missing{color:#a15c00}
.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere;color:#4a5264}
td.match{min-width:150px}
.title{font-weight:600;overflow-wrap:anywhere} ul.reasons{margin:0;padding-left:18px} ul.reasons li{margin:2px 0}
.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;color:#5b6475}
.muted{color:#8a91a0}
"""

_JS = """
(function(){
  var brand=document.getElementById('f-brand'), verdict=document.getElementById('f-verdict'),
      shown=document.getElementById('shown'), rows=document.querySelectorAll('tr.row');
  function apply(){
    var b=brand.value, v=verdict.value, n=0;
    for(var i=0;i<rows.length;i++){
      var r=rows[i], ok=(b==='*'||r.getAttribute('data-brand')===b)&&(v==='*'||r.getAttribute('data-verdict')===v);
      r.hidden=!ok; if(ok){n++;}
    }
    shown.textContent=n+' of '+rows.length+' rows shown';
  }
  brand.addEventListener('change',apply); verdict.addEventListener('change',apply); apply();
})();
"""


def _figure(uri: str, problem: str | None, caption: str, alt: str, css_class: str, size: int) -> str:
    note = f'<br><span class="missing">{_e(problem)}</span>' if problem else ""
    return (
        f'<figure><img class="{css_class}" src="{uri}" alt="{_e(alt)}" width="{size}" height="{size}" '
        f'loading="eager"><figcaption>{_e(caption)}{note}</figcaption></figure>'
    )


def _price_cell(row: dict[str, Any]) -> str:
    listing, match = _listing(row), _match(row)
    price = _fmt_money(listing.get("price"), listing.get("currency"))
    reference = _fmt_money(match.get("reference_price"), match.get("reference_currency"))
    parts = []
    parts.append(f"<div>{_e(price)}</div>" if price else '<div class="muted">no price</div>')
    if reference:
        ratio = ""
        same = (listing.get("currency") or None) == (match.get("reference_currency") or None)
        try:
            if same and listing.get("price") is not None and float(match["reference_price"]) > 0:
                ratio = f" ({float(listing['price']) / float(match['reference_price']):.0%})"
        except (TypeError, ValueError, KeyError):
            ratio = ""
        parts.append(f'<div class="muted">reference {_e(reference)}{_e(ratio)}</div>')
    return "".join(parts)


def _row_html(row: dict[str, Any], number: int, thumbs: _Thumbnails | None, size: int) -> str:
    verdict = str(row.get("verdict") or "")
    match, listing = _match(row), _listing(row)
    brand = _brand(row)
    risk = _risk(row)
    listing_image = _listing_image(row)
    photos = ""
    if thumbs is not None:
        uri, problem = thumbs.listing(row)
        photos += _figure(uri, problem, "listing: " + Path(listing_image).name if listing_image else "listing",
                          f"listing photo {listing_image}", "thumb listing", size)
        if match:
            uri, problem = thumbs.reference(row)
            label = match.get("reference_label") or Path(str(match.get("reference_image") or "")).name
            kind = "closest reference" if verdict == "no_match" else "reference"
            photos += _figure(uri, problem, f"{kind}: {label}", f"reference photo {label}", "thumb reference", size)
    else:
        photos = f'<span class="muted">{_e(listing_image)}</span>'
    if match:
        similarity = match.get("similarity")
        verification = match.get("verification")
        verified = ""
        if isinstance(verification, dict) and verification.get("verified") is False:
            failed = verification.get("failed_check") or "not verified"
            verified = f'<div class="muted">geometric check failed: {_e(failed)}</div>'
        elif isinstance(verification, dict) and verification.get("inliers") is not None:
            verified = f'<div class="muted">{_e(verification.get("inliers"))} matched keypoints</div>'
        match_html = (
            f"<div><b>{_e(brand)}</b> · {_e(match.get('product_name') or match.get('product_id'))}</div>"
            f'<div class="code">{_e(match.get("product_id"))}</div>'
            f"<div>similarity {_e(similarity)}</div>"
            f"<div>{_e(match.get('tier') or 'below match threshold')}</div>{verified}"
        )
    else:
        match_html = '<span class="muted">no match</span>'
    reasons = "".join(
        f'<li><span class="code">{_e(r.get("code"))}</span> {_e(r.get("message"))}</li>'
        if isinstance(r, dict) else f"<li>{_e(r)}</li>"
        for r in (row.get("reasons") or [])
    )
    if row.get("error") and not reasons:
        reasons = f"<li>{_e(row.get('error'))}</li>"
    skipped = row.get("skipped_images") or []
    if skipped and verdict != "error":
        reasons += f'<li class="missing">{len(skipped)} photo(s) could not be read</li>'
    title = listing.get("title")
    seller = listing.get("seller")
    return (
        f'<tr class="row {_e(verdict)}" data-verdict="{_e(verdict)}" data-brand="{_e(brand)}" '
        f'data-risk="{risk:.4f}" data-listing="{_e(row.get("listing_id"))}" id="r{number}">'
        f'<td><span class="badge {_e(verdict)}">{_e(verdict.replace("_", " "))}</span>'
        f'<div class="risk">{risk:.2f}</div><div class="bar"><i style="width:{min(max(risk, 0.0), 1.0) * 100:.0f}%">'
        f"</i></div></td>"
        f'<td><div class="pair">{photos}</div></td>'
        f'<td class="match">{match_html}</td>'
        f'<td><div class="title">{_e(title) if title else "<span class=muted>no title</span>"}</div>'
        f'<div class="id">{_e(row.get("listing_id"))}</div><ul class="reasons">{reasons}</ul></td>'
        f"<td>{_price_cell(row)}</td>"
        f'<td>{_e(seller) if seller else "<span class=muted>unknown</span>"}</td>'
        "</tr>\n"
    )


def _summary_html(rows: Sequence[dict[str, Any]]) -> str:
    verdicts = Counter(str(r.get("verdict")) for r in rows)
    cards = [f'<div class="card total"><b>{len(rows):,}</b><span>listings</span></div>']
    for verdict in VERDICT_ORDER:
        label = "errors" if verdict == "error" else verdict.replace("_", " ")
        cards.append(f'<div class="card {verdict}"><b>{verdicts.get(verdict, 0):,}</b><span>{label}</span></div>')
    others = sum(n for v, n in verdicts.items() if v not in VERDICT_ORDER)
    if others:
        cards.append(f'<div class="card"><b>{others:,}</b><span>unknown verdict</span></div>')
    per_brand: dict[str, Counter[str]] = {}
    for row in rows:
        per_brand.setdefault(_brand(row), Counter())[str(row.get("verdict"))] += 1
    brand_rows = "".join(
        f"<tr><td>{_e(brand) if brand else '<span class=muted>(no brand)</span>'}</td>"
        + "".join(f"<td>{counts.get(v, 0):,}</td>" for v in VERDICT_ORDER)
        + f"<td>{sum(counts.values()):,}</td></tr>"
        for brand, counts in sorted(per_brand.items(), key=lambda kv: (kv[0] == "", -kv[1]["suspect"], kv[0]))
    )
    header = "".join(f"<th>{v.replace('_', ' ')}</th>" for v in VERDICT_ORDER)
    return (
        f'<section class="summary" id="summary">{"".join(cards)}</section>'
        f'<table class="brands" id="per-brand"><thead><tr><th>brand</th>{header}<th>total</th></tr></thead>'
        f"<tbody>{brand_rows}</tbody></table>"
    )


def _filters_html(rows: Sequence[dict[str, Any]]) -> str:
    brands = sorted({_brand(r) for r in rows})
    brand_options = "".join(
        f'<option value="{_e(b)}">{_e(b) if b else "(no brand)"}</option>' for b in brands
    )
    verdict_options = "".join(
        f'<option value="{v}">{v.replace("_", " ")}</option>' for v in VERDICT_ORDER
    )
    return (
        '<div class="filters">'
        f'<label>Brand <select id="f-brand"><option value="*">all</option>{brand_options}</select></label>'
        f'<label>Verdict <select id="f-verdict"><option value="*">all</option>{verdict_options}</select></label>'
        '<span id="shown"></span></div>'
    )


def write_html(
    results: Iterable[dict[str, Any]],
    path: str | Path,
    *,
    thumbnail_size: int = 160,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_thumbnails: int = DEFAULT_MAX_THUMBNAILS,
    title: str = "knockoff report",
    base_dir: str | Path | None = None,
) -> Path:
    """Write one self-contained HTML page for reviewers (no external assets); return its path.

    Rows in review order (:func:`sort_results`), each with the listing photo beside the matched reference
    photo (the region found by geometric verification drawn on the listing photo), similarity, tier, the
    reasons, the price against the reference price and the seller. A summary (per verdict, per brand) and
    brand/verdict filters at the top. Photos are embedded as JPEG data URIs for the first ``max_thumbnails``
    rows; the page lists the first ``max_rows`` rows (the summary counts all). Relative photo paths that do
    not exist from the working directory are looked up under ``base_dir`` (default: the page's folder).
    """
    if thumbnail_size < 16:
        raise ConfigError(f"thumbnail_size must be at least 16, got {thumbnail_size}")
    if max_rows < 0 or max_thumbnails < 0:
        raise ConfigError("max_rows and max_thumbnails must be >= 0")
    path = Path(path)
    rows = sort_results(results)
    thumbs = _Thumbnails(thumbnail_size, Path(base_dir) if base_dir is not None else path.parent)
    shown = rows[:max_rows]
    engines = sorted({str(r.get("engine")) for r in rows if r.get("engine")})
    notes = []
    if len(rows) > len(shown):
        notes.append(f"This page lists the first {len(shown):,} of {len(rows):,} listings in review order; "
                     f"results.csv has all of them.")
    if len(shown) > max_thumbnails:
        notes.append(f"Photos are shown for the first {max_thumbnails:,} rows only, to keep the page small; "
                     f"the rows below them show the photo paths.")
    with _atomic_writer(path) as out:
        out.write(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>{_e(title)}</title><style>{_CSS}:root{{--thumb:{thumbnail_size}px}}</style></head><body>\n"
            f"<header><h1>{_e(title)}</h1><p>{len(rows):,} listings"
            + (f" · engine {_e(', '.join(engines))}" if engines else "")
            + " · suspects first, by risk</p></header><main>\n"
        )
        out.write(_summary_html(rows))
        out.write(_filters_html(shown))
        for note in notes:
            out.write(f'<p class="note">{_e(note)}</p>')
        out.write(
            '<table class="results" id="results"><thead><tr><th>verdict · risk</th><th>listing photo · reference'
            "</th><th>match</th><th>listing · reasons</th><th>price</th><th>seller</th></tr></thead><tbody>\n"
        )
        for number, row in enumerate(shown):
            out.write(_row_html(row, number, thumbs if number < max_thumbnails else None, thumbnail_size))
        out.write(f"</tbody></table></main><script>{_JS}</script></body></html>\n")
    return path


# -- both ----------------------------------------------------------------------------------------------------


def write_reports(out_dir: str | Path) -> tuple[Path, Path]:
    """Read ``out_dir/results.jsonl``; write ``out_dir/results.csv`` and ``out_dir/report.html``."""
    out_dir = Path(out_dir)
    # The signals (the largest part of a result) are in neither report: dropping them as the lines are read
    # halves the memory of a large scan.
    results = _read_results(out_dir / RESULTS_FILE, drop=("signals",))
    csv_path = write_csv(results, out_dir / CSV_FILE)
    html_path = write_html(results, out_dir / HTML_FILE, base_dir=out_dir)
    log.info("wrote %s and %s (%d listings)", csv_path, html_path, len(results))
    return csv_path, html_path


class _atomic_writer:
    """A text file written to a temporary name in the same folder and renamed into place when complete."""

    def __init__(self, path: Path, newline: str | None = None):
        self.path = path
        self.newline = newline
        self._handle: TextIO | None = None
        self._tmp = ""

    def __enter__(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self._handle = os.fdopen(fd, "w", encoding="utf-8", newline=self.newline)
        return self._handle

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._handle is not None:
            self._handle.close()
        if exc_type is None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self._tmp, 0o666 & ~umask)
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)
