"""``write_reports``: a scan's ``results.jsonl`` -> ``results.csv`` and the reviewer's ``report.html``.

Small scans (up to :data:`ONE_FILE_MAX` listings) get one self-contained ``report.html`` (data and photos
inline: it can be mailed). Larger ones get ``report.html`` plus a ``report/`` folder: ``data/`` holds the
index of every listing (what search, sort and filters need, about 150 bytes a listing) and detail chunks of
:data:`~knockoff.report.data.DETAIL_CHUNK` listings that the page loads when it shows them; ``thumbs/`` holds
each photo's list and enlarged thumbnails as JPEG files (kept between rebuilds). The page opens from disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.report import data, page
from knockoff.report.csvfile import write_entries_csv
from knockoff.report.entry import Entry, entry_from_result
from knockoff.report.files import atomic_writer
from knockoff.report.results import VERDICT_ORDER, iter_results, rank_of
from knockoff.run.store import META_FILE, RESULTS_FILE
from knockoff.report.thumbs import LARGE, SMALL, Thumbnails

log = logging.getLogger(__name__)

CSV_FILE = "results.csv"
HTML_FILE = "report.html"
ASSETS_DIR = "report"
ONE_FILE_MAX = 200
ONE_FILE_LARGE = 480
PAGE_SIZE = 50


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_reports` wrote, and how long the thumbnails took."""

    csv: Path
    html: Path
    folder: Path | None  # None for a one-file report
    listings: int
    thumbnails_made: int
    thumbnails_reused: int
    thumbnail_seconds: float

    def __iter__(self):  # ``csv_path, html_path = write_reports(...)`` keeps working
        return iter((self.csv, self.html))


def sort_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Review order (as :func:`knockoff.report.results.sort_results`)."""
    return sorted(entries, key=lambda e: (rank_of(e.verdict), -e.risk, e.listing_id))


def scan_id(out_dir: Path) -> str:
    """Names the scan for the page's saved decisions: the folder's path and the scan's settings file, less how
    the index was checked at each run (``index_check``), so that the name stays the same when a scan resumes."""
    meta = out_dir / META_FILE
    settings = meta.read_text(encoding="utf-8", errors="replace") if meta.is_file() else ""
    text = str(out_dir.resolve()) + "\0" + _without_index_check(settings)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _without_index_check(settings: str) -> str:
    """``scan.json``'s text as it was written before it recorded ``index_check`` (the same JSON, indent 1)."""
    try:
        data = json.loads(settings)
    except ValueError:
        return settings
    if not isinstance(data, dict) or "index_check" not in data:
        return settings
    data.pop("index_check")
    return json.dumps(data, indent=1)


def _vocabularies(entries: Sequence[Entry]) -> tuple[data.Vocabulary, data.Vocabulary, data.Vocabulary]:
    """Brands and sellers in alphabetical order (so the filters list them so); reason codes as first seen."""
    brands, sellers, codes = data.Vocabulary(), data.Vocabulary(), data.Vocabulary()
    for name in sorted({e.brand for e in entries if e.brand}, key=str.casefold):
        brands.id(name)
    for name in sorted({e.seller for e in entries if e.seller}, key=str.casefold):
        sellers.id(name)
    for code in sorted({c for e in entries for c, _ in e.reasons if c}):
        codes.id(code)
    return brands, sellers, codes


def _meta(entries: Sequence[Entry], vocab: tuple[data.Vocabulary, ...], ident: str, inline: bool,
          large: int) -> dict[str, Any]:
    brands, sellers, codes = vocab
    return {"scan": ident, "n": len(entries), "verdicts": list(VERDICT_ORDER), "brands": brands.items,
            "sellers": sellers.items, "codes": codes.items, "page_size": PAGE_SIZE,
            "detail_size": data.DETAIL_CHUNK, "inline": inline, "small": SMALL, "large": large,
            "data": f"{ASSETS_DIR}/data", "thumbs": f"{ASSETS_DIR}/thumbs"}


def _scripts(entries: Sequence[Entry], thumbs: Thumbnails, meta: dict[str, Any], vocab: tuple[Any, ...]):
    """(file name, script text) of the index chunks, then the detail chunks (made as they are yielded)."""
    index = [data.index_row(e, *vocab) for e in entries]
    yield "meta.js", f"KO.setMeta({data.js_json(meta)});\n"
    for number, chunk in enumerate(data.chunks(index, data.INDEX_CHUNK)):
        yield f"index-{number:03d}.js", f"KO.index({number},{data.js_json(list(chunk))});\n"
    for number, chunk in enumerate(data.chunks(entries, data.DETAIL_CHUNK)):
        rows = [data.detail_row(e, thumbs) for e in chunk]
        yield f"d-{number:05d}.js", f"KO.detail({number},{data.js_json(rows)});\n"


