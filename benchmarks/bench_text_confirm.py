"""How a misspelling read in a photo is confirmed, and what cheaper confirmations would change.

    python benchmarks/bench_text_confirm.py --grocery 964 --printed 300   # every grocerystore train/val photo
    python benchmarks/bench_text_confirm.py --grocery 100 --printed 60    # a few minutes

A near-misspelling of a catalog brand is read again from three other views of its line before it stands
(:func:`knockoff.decide.photo_text.confirm_misspellings`: margin, grey, 0.7x smaller; the brand's own spelling
in any makes it the name, a misspelling in every one keeps it, anything else leaves it unconfirmed: ``review``).
Each re-read costs a recognition (about what reading the line did), so the rule is what a confirmed misspelling
costs. For every misspelling found (before confirmation) this reads the three views once and judges it by:

- ``every_view``: the rule knockoff uses (3 recognitions);
- ``first_view_repeats``: the margin view first; when it reads the brand's spelling, or the first reading letter
  for letter (the same match keys), that settles it; otherwise the three views decide as above (1 or 3);
- ``margin_and_smaller``: the rule over two views, the grey one left out (2).

Sets: grocerystore in-store photos of genuine packages (every misspelling is a misread: ``misspelled`` there
is a false flag, ``unconfirmed`` a review), and the synthetic printed set (misspelled cases should stay
``misspelled``; genuine ones should never be). Results: benchmarks/results/text_confirm(.NAME).{json,md}.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from typing import Any

import numpy as np
from PIL import Image

import bench_text
from common import markdown_table, write_results

from knockoff.catalog.readers import Brand
from knockoff.decide.photo_text import BrandMention, confirm_misspellings, find_brand_mentions
from knockoff.evaluate.printed import PRINTED_BRANDS, printed_cases
from knockoff.match.text import PhotoText, TextReadSettings, read_text, reread_box
from knockoff.match.text_index import match_key, words

RULES = ("every_view", "first_view_repeats", "margin_and_smaller")


def _key(text: str) -> str:
    return "".join(match_key(w) for w in words(text))


def _judge(mention: BrandMention, views: list[str], brands: list[Brand]) -> dict[str, tuple[str, int]]:
    """Each rule's outcome (the mention's ``how``) and the recognitions it needs."""

    def by(readings: list[str]) -> str:
        return confirm_misspellings([mention], brands, lambda _p, _b: readings)[0].how

    every = by(views)
    alone = by(views[:1]) if views else "unconfirmed"
    settled = alone in ("exact", "alias") or (views and _key(views[0]) == _key(mention.read))
    return {"every_view": (every, 3), "first_view_repeats": (alone, 1) if settled else (every, 3),
            "margin_and_smaller": (by([views[0], views[2]]) if views else "unconfirmed", 2)}


def _cases(image: Image.Image, brands: list[Brand], read: TextReadSettings, label: str) -> list[dict[str, Any]]:
    text: PhotoText = read_text(image, read)
    out = []
    for m in find_brand_mentions([text], brands):
        if m.how != "misspelled" or len(m.boxes) != 1:
            continue
        views = list(reread_box(image, text.boxes[m.boxes[0]], read))
        out.append({"label": label, "brand": m.brand, "read": m.read, "score": round(m.score, 4), "views": views,
                    "rules": _judge(m, views, brands)})
    return out


def _summary(cases: list[dict[str, Any]], label: str) -> dict[str, Any]:
    mine = [c for c in cases if c["label"] == label]
    row: dict[str, Any] = {"set": label, "misspellings_read": len(mine)}
    for rule in RULES:
        hows = Counter(c["rules"][rule][0] for c in mine)
        row[f"{rule}: misspelled / unconfirmed / name"] = (
            f"{hows['misspelled']} / {hows['unconfirmed']} / {hows['exact'] + hows['alias']}")
        row[f"{rule}: recognitions"] = sum(c["rules"][rule][1] for c in mine)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grocery", type=int, default=100, help="grocerystore train/val photos (964: all)")
    parser.add_argument("--printed", type=int, default=60, help="synthetic printed cases")
    parser.add_argument("--name", default=None, help="results file name (default text_confirm)")
    args = parser.parse_args()
    read = TextReadSettings()
    load = [os.getloadavg()[0], 0.0]
    cases: list[dict[str, Any]] = []
    if bench_text.GROCERY.is_dir() and args.grocery:
        brands, _, _ = bench_text._grocery_catalog(read)
        for row in bench_text._grocery_rows(args.grocery):
            cases += _cases(bench_text._load(bench_text.GROCERY / row["path"]), brands, read, "grocery (genuine)")
    printed_brands = [Brand(b) for b in PRINTED_BRANDS]
    for case in printed_cases(args.printed, seed=0, image_size=320):
        cases += _cases(case.image, printed_brands, read, case.kind)
    load[1] = os.getloadavg()[0]
    labels = list(dict.fromkeys(c["label"] for c in cases))
    rows = [_summary(cases, label) for label in labels]
    headers = list(dict.fromkeys(k for r in rows for k in r))
    table = [[r.get(h, "") for h in headers] for r in rows]
    markdown = (f"Misspellings read in {args.grocery} grocerystore photos (genuine packages) and {args.printed} "
                "printed cases, each judged by the confirmation rules (benchmarks/bench_text_confirm.py docstring); "
                f"1-min load average {load[0]:.1f} at the start, {load[1]:.1f} at the end.\n\n"
                + markdown_table(headers, table) + "\n\n"
                + markdown_table(["set", "brand", "read", "score", "views", *RULES],
                                 [[c["label"], c["brand"], c["read"], c["score"], " / ".join(c["views"]),
                                   *(c["rules"][r][0] for r in RULES)] for c in cases if "grocery" in c["label"]]))
    print(markdown)
    write_results(args.name or "text_confirm", {"grocery": args.grocery, "printed": args.printed, "load_average": load,
                                                "summaries": rows, "cases": cases}, markdown)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
