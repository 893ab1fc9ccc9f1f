"""Sibling products end to end: what the Detector says of one product's official photo against another's.

Issue 13's measurement, through the whole pipeline (index, shortlist, verification, tier, verdict) rather
than pair by pair (``bench_siblings.py``): grocerystore's official (iconic) photos, one half of each brand's
products indexed and the other half listed with an unauthorized seller, then the halves swapped. Every listed
photo shows a product that is *not* in the index, so any match is a wrong product; a ``near-copy`` tier is the
worst (an accusation of photo theft for the wrong product). Also counts the matches of each tier and why.

    python benchmarks/bench_sibling_verdicts.py [--packaging] [--store N] [--min-product-detail D] [--name NAME]

With ``--store N`` the listed photos are up to N grocerystore *train* store photos of each listed product (a
seller's own photo of a product missing from the catalog) instead of its official photo.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REAL_DATA, markdown_table, write_results  # noqa: E402

from knockoff import Catalog, Detector, Listing, Policy, build_index  # noqa: E402

ICONIC = Path("grocerystore/dataset/iconic-images-and-descriptions/Packages")


def _catalog(folder: Path, brands: list[str], photos: list[tuple[str, Path]]) -> Catalog:
    folder.mkdir(parents=True)
    with open(folder / "brands.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["brand", "aliases", "authorized_sellers"])
        writer.writerows([b, "", "official_store"] for b in brands)
    with open(folder / "references.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["brand", "product_id", "product_name", "image", "price", "currency"])
        for brand, photo in photos:
            shutil.copy(photo, folder / photo.name)  # a temporary catalog: paths must stay inside its folder
            writer.writerow([brand, photo.parent.name, photo.parent.name, photo.name, "2", "EUR"])
    return Catalog.from_dir(folder)


def _store_photos(data: Path, per_product: int) -> dict[str, list[Path]]:
    """Up to ``per_product`` train store photos of each product folder name, evenly spaced."""
    out: dict[str, list[Path]] = defaultdict(list)
    with open(data / "grocerystore" / "groundtruth_packages.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "train":
                out[row["product"]].append(data / "grocerystore" / row["path"])
    return {k: v[:: max(1, len(v) // per_product)][:per_product] for k, v in out.items()}


def run(data: Path, policy: Policy, store: int = 0) -> list[dict[str, Any]]:
    by_brand: dict[str, list[Path]] = defaultdict(list)
    for photo in sorted((data / ICONIC).glob("*/*/*_Iconic.jpg")):
        by_brand[photo.parent.name.split("-")[0]].append(photo)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for half in (0, 1):
            indexed = [(b, p) for b, ps in by_brand.items() for i, p in enumerate(ps) if i % 2 == half]
            listed = [(b, p) for b, ps in by_brand.items() for i, p in enumerate(ps) if i % 2 != half]
            index = build_index(_catalog(Path(tmp) / f"half{half}", sorted(by_brand), indexed), "perceptual")
            detector = Detector(index, policy)
            photos = [(p.parent.name, p) for _, p in listed]
            if store:
                by_product = _store_photos(data, store)
                photos = [(p.parent.name, s) for _, p in listed for s in by_product.get(p.parent.name, [])]
            for name, photo in photos:
                v = detector.check(Listing([photo], title="milk", price=2, currency="EUR", seller="shop123"))
                verification = (v.match.verification or {}) if v.match else {}
                rows.append({"listed": name, "photo": photo.name, "verdict": v.verdict, "tier": v.match.tier if v.match else None,
                             "matched": v.match.product_id if v.match else None,
                             "global_similarity": v.match.similarity if v.match else None,
                             "proof": verification.get("proof"), "failed_check": verification.get("failed_check"),
                             "detail_agreement": verification.get("detail_agreement"),
                             "unproven": v.signal("VISUAL_MATCH").details.get("unproven") if v.match else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--packaging", action="store_true", help="with Policy(packaging_match=True)")
    parser.add_argument("--store", type=int, default=0, metavar="N",
                        help="list up to N train store photos of each listed product instead of its official photo")
    parser.add_argument("--min-product-detail", type=float, default=None, metavar="D",
                        help="Policy.packaging.min_product_detail (default: the policy's); 0 names every winning "
                             "package's product, as before the rule")
    parser.add_argument("--name", help="results file name (default from the options)")
    args = parser.parse_args(argv)
    if not (args.data / ICONIC).is_dir():
        print(f"grocerystore not found at {args.data}: nothing to measure")
        return 0
    started = time.perf_counter()
    policy = Policy(packaging_match=args.packaging)
    if args.min_product_detail is not None:
        policy = replace(policy, packaging=replace(policy.packaging, min_product_detail=args.min_product_detail))
    rows = run(args.data, policy, args.store)
    tiers = Counter(r["tier"] or "no match" for r in rows)
    verdicts = Counter(r["verdict"] for r in rows)
    name = args.name or ("sibling_verdicts" + ("_packaging" if args.packaging else "")
                         + (f"_store{args.store}" if args.store else ""))
    command = ("python benchmarks/bench_sibling_verdicts.py" + (" --packaging" if args.packaging else "")
               + (f" --store {args.store}" if args.store else "")
               + (f" --min-product-detail {args.min_product_detail:g}" if args.min_product_detail is not None else "")
               + (f" --name {args.name}" if args.name else ""))
    result = {"script": "bench_sibling_verdicts.py", "command": command, "listed": len(rows),
              "tiers": dict(tiers), "verdicts": dict(verdicts), "elapsed_s": round(time.perf_counter() - started, 1),
              "rows": rows}
    named = sum(1 for r in rows if r["tier"] and r["matched"])
    brand_only = sum(1 for r in rows if r["tier"] and not r["matched"])
    result.update(products_named=named, brand_only=brand_only,
                  min_product_detail=policy.packaging.min_product_detail)
    matched = [[r["listed"], r["matched"], r["tier"], r["global_similarity"], r["proof"], r["failed_check"],
                r["detail_agreement"], r["unproven"] or ""] for r in rows if r["tier"]]
    md = (f"# Sibling products end to end\n\n{__doc__.split(chr(10) + chr(10), 1)[1]}\n"
          f"- listed {'store' if args.store else 'official'} photos: {len(rows)} (each of a product not in the index)\n"
          f"- tiers: {', '.join(f'{k} {v}' for k, v in sorted(tiers.items()))}\n"
          f"- verdicts: {', '.join(f'{k} {v}' for k, v in sorted(verdicts.items()))}\n"
          f"- a product named (each a wrong one): {named}; the brand only: {brand_only}\n"
          f"- packaging.min_product_detail: {policy.packaging.min_product_detail:g}\n\n"
          + markdown_table(["listed", "matched (wrong product)", "tier", "global similarity", "proof", "failed check",
                            "small print agreeing", "why no product"],
                           matched) + "\n")
    write_results(name, result, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
