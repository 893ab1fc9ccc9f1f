"""grocerystore train store photos: does the small print tell a brand's alike products apart?

    python benchmarks/bench_grocery_print.py                      # the 100 train photos bench_grocery_fusion samples
    python benchmarks/bench_grocery_print.py --seed 7 --train 120 --exclude-first   # a second, disjoint sample

Every train store photo of the sample is matched (``GeometricVerifier`` with the default ``PackagingSettings``, the
enlarged second match as the packaging match does it, unmirrored) with the official photo of every product of its
own brand; each match that passes the packaging checks has its detail agreement measured
(``GeometricVerifier.with_print``). For the photos whose brand's products match *alike* (no product wins by the
packaging margin of inliers, at least two pass the checks within it), the product whose detail agreement leads
every other alike product's by ``lead`` is named: right or sibling, per lead; ``undecided`` below it. This sets
``knockoff.match.siblings.DETAIL_LEAD``. val is not used. Results: benchmarks/results/grocery_print(.NAME).{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
from PIL import Image

from common import REAL_DATA, markdown_table, text_table, write_results

from bench_grocery_fusion import GROCERY, _rows, store_photos
from knockoff.match.verify import GeometricVerifier, PackagingSettings, VerifierSettings, packaging_check

LEADS = (0.03, 0.05, 0.08, 0.1, 0.12, 0.15)


def matches(photos: list[dict[str, str]], refs: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    """Per photo: (inliers, detail agreement or None when the match fails the packaging checks) of each product of
    its brand."""
    settings = PackagingSettings()
    verifier = GeometricVerifier(VerifierSettings(), packaging=settings)
    features = {p: verifier.features(Image.open(REAL_DATA / GROCERY / path).convert("RGB"))
                for p, (_, path) in refs.items()}
    out = []
    for row in photos:
        listing = verifier._listing_features(Image.open(REAL_DATA / GROCERY / row["path"]).convert("RGB"))
        own = {}
        for product, (brand, _) in refs.items():
            if brand == row["brand"]:
                match = verifier.second_look(listing, features[product], verifier._match(
                    listing, features[product], mirrored=False))
                match = verifier.with_print(listing, features[product], match)
                passed = packaging_check(match, settings) is None
                own[product] = (match.inliers, match.detail_agreement if passed else None)
        out.append({"path": row["path"], "product": row["product"], "own": own})
    return out


def outcome(entry: dict[str, Any], lead: float, settings: PackagingSettings) -> str | None:
    """right / sibling / undecided for a photo whose brand's products match alike; None otherwise."""
    own = entry["own"]
    passing = {p: v for p, v in own.items() if v[1] is not None}
    if len(passing) < 2:
        return None
    best = max(passing, key=lambda p: passing[p][0])
    top = passing[best][0]
    second = max((v[0] for p, v in own.items() if p != best), default=0)
    if top >= settings.min_margin * second and top - second >= settings.min_lead:
        return None  # the keypoints decide
    alike = {p: v for p, v in passing.items() if v[0] * settings.min_margin > top or top - v[0] < settings.min_lead}
    if len(alike) < 2:
        return None
    ranked = sorted(((v[1], p) for p, v in alike.items()), reverse=True)
    if ranked[0][0] - ranked[1][0] < lead:
        return "undecided"
    return "right" if ranked[0][1] == entry["product"] else "sibling"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude-first", action="store_true",
                        help="leave out the 100 photos of the default sample (seed 0): a disjoint sample")
    parser.add_argument("--name", default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if not (REAL_DATA / GROCERY / "groundtruth_packages.csv").is_file():
        print(f"no grocerystore data under {REAL_DATA}", file=sys.stderr)
        return 2
    refs: dict[str, tuple[str, str]] = {}
    for row in _rows(REAL_DATA):
        refs.setdefault(row["product"], (row["brand"], row["iconic_reference_image"]))
    photos = store_photos(REAL_DATA, False, args.seed, args.train, 0)
    if args.exclude_first:
        first = {r["path"] for r in store_photos(REAL_DATA, False, 0, 100, 0)}
        photos = [r for r in photos if r["path"] not in first]
    started = time.perf_counter()
    entries = matches(photos, refs)
    settings = PackagingSettings()
    headers = ["lead", "alike photos", "right", "sibling", "undecided"]
    rows = []
    for lead in LEADS:
        counts = Counter(o for e in entries if (o := outcome(e, lead, settings)) is not None)
        rows.append([lead, sum(counts.values()), counts["right"], counts["sibling"], counts["undecided"]])
    notes = (f"{len(photos)} train store photos (seed {args.seed}{', the default sample left out' if args.exclude_first else ''}), "
             f"{time.perf_counter() - started:.0f} s. 'alike photos': the brand's products matched alike (no product by "
             "the packaging margin of inliers, two or more passing the checks within it).")
    print(text_table(headers, rows))
    print(notes)
    if not args.no_write:
        command = "python benchmarks/bench_grocery_print.py" + (f" --train {args.train}" if args.train != 100 else "") + (
            f" --seed {args.seed}" if args.seed else "") + (" --exclude-first" if args.exclude_first else "")
        name = "grocery_print" + (f".{args.name}" if args.name else "")
        paths = write_results(name, {"script": "bench_grocery_print.py", "command": command, "rows": rows,
                                     "photos": entries}, "# grocerystore train: the small print among alike products\n\n"
                              + markdown_table(headers, rows) + "\n\n" + notes + "\n")
        print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
