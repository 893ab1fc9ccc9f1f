"""A copy is a copy: official photos of sibling products and sellers' own photos must never verify as copies.

Measures, with :class:`knockoff.match.verify.GeometricVerifier` on every pair directly (stricter than the detector,
which verifies only a shortlist):

- every ordered pair of *different* products of the same brand among grocerystore's official (iconic)
  photos, and among the synthetic catalog's products (``make_labeled_set``, demo and hard): how many are
  verified as a copy (target 0);
- every grocerystore store photo (train and val) against every official photo of its brand, its own
  product's included: how many are called a copy (target <= 0.5 %), and how many still pass the geometric
  checks (the same design: the packaging match's business);
- the 16 edits of each official photo (half A: even-numbered products, half B: odd), whose copy proof must
  hold: the share verified per edit, per half.

    python benchmarks/bench_siblings.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REAL_DATA, markdown_table, write_results  # noqa: E402

from knockoff.catalog.images import load_image  # noqa: E402
from knockoff.match.verify import GeometricMatch, GeometricVerifier  # noqa: E402


def brand_of(product: str) -> str:
    return product.split("-")[0]


def _row(kind: str, listing: str, reference: str, match: GeometricMatch) -> dict[str, Any]:
    return {"kind": kind, "listing": listing, "reference": reference, **match.evidence(),
            "geometry": match.geometry_verified, "failed": match.failed_check}


def sibling_pairs(verifier: GeometricVerifier, official: dict[str, Any]) -> list[dict[str, Any]]:
    features = {name: verifier.features(image, with_mirror=True) for name, image in official.items()}
    return [_row("sibling", a, b, verifier.verify(features[a], features[b]))
            for a in official for b in official if a != b and brand_of(a) == brand_of(b)]


def synthetic_pairs(verifier: GeometricVerifier) -> list[dict[str, Any]]:
    from knockoff.evaluate.synthetic import make_labeled_set

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for difficulty in ("demo", "hard"):
            root = Path(folder) / difficulty
            make_labeled_set(root, difficulty=difficulty, seed=0)
            with open(root / "references.csv", newline="") as handle:
                refs = [(r["brand"], r["product_id"], r["image"]) for r in csv.DictReader(handle)]
            feats = [verifier.features(load_image(root / image), with_mirror=True) for _, _, image in refs]
            for i, (brand_a, product_a, image_a) in enumerate(refs):
                for j, (brand_b, product_b, image_b) in enumerate(refs):
                    if brand_a == brand_b and product_a != product_b:
                        rows.append(_row(f"synthetic-{difficulty}", image_a, image_b, verifier.verify(feats[i], feats[j])))
    return rows


def store_pairs(verifier: GeometricVerifier, official: dict[str, Any], data: Path, step: int) -> list[dict[str, Any]]:
    features = {name: verifier.features(image) for name, image in official.items()}
    root = data / "grocerystore" / "dataset"
    photos = sorted((root / "train").rglob("*.jpg")) + sorted((root / "val").rglob("*.jpg"))
    rows = []
    for path in photos[::step]:
        listing = verifier.features(load_image(path), with_mirror=True)
        product = path.parent.name
        for name in official:
            if brand_of(name) == brand_of(product):
                kind = "store-own" if name == product else "store-sibling"
                rows.append(_row(kind, str(path.relative_to(root)), name, verifier.verify(listing, features[name])))
    return rows


def copy_pairs(verifier: GeometricVerifier, official: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    from knockoff.evaluate.edits import EDIT_KINDS, apply_edit

    rng = np.random.default_rng(seed)
    rows = []
    for number, (name, image) in enumerate(official.items()):
        reference = verifier.features(image)
        for kind in EDIT_KINDS:
            listing = verifier.features(apply_edit(image, kind, rng), with_mirror=True)
            row = _row(f"copy:{kind}", f"half {'AB'[number % 2]}", name, verifier.verify(listing, reference))
            rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        group = r["kind"] if not r["kind"].startswith("copy:") else f"{r['kind']} ({r['listing']})"
        by_kind[group].update(pairs=1, copy=r["proof"] == "copy", geometry=bool(r["geometry"]))
    return {k: dict(v) for k, v in sorted(by_kind.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--quick", action="store_true", help="every 8th store photo")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    verifier = GeometricVerifier()
    started = time.perf_counter()
    rows = synthetic_pairs(verifier)
    iconic = args.data / "grocerystore" / "dataset" / "iconic-images-and-descriptions"
    if iconic.is_dir():
        official = {p.parent.name: load_image(p) for p in sorted(iconic.rglob("*_Iconic.jpg"))}
        rows += sibling_pairs(verifier, official)
        rows += copy_pairs(verifier, official, args.seed)
        rows += store_pairs(verifier, official, args.data, 8 if args.quick else 1)
    else:
        print(f"grocerystore not found at {args.data}: synthetic pairs only")
    summary = summarize(rows)
    stores = [r for r in rows if r["kind"].startswith("store")]
    store_photos = {r["listing"] for r in stores}
    store_copies = {r["listing"] for r in stores if r["proof"] == "copy"}
    sibling_copies = [r for r in rows if (r["kind"] == "sibling" or r["kind"].startswith("synthetic")) and r["proof"] == "copy"]
    result = {
        "script": "bench_siblings.py", "command": "python benchmarks/bench_siblings.py" + (" --quick" if args.quick else ""),
        "elapsed_s": round(time.perf_counter() - started, 1), "summary": summary,
        "sibling official photos verified as a copy": len(sibling_copies),
        "store photos": len(store_photos), "store photos called a copy": len(store_copies),
        "store photos called a copy, share": round(len(store_copies) / max(len(store_photos), 1), 4),
        "verifier": verifier.settings.__dict__,
    }
    table = markdown_table(["pairs", "n", "verified as a copy", "geometric checks pass (same design)"],
                           [[k, v["pairs"], v.get("copy", 0), v.get("geometry", 0)] for k, v in summary.items()])
    worst = sorted((r for r in rows if r["kind"] == "sibling" and r["geometry"]),
                   key=lambda r: -(r["detail_agreement"] or 0))[:8]
    closest = markdown_table(["listing -> reference", "keypoints", "pixels", "colour", "detail", "proof"],
                             [[f"{r['listing']} -> {r['reference']}", r["keypoints"], r["pixel_agreement"],
                               r["colour_agreement"], r["detail_agreement"], r["proof"]] for r in worst])
    md = (f"# A copy is a copy: siblings and store photos\n\n{__doc__.split(chr(10) + chr(10), 1)[1]}\n"
          f"- sibling official photos verified as a copy: **{len(sibling_copies)}**\n"
          f"- store photos called a copy: **{len(store_copies)} of {len(store_photos)}** "
          f"({100 * result['store photos called a copy, share']:.2f} %)\n\n{table}\n\n"
          f"Closest sibling pairs (highest detail agreement):\n\n{closest}\n")
    name = "siblings" + ("_quick" if args.quick else "")
    write_results(name, result, md)
    rows_path = Path(__file__).resolve().parent / "out" / f"{name}_rows.json"  # every pair (MBs): ignored by git
    rows_path.parent.mkdir(exist_ok=True)
    rows_path.write_text(json.dumps(rows))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
