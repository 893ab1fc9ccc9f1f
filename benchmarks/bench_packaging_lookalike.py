"""The packaging match's look-alike rule, measured: the global similarity of the photos it names a product for.

With ``packaging_match`` on and the perceptual engine, a packaging match that is not a proven copy names the
brand only (``review``) when the listing photo's global similarity to the official photo reaches the engine's
``match`` threshold (``Detector._looks_alike``): such a photo is the same design shot as the brand's own photos
are (a sibling product's official photo, a re-shot scene), while a seller's own photo of the package is far less
similar. This script measures both sides with ``Policy(packaging_match=True)``:

- grocerystore store photos of products in the catalog (the 31 official photos indexed, as
  ``bench_grocery_fusion.py``; val held out, a seeded train sample): outcome per photo (right product, brand
  only, sibling, wrong brand, none), the global similarity of each packaging match, and how many the rule
  turned into brand only (``look_alike``);
- unrelated photos (shared/data/real's other folders): any match at all;
- the sibling set of ``bench_sibling_verdicts.py`` (official photos of products missing from the index):
  products named, and the similarities.

    python benchmarks/bench_packaging_lookalike.py [--train 300] [--unrelated 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grocery_fusion as fusion  # noqa: E402
import bench_sibling_verdicts as siblings  # noqa: E402
from common import REAL_DATA, markdown_table, write_results  # noqa: E402

from knockoff import Catalog, Detector, Listing, Policy, build_index  # noqa: E402


def _row(verdict: Any, **extra: Any) -> dict[str, Any]:
    match = verdict.match
    visual = verdict.signal("VISUAL_MATCH")
    return {"verdict": verdict.verdict, "tier": match.tier if match else None, "brand": match.brand if match else None,
            "product": match.product_id if match else None, "similarity": match.similarity if match else None,
            "look_alike": bool(visual and visual.details.get("look_alike")), **extra}


def store_rows(data: Path, policy: Policy, n_train: int, n_unrelated: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Catalog.from_dir(fusion.write_catalog(data, Path(tmp) / "catalog")), "perceptual")
        detector = Detector(index, policy)
        for photo in fusion.store_photos(data, False, 0, n_train):
            verdict = detector.check(Listing([data / fusion.GROCERY / photo["path"]], seller="shop-nobody"))
            row = _row(verdict, split=photo["split"])
            row["outcome"] = fusion.outcome(verdict.match, photo["brand"], photo["product"])
            rows.append(row)
        for path in fusion.unrelated_photos(data, n_unrelated, 0):
            verdict = detector.check(Listing([path], seller="shop-nobody"))
            rows.append({**_row(verdict, split="unrelated"), "outcome": fusion.outcome(verdict.match, None, None)})
    return rows


def _summary(rows: list[dict[str, Any]], match: float) -> list[list[Any]]:
    table = []
    for split in ("val", "train", "unrelated"):
        chosen = [r for r in rows if r["split"] == split]
        if not chosen:
            continue
        outcomes = Counter(r["outcome"] for r in chosen)
        right = [r["similarity"] for r in chosen if r["outcome"] == "right"]
        table.append([split, len(chosen), outcomes.get("right", 0), outcomes.get("brand-only", 0),
                      outcomes.get("sibling", 0), outcomes.get("wrong-brand", 0) + outcomes.get("given-a-brand", 0),
                      sum(r["look_alike"] for r in chosen), max(right, default=None),
                      sum(s >= match for s in right)])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--train", type=int, default=300, help="train photos (a seeded sample)")
    parser.add_argument("--unrelated", type=int, default=100)
    args = parser.parse_args(argv)
    if not (args.data / fusion.GROCERY).is_dir():
        print(f"grocerystore not found at {args.data}: nothing to measure")
        return 0
    started = time.perf_counter()
    policy = Policy(packaging_match=True)
    match = policy.thresholds_for("perceptual").match
    rows = store_rows(args.data, policy, args.train, args.unrelated)
    sibling_rows = siblings.run(args.data, policy)
    named = [r for r in sibling_rows if r["tier"] and r["matched"]]
    similar = sorted(r["global_similarity"] for r in sibling_rows if r["tier"])
    table = _summary(rows, match)
    md = (f"# The packaging match's look-alike rule\n\n{__doc__.split(chr(10) + chr(10), 1)[1]}\n"
          f"Engine `match` threshold (perceptual): {match}.\n\n"
          + markdown_table(["photos", "n", "right product", "brand only", "sibling", "wrong brand / unrelated given "
                            "a brand", "look-alike (brand only by the rule)", "max similarity, right product",
                            "right product at >= match"], table)
          + f"\n\nSibling set (official photos of products not in the index, {len(sibling_rows)}): a product named "
          f"{len(named)}, verdicts {dict(Counter(r['verdict'] for r in sibling_rows))}; global similarity of its "
          f"packaging matches {similar[0] if similar else None}-{similar[-1] if similar else None}.\n")
    write_results("packaging_lookalike", {"rows": rows, "siblings": sibling_rows, "summary": table, "match": match,
                                          "elapsed_s": round(time.perf_counter() - started, 1)}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
