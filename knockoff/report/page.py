"""The reviewer's page: the HTML around the data (summary, per-brand and per-seller tables, controls, the
results table the script fills, the side-by-side viewer)."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from knockoff.report.entry import Entry
from knockoff.report.results import MATCHED_VERDICTS, VERDICT_ORDER

TOP_SELLERS = 25
_CSP = ("default-src 'none'; img-src data: blob: 'self' file:; style-src 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline' file:")


def e(value: Any) -> str:
    """HTML-escaped text (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """The text of a file of ``knockoff/report/assets`` (package data)."""
    return resources.files("knockoff.report").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _label(verdict: str) -> str:
    return "errors" if verdict == "error" else verdict.replace("_", " ")


def summary_html(entries: Sequence[Entry]) -> str:
    """Cards: listings per verdict (every listing counts)."""
    verdicts = Counter(e.verdict for e in entries)
    cards = [f'<div class="card total"><b>{len(entries):,}</b><span>listings</span></div>']
    cards += [f'<div class="card {v}"><b>{verdicts.get(v, 0):,}</b><span>{_label(v)}</span></div>'
              for v in VERDICT_ORDER]
    others = sum(n for v, n in verdicts.items() if v not in VERDICT_ORDER)
    if others:
        cards.append(f'<div class="card"><b>{others:,}</b><span>unknown verdict</span></div>')
    return f'<section class="summary" id="summary">{"".join(cards)}</section>'


def brands_html(entries: Sequence[Entry]) -> str:
    """Per brand: only listings matched to it (a no_match row's nearest reference is not counted)."""
    per_brand: dict[str, Counter[str]] = {}
    for entry in entries:
        if entry.matched:
            per_brand.setdefault(entry.brand, Counter())[entry.verdict] += 1
    ordered = sorted(per_brand.items(), key=lambda kv: (-kv[1]["suspect"], -kv[1]["review"], kv[0]))
    body = "".join(
        f"<tr><td>{e(brand)}</td>" + "".join(f"<td>{counts.get(v, 0):,}</td>" for v in MATCHED_VERDICTS)
        + f"<td>{sum(counts.values()):,}</td></tr>" for brand, counts in ordered)
    head = "".join(f"<th>{v}</th>" for v in MATCHED_VERDICTS)
    empty = "" if body else f'<tr><td colspan="{len(MATCHED_VERDICTS) + 2}" class="muted">no matches</td></tr>'
    return (f'<section><h2>Matched listings per brand</h2><table class="counts" id="per-brand"><thead><tr>'
            f"<th>brand</th>{head}<th>matched</th></tr></thead><tbody>{body}{empty}</tbody></table></section>")


def sellers_html(entries: Sequence[Entry], top: int = TOP_SELLERS) -> str:
    """The sellers with the most suspects (then review verdicts): repeat offenders stand out."""
    per_seller: dict[str, Counter[str]] = {}
    for entry in entries:
        if entry.seller:
            per_seller.setdefault(entry.seller, Counter())[entry.verdict] += 1
    ranked = sorted(per_seller.items(), key=lambda kv: (-kv[1]["suspect"], -kv[1]["review"], kv[0]))
    ranked = [kv for kv in ranked if kv[1]["suspect"] or kv[1]["review"]][:top]
    body = "".join(
        f'<tr><td><button type="button" class="link seller-filter" data-seller="{e(seller)}">{e(seller)}</button>'
        f'</td><td>{c["suspect"]:,}</td><td>{c["review"]:,}</td><td>{sum(c.values()):,}</td></tr>'
        for seller, c in ranked)
    if not body:
        body = '<tr><td colspan="4" class="muted">no seller has a suspect or review listing</td></tr>'
    more = f" (top {top} of {len(per_seller):,})" if len(per_seller) > top else ""
    return (f'<section><h2>Sellers with suspects{e(more)}</h2><table class="counts" id="sellers"><thead><tr>'
            f"<th>seller</th><th>suspect</th><th>review</th><th>listings</th></tr></thead><tbody>{body}"
            "</tbody></table></section>")


def _options(values: Sequence[str], label=lambda v: v) -> str:
    return "".join(f'<option value="{i}">{e(label(v))}</option>' for i, v in enumerate(values))


def controls_html(brands: Sequence[str], codes: Sequence[str]) -> str:
    """Search, sort, filters, decision export and the pager."""
    sorts = (("review", "review order"), ("risk", "risk, highest first"), ("ratio", "price ratio, lowest first"),
             ("brand", "brand"), ("seller", "seller"))
    decided = (("", "any"), ("none", "undecided"), ("counterfeit", "counterfeit"),
               ("not_counterfeit", "not counterfeit"), ("unsure", "unsure"))
    return (
        '<div class="filters" id="controls">'
        '<input id="q" type="search" placeholder="search title, seller, listing id, text in photo" '
        'aria-label="search">'
        '<label>Sort <select id="sort">' + "".join(f'<option value="{v}">{t}</option>' for v, t in sorts)
        + '</select></label><label>Verdict <select id="f-verdict"><option value="-1">all</option>'
        + _options(VERDICT_ORDER, _label) + '</select></label>'
        '<label>Brand <select id="f-brand"><option value="-1">all</option>' + _options(brands)
        + '</select></label><label>Reason <select id="f-code"><option value="-1">all</option>' + _options(codes)
        + '</select></label><label>Seller <input id="f-seller" list="sellers-list" placeholder="any">'
        '<datalist id="sellers-list"></datalist></label>'
        '<label>Decision <select id="f-decision">' + "".join(f'<option value="{v}">{t}</option>' for v, t in decided)
        + '</select></label><span id="shown"></span>'
        '<button type="button" id="export">Export decisions.csv</button><span id="decided"></span></div>'
        '<div class="pager"><button type="button" id="prev">&lsaquo; previous</button><span id="page"></span>'
        '<button type="button" id="next">next &rsaquo;</button></div>'
    )


VIEWER = ('<div id="viewer" hidden><div class="box"><button type="button" id="viewer-close">close</button>'
          '<h3 id="viewer-title"></h3><div class="sides" id="viewer-sides"></div></div></div>')
TABLE = ('<table class="results" id="results"><thead><tr><th>verdict · risk</th><th>listing photo · official photo'
         '</th><th>match</th><th>listing · reasons · signals</th><th>price</th><th>seller</th><th>decision</th>'
         '</tr></thead><tbody id="rows"></tbody></table>')


def page_head(title: str, subtitle: str, notes: Sequence[str] = ()) -> str:
    """The page up to ``<main>``: head with the style sheet, and the header (``notes``: more lines under the
    subtitle, e.g. how the index was checked)."""
    lines = "".join(f"<p>{e(note)}</p>" for note in notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        f"<title>{e(title)}</title><style>{asset('report.css')}</style></head><body>\n"
        f"<header><h1>{e(title)}</h1><p>{e(subtitle)}</p>{lines}</header><main>\n"
    )