def index_check_note(out_dir: Path) -> str | None:
    """How the scan's index was checked against its manifest at the last run, from ``scan.json``; None when the
    scan recorded nothing (no scan.json, or one written before scans recorded it)."""
    try:
        data = json.loads((out_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    check = data.get("index_check") if isinstance(data, dict) else None
    summary = check.get("summary") if isinstance(check, dict) else None
    return f"index checksums: {summary}" if isinstance(summary, str) and summary else None


def _page_top(entries: Sequence[Entry], title: str, codes: Sequence[str], brands: Sequence[str],
              notes: Sequence[str] = ()) -> str:
    engines = sorted({e.engine for e in entries if e.engine})
    subtitle = f"{len(entries):,} listings" + (f" · engine {', '.join(engines)}" if engines else "")
    subtitle += " · suspects first, then review (a person must look), by risk"
    return (page.page_head(title, subtitle, notes) + page.summary_html(entries)
            + f'<div class="tables">{page.brands_html(entries)}{page.sellers_html(entries)}</div>'
            + page.controls_html(brands, codes) + page.TABLE + page.VIEWER + "</main>\n")


def _swap_folder(new: Path, target: Path) -> None:
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_page(entries: Sequence[Entry], out_dir: Path, *, one_file: bool, title: str = "knockoff report",
               base_dir: Path | None = None) -> tuple[Path, Thumbnails]:
    """Write ``report.html`` (and, unless ``one_file``, the ``report/`` folder) for entries in review order."""
    folder = out_dir / ASSETS_DIR
    thumbs = Thumbnails(None if one_file else folder / "thumbs", base_dir or out_dir,
                        large=ONE_FILE_LARGE if one_file else LARGE)
    vocab = _vocabularies(entries)
    meta = _meta(entries, vocab, scan_id(out_dir), one_file, thumbs.large)
    note = index_check_note(out_dir)
    top = _page_top(entries, title, vocab[2].items, vocab[0].items, [note] if note else [])
    script = "<script>{}</script>\n".format
    with atomic_writer(out_dir / HTML_FILE) as out:
        out.write(top + script(page.asset("prelude.js")))
        if one_file:
            for _, text in _scripts(entries, thumbs, meta, vocab):
                out.write(script(text))
            out.write(script(f"KO.images({data.js_json(thumbs.inline)});"))
        else:
            staging = folder / "data.new"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for name, text in _scripts(entries, thumbs, meta, vocab):
                (staging / name).write_text(text, encoding="utf-8")
                if not name.startswith("d-"):
                    out.write(f'<script src="{ASSETS_DIR}/data/{name}"></script>\n')
            _swap_folder(staging, folder / "data")
        out.write(script(page.asset("report.js")) + "</body></html>\n")
    if one_file:
        shutil.rmtree(folder, ignore_errors=True)  # a folder report of this scan written before is stale now
    return out_dir / HTML_FILE, thumbs


def write_reports(out_dir: str | Path, *, one_file: bool | None = None, title: str = "knockoff report",
                  base_dir: str | Path | None = None) -> ReportFiles:
    """Read ``out_dir/results.jsonl``; write ``out_dir/results.csv`` and ``out_dir/report.html``.

    ``one_file``: None (default) makes one self-contained page for up to :data:`ONE_FILE_MAX` listings and
    a page with a ``report/`` folder beyond; True or False forces one. Relative photo paths not found from the
    working directory are looked up under ``base_dir`` (default: ``out_dir``).
    """
    out_dir = Path(out_dir)
    latest = {v.listing_id: entry_from_result(v) for v in iter_results(out_dir / RESULTS_FILE)}
    entries = sort_entries(latest.values())  # made as the lines are read: a scan's full results never in memory
    csv_path = write_entries_csv(entries, out_dir / CSV_FILE)
    one = len(entries) <= ONE_FILE_MAX if one_file is None else one_file
    html_path, thumbs = write_page(entries, out_dir, one_file=one, title=title,
                                   base_dir=Path(base_dir) if base_dir is not None else None)
    log.info("wrote %s and %s (%d listings; %d thumbnails made, %d reused, %.1f s)", csv_path, html_path,
             len(entries), thumbs.made, thumbs.reused, thumbs.seconds)
    return ReportFiles(csv_path, html_path, None if one else out_dir / ASSETS_DIR, len(entries), thumbs.made,
                       thumbs.reused, thumbs.seconds)


__all__ = ["CSV_FILE", "HTML_FILE", "ONE_FILE_MAX", "ReportFiles", "write_page", "write_reports"]
