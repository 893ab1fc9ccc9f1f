"""Copy detection benchmark: knockoff's perceptual engine (alone and with geometric verification) vs hashes.

Sources: real public photos under ``../shared/data/real`` (grocerystore official "iconic" photos, the
imagededup UKBench base images and format-test images, ThreatExchange PDQ photos, jenssegers/imagehash
photos). Each source is edited with every kind of :mod:`knockoff.evaluate.edits` (one copy per kind and source).

Unrelated photos: the grocerystore train/val store photos (phone photos of packaged products on shelves)
plus two small ThreatExchange distractors, plus 100 synthetic package-like images (``--synthetic-unrelated``) so that
the set has more than 1,000 photos. A store photo paired with the official photo of *its own* product
is not counted (it shows the same product: finding it is a different task); paired with the official photo
of another product (often the same brand: hard negatives) or with a non-grocery source it is a false match.

Rule, the same for every method: the threshold is the most lenient one that gives **zero false matches**
on the unrelated set; a copy is found when its score against its own source passes that threshold. For
"perceptual + verify", the top-k sources by global score are verified (knockoff.match.verify, default settings);
a pair is matched when it is verified or its global score passes the global-alone threshold.

Also: recall on the real edited copies in the data's groundtruth files, the distribution of the verifier's
measures (copies vs unrelated shortlisted pairs), and speed (images/s end to end, ratio to pHash measured in
the same run).

    python benchmarks/bench_copies.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_copies.py --quick    # a quarter of the sources, 1/8 of the unrelated photos
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knockoff.catalog.images import load_image  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


# ----------------------------------------------------------------------------------------------- data
def source_paths(data: Path) -> list[Path]:
    g = data / "grocerystore" / "dataset" / "iconic-images-and-descriptions"
    d = data / "imagededup" / "tests" / "data"
    t = data / "threatexchange-pdq" / "pdq" / "data"
    j = data / "jenssegers-imagehash" / "tests" / "images"
    paths = sorted(g.rglob("*.jpg"))
    paths += sorted((d / "base_images").glob("*.jpg"))
    paths += [d / "formats_images" / n for n in ("Iggy.1024.ppm", "baboon.pgm", "copyleft.tiff", "marbles.pbm")]
    paths += [t / "bridge-mods" / "aaa-orig.jpg", t / "misc-images" / "c.png", t / "reg-test-input" / "exif-rotn" / "exif-rotn-1.jpg"]
    paths += sorted((t / "reg-test-input" / "labelme-subset").glob("*.jpg"))
    paths += [j / "forest" / "forest-high.jpg", *sorted((j / "office").glob("*.jpg"))]
    return [p for p in paths if p.is_file()]


def unrelated_paths(data: Path) -> list[Path]:
    g = data / "grocerystore" / "dataset"
    t = data / "threatexchange-pdq" / "pdq" / "data" / "misc-images"
    paths = sorted((g / "train").rglob("*.jpg")) + sorted((g / "val").rglob("*.jpg"))
    return paths + [p for p in (t / "small.jpg", t / "wee.jpg") if p.is_file()]


def real_copies(data: Path, sources: list[Path]) -> list[tuple[Path, int, str]]:
    """(copy path, source index, relation) from the data's groundtruth files."""
    out = []
    index = {p.resolve(): i for i, p in enumerate(sources)}
    specs = [
        ("jenssegers-imagehash", "forest", "tests/images/forest/forest-high.jpg"),
        ("jenssegers-imagehash", "office_brick", "tests/images/office/tumblr_ndyfdoR6Wp1tubinno1_1280.jpg"),
        ("imagededup", "ukbench00120", "tests/data/base_images/ukbench00120.jpg"),
        ("threatexchange-pdq", "bridge", "pdq/data/bridge-mods/aaa-orig.jpg"),
    ]
    import csv

    for folder, group, original in specs:
        src = index.get((data / folder / original).resolve())
        gt = data / folder / "groundtruth.csv"
        if src is None or not gt.is_file():
            continue
        with open(gt, newline="") as handle:
            for row in csv.DictReader(handle):
                relation = row.get("relation") or row.get("relation_to_group_original") or ""
                if row["group"] != group or row["path"] == original or row.get("decodable", "yes") != "yes":
                    continue
                if "original" in relation and "identical" in relation or relation.startswith("original"):
                    continue
                out.append((data / folder / row["path"], src, relation))
    return out


def product_of(path: Path) -> str | None:
    return path.parent.name if "grocerystore" in path.parts else None


# -------------------------------------------------------------------------------------------- methods
class HashMethod:
    def __init__(self, name: str, fn: Callable[[Image.Image], Any]):
        self.name = name
        self.fn = fn

    def prepare_sources(self, images: list[Image.Image]) -> None:
        self.refs = [self.fn(im) for im in images]

    def scores(self, image: Image.Image) -> np.ndarray:
        h = self.fn(image)
        return np.array([-min(int(np.count_nonzero(a != b)) for a in _as_list(h) for b in _as_list(r)) for r in self.refs], dtype=float)


def _as_list(h: Any) -> list[np.ndarray]:
    return h if isinstance(h, list) else [h]


def _imagehash(kind: str) -> Callable[[Image.Image], np.ndarray]:
    import imagehash

    fn = getattr(imagehash, kind)
    return lambda im: np.asarray(fn(im).hash).ravel()


def _pdq(dihedral: bool) -> Callable[[Image.Image], Any] | None:
    try:
        import pdqhash
    except ImportError:
        return None
    if dihedral:
        return lambda im: [np.asarray(h) for h in pdqhash.compute_dihedral(np.ascontiguousarray(np.asarray(im.convert("RGB"))))[0]]
    return lambda im: np.asarray(pdqhash.compute(np.ascontiguousarray(np.asarray(im.convert("RGB"))))[0])


class PerceptualMethod:
    name = "knockoff perceptual"

    def __init__(self) -> None:
        from knockoff.embedders.perceptual import PerceptualEmbedder

        self.embedder = PerceptualEmbedder()

    def prepare_sources(self, images: list[Image.Image]) -> None:
        rows, owner = [], []
        for i, im in enumerate(images):
            views = self.embedder.reference_views(im)
            rows.append(self.embedder.embed(views))
            owner += [i] * len(views)
        self.matrix = np.concatenate(rows)
        self.owner = np.array(owner)
        self.n = len(images)

    def scores(self, image: Image.Image) -> np.ndarray:
        q = self.embedder.embed(self.embedder.query_views(image))
        sims = (q @ self.matrix.T).max(axis=0)
        out = np.full(self.n, -1.0)
        np.maximum.at(out, self.owner, sims)
        return out


# ----------------------------------------------------------------------------------------------- run
def zero_fp_threshold(unrelated_scores: np.ndarray, allowed: np.ndarray) -> float:
    """Scores must be strictly above this to match: the highest unrelated (allowed) pair score."""
    return float(np.where(allowed, unrelated_scores, -np.inf).max())


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    a = np.asarray(values, dtype=float)
    return {f"p{q}": round(float(np.percentile(a, q)), 3) for q in (0, 1, 5, 50, 95, 99, 100)} | {"n": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="small run (under a minute)")
    parser.add_argument("--top-k", type=int, default=3, help="sources verified per query (global shortlist)")
    parser.add_argument("--vote-top", type=int, default=3,
                        help="sources verified per query from the keypoint-vote shortlist (0: global only)")
    parser.add_argument("--synthetic-unrelated", type=int, default=100,
                        help="package-like synthetic images added to the unrelated photos (--quick: an eighth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--grocery-only", action="store_true",
                        help="only the grocerystore target (official iconic photos vs store photos)")
    parser.add_argument("--packaging", action="store_true",
                        help="with --grocery-only: the same-packaging match on (Policy.packaging_match)")
    args = parser.parse_args(argv)
    if args.grocery_only:
        return grocery_packaging(args)

    if not (args.data / "grocerystore").is_dir():
        print(f"skipped: real data not found at {args.data} (use --data)")
        return 0
    try:
        from knockoff.evaluate.edits import EDIT_KINDS, apply_edit
    except ImportError:
        print("skipped: knockoff.evaluate.edits is not available")
        return 0
    from knockoff.match import verify as kverify

    sources = source_paths(args.data)
    unrelated = unrelated_paths(args.data)
    n_synthetic = args.synthetic_unrelated
    if args.quick:
        sources, unrelated = sources[::4], unrelated[::8]
        n_synthetic //= 8
    unrelated_description = (f"{len(unrelated)} real photos (grocerystore store photos, ThreatExchange distractors) "
                             f"+ {n_synthetic} synthetic package-like images")
    copies_real = real_copies(args.data, sources)
    rng = np.random.default_rng(args.seed)
    source_images = [load_image(p) for p in sources]
    print(f"{len(sources)} sources x {len(EDIT_KINDS)} edit kinds, {unrelated_description} unrelated, "
          f"{len(copies_real)} real copies")

    methods: list[Any] = [PerceptualMethod(), HashMethod("pHash", _imagehash("phash")), HashMethod("dHash", _imagehash("dhash"))]
    for name, dihedral in (("PDQ", False), ("PDQ dihedral", True)):
        fn = _pdq(dihedral)
        if fn is not None:
            methods.append(HashMethod(name, fn))
    for m in methods:
        m.prepare_sources(source_images)
    verifier = kverify.GeometricVerifier() if kverify.opencv_available() else None
    ref_features = [verifier.features(im) for im in source_images] if verifier else []
    shortlist = None
    if verifier is not None and args.vote_top > 0:
        from knockoff.match.keypoints import KeypointShortlist

        shortlist = KeypointShortlist()
        for j, features in enumerate(ref_features):
            shortlist.add(j, features)
    grocery = [j for j, p in enumerate(sources) if product_of(p) is not None]

    # queries: (image, true source or None, kind, excluded product, path or None)
    def queries():
        for i, im in enumerate(source_images):
            for kind in EDIT_KINDS:
                yield apply_edit(im, kind, rng), i, kind, None, None
        for path, src, relation in copies_real:
            yield load_image(path), src, "real:" + relation, None, path
        for path in unrelated:
            yield load_image(path), None, "unrelated", product_of(path), path
        for i in range(n_synthetic):
            yield _synthetic_unrelated(i), None, "unrelated", None, f"synthetic:{i}"

    source_products = [product_of(p) for p in sources]
    records = []
    verify_time = 0.0
    verify_calls = 0
    vote_time = 0.0
    vote_calls = 0
    grocery_rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for image, src, kind, product, path in queries():
        allowed = np.array([product is None or sp != product for sp in source_products])
        row: dict[str, Any] = {"kind": kind, "source": src, "allowed": allowed, "scores": {},
                               "path": path if isinstance(path, str) else str(path.relative_to(args.data)) if path else None}
        for m in methods:
            row["scores"][m.name] = m.scores(image)
        if verifier is not None:
            glob = row["scores"]["knockoff perceptual"]
            listing = verifier.features(image, with_mirror=True)
            votes: list[tuple[Any, int]] = []
            if shortlist is not None:
                t = time.perf_counter()
                votes = shortlist.vote(listing, top=len(sources))
                vote_time += time.perf_counter() - t
                vote_calls += 1
            # the detector's shortlist: the global top-k plus the keypoint-vote top (own product excluded here)
            order = [int(j) for j in np.argsort(-glob) if allowed[j]][: args.top_k]
            order += [int(j) for j, _ in votes if allowed[j] and j not in order][: args.vote_top]
            matches = {}
            for j in order:
                t = time.perf_counter()
                matches[j] = verifier.verify(listing, ref_features[j])
                verify_time += time.perf_counter() - t
                verify_calls += 1
            if src is not None and src not in matches:
                matches[src] = verifier.verify(listing, ref_features[src])  # for the distribution only
                row["own_not_shortlisted"] = True
            row["verify"] = matches
            if product is not None or (src is not None and src not in grocery) or kind == "unrelated":
                # grocerystore target: official iconic photos as the references, nothing excluded
                g_order = [j for j in (int(j) for j in np.argsort(-glob)) if j in grocery][: args.top_k]
                g_order += [int(j) for j, _ in votes if j in grocery and j not in g_order][: args.vote_top]
                g_matches = {j: matches[j] if j in matches else verifier.verify(listing, ref_features[j]) for j in g_order}
                verified = [(m.inliers, j) for j, m in g_matches.items() if m.verified]
                pick = max(verified)[1] if verified else None
                grocery_rows.append({"product": product, "path": row["path"], "kind": kind,
                                     "pick": product_of(sources[pick]) if pick is not None else None,
                                     "pick_inliers": max(verified)[0] if verified else 0,
                                     "own_in_shortlist": any(product_of(sources[j]) == product for j in g_order)})
        records.append(row)
    elapsed = time.perf_counter() - t0

    # thresholds (zero false matches on unrelated) and recall per kind
    unrel = [r for r in records if r["source"] is None]
    copies = [r for r in records if r["source"] is not None]
    kinds = [*EDIT_KINDS, *sorted({r["kind"] for r in copies if r["kind"].startswith("real:")})]
    thresholds = {m.name: zero_fp_threshold(np.array([r["scores"][m.name] for r in unrel]), np.array([r["allowed"] for r in unrel])) for m in methods}
    table: dict[str, dict[str, float]] = {}
    method_names = [m.name for m in methods] + (["knockoff perceptual + verify"] if verifier else [])
    gthr = thresholds["knockoff perceptual"]

    def found(r: dict, name: str) -> bool:
        if name == "knockoff perceptual + verify":
            own = r["source"]
            in_shortlist = own in r["verify"] and not r.get("own_not_shortlisted")
            return bool(r["scores"]["knockoff perceptual"][own] > gthr or (in_shortlist and r["verify"][own].verified))
        return bool(r["scores"][name][r["source"]] > thresholds[name])

    for name in method_names:
        table[name] = {}
        for kind in kinds:
            rows = [r for r in copies if r["kind"] == kind]
            if rows:
                table[name][kind] = float(np.mean([found(r, name) for r in rows]))
        synthetic = [r for r in copies if not r["kind"].startswith("real:")]
        real = [r for r in copies if r["kind"].startswith("real:")]
        table[name]["ALL synthetic"] = float(np.mean([found(r, name) for r in synthetic]))
        if real:
            table[name]["ALL real copies"] = float(np.mean([found(r, name) for r in real]))

    false_verified = []
    for r in unrel:
        for j, m in r.get("verify", {}).items():
            if m.verified:
                false_verified.append({"listing": r["path"], "reference": str(sources[j].relative_to(args.data)),
                                       **{k: m.to_dict()[k] for k in ("inliers", "inlier_ratio", "reference_coverage",
                                                                      "scale", "rotation_deg", "inlier_spread",
                                                                      "pixel_agreement", "colour_agreement",
                                                                      "detail_agreement")}})
    verify_stats: dict[str, Any] = {}
    if verifier:
        def collect(rows: list[dict], own: bool) -> dict[str, dict[str, float]]:
            vals: dict[str, list[float]] = {k: [] for k in ("inliers", "inlier_ratio", "reference_coverage", "scale", "anisotropy",
                                                            "inlier_spread", "pixel_agreement", "colour_agreement", "detail_agreement")}
            for r in rows:
                items = [r["verify"][r["source"]]] if own else list(r["verify"].values())
                for m in items:
                    if m.inliers == 0:
                        continue
                    for k in vals:
                        if getattr(m, k) is not None:
                            vals[k].append(float(getattr(m, k)))
            return {k: percentiles(v) for k, v in vals.items()}

        verify_stats = {
            "copies (own source)": collect([r for r in copies if not r["kind"].startswith("real:")], True),
            "unrelated (top-k shortlisted pairs)": collect(unrel, False),
            "unrelated with >= 8 inliers": [
                {k: m.to_dict()[k] for k in ("inliers", "inlier_ratio", "reference_coverage", "scale", "anisotropy", "inlier_spread", "failed_check")}
                for r in unrel for m in r["verify"].values() if m.inliers >= 8
            ],
            "failed copies": [
                {"kind": r["kind"], "source": str(sources[r["source"]].relative_to(args.data)), "failed_check": r["verify"][r["source"]].failed_check,
                 "shortlisted": not r.get("own_not_shortlisted")}
                for r in copies if not found(r, "knockoff perceptual + verify")
            ],
            "settings": kverify.VerifierSettings().__dict__,
            "ms per verify": round(1000 * verify_time / max(verify_calls, 1), 2),
            "ms per keypoint vote": round(1000 * vote_time / max(vote_calls, 1), 2),
            "verifications per query": round(verify_calls / max(len(records), 1), 2),
        }
    grocery_result: dict[str, Any] = {}
    if grocery_rows:
        def brand(product: str | None) -> str | None:
            return product.split("-")[0] if product else None

        ref_products = {product_of(sources[j]) for j in grocery}
        # store photos of a product that has an official photo among the references (all of them in a full run)
        store = [g for g in grocery_rows if g["product"] is not None and g["product"] in ref_products]
        others = [g for g in grocery_rows if g["product"] is None]
        grocery_result = {
            "references": len(grocery), "store photos": len(store),
            "top-1 product": round(float(np.mean([g["pick"] == g["product"] for g in store])), 3) if store else None,
            "own product shortlisted": round(float(np.mean([g["own_in_shortlist"] for g in store])), 3) if store else None,
            "wrong product, same brand": sum(1 for g in store if g["pick"] and g["pick"] != g["product"] and brand(g["pick"]) == brand(g["product"])),
            "wrong brand": sum(1 for g in store if g["pick"] and brand(g["pick"]) != brand(g["product"])),
            "not matched": sum(1 for g in store if g["pick"] is None),
            "unrelated (non-grocery photos and their edits)": len(others),
            "unrelated matched": sum(1 for g in others if g["pick"] is not None),
            "wrong picks": [g for g in store if g["pick"] and g["pick"] != g["product"]][:40],
        }
    speed = measure_speed(sources[:20] + unrelated[:40], verifier, shortlist)

    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "versions": _versions(),
        "config": {"quick": args.quick, "sources": len(sources), "edit_kinds": list(EDIT_KINDS),
                   "unrelated": len(unrelated) + n_synthetic, "unrelated_detail": unrelated_description,
                   "real_copies": len(copies_real), "top_k": args.top_k, "vote_top": args.vote_top, "seed": args.seed, "data": str(args.data)},
        "thresholds_zero_false_matches": thresholds,
        "recall": table,
        "false_matches_on_unrelated": {name: 0 for name in [m.name for m in methods]} | (
            {"knockoff perceptual + verify": len(false_verified)} if verifier else {}),
        "false_verified_pairs": false_verified,
        "verification": verify_stats,
        "grocery": grocery_result,
        "speed": speed,
        "elapsed_s": round(elapsed, 1),
    }
    print_table(result)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bench_copies_quick" if args.quick else "bench_copies"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(f"written: {args.out / (stem + '.json')}, {args.out / (stem + '.md')}")
    return 0


# ------------------------------------------------------------------------------ grocery: same packaging
def _synthetic_unrelated(seed: int) -> Image.Image:
    """A package-like synthetic image (smoothed noise, shapes, text) on a background: matches nothing."""
    from PIL import ImageDraw, ImageFilter

    rng = np.random.default_rng(1000 + seed)
    size = (int(rng.integers(240, 480)), int(rng.integers(240, 480)))
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        w, h = int(rng.integers(8, 60)), int(rng.integers(8, 60))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)((x, y, x + w, y + h), fill=colour, outline=(0, 0, 0))
    for i in range(6):
        draw.text((int(rng.integers(0, size[0] - 60)), int(rng.integers(0, size[1] - 12))), f"BRAND{seed}{i}", fill=(0, 0, 0))
    return image.filter(ImageFilter.SMOOTH)


def grocery_packaging(args: argparse.Namespace) -> int:
    """grocerystore: the 31 packaged products' official iconic photos as references, store photos as listings.

    The detector's pipeline on the perceptual engine, reproduced on in-memory images: global top-k, plus the
    keypoint-vote shortlist, verified; a verified copy wins; else, with ``--packaging``, the same-packaging
    match (knockoff.match.verify.pick_same_package). Store photos: val (held out: PackagingSettings were set on a
    sample of train photos), plus train in a full run; unrelated: every non-grocery source photo, some of their edits, synthetic
    package-like images."""
    import csv

    from knockoff.match import verify as kverify
    from knockoff.match.keypoints import KeypointShortlist

    g = args.data / "grocerystore"
    rows = list(csv.DictReader(open(g / "groundtruth_packages.csv", newline="")))
    refs = sorted({(r["product"], r["iconic_reference_image"], r["brand"]) for r in rows})
    products = [r[0] for r in refs]
    brand_of = {r[0]: r[2] for r in refs}
    # val: held out (the packaging thresholds were set on 120 train photos); the full run adds every train photo
    store = [r for r in rows if r["split"] == "val"] + ([] if args.quick else [r for r in rows if r["split"] == "train"])
    packaging = kverify.PackagingSettings() if args.packaging else None
    verifier = kverify.GeometricVerifier(packaging=packaging)
    ref_images = [load_image(g / r[1]) for r in refs]
    perceptual = PerceptualMethod()
    perceptual.prepare_sources(ref_images)
    ref_features = [verifier.features(im) for im in ref_images]
    shortlist = KeypointShortlist()
    for j, f in enumerate(ref_features):
        shortlist.add(j, f)
    vote_top = max(args.vote_top, packaging.vote_top) if packaging else args.vote_top
    candidate_floor = 0.55  # the perceptual engine's EngineThresholds.candidate

    from knockoff.evaluate.edits import EDIT_KINDS, apply_edit

    rng = np.random.default_rng(args.seed)
    others = [p for p in source_paths(args.data) if "grocerystore" not in p.parts]
    unrelated: list[tuple[str, Any]] = [(str(p.relative_to(args.data)), p) for p in others]
    unrelated += [(f"{p.relative_to(args.data)} [{kind}]", (p, kind)) for p in others[:: 2 if args.quick else 1]
                  for kind in EDIT_KINDS[:: 4 if args.quick else 2]]
    unrelated += [(f"synthetic:{i}", i) for i in range(20 if args.quick else 100)]

    def decide(image: Image.Image) -> tuple[int | None, str | None, Any]:
        glob = perceptual.scores(image)
        listing = verifier.features(image, with_mirror=True)
        order = [int(j) for j in np.argsort(-glob) if glob[j] >= candidate_floor][: args.top_k]
        order += [int(j) for j, _ in shortlist.vote(listing, top=vote_top + len(order)) if j not in order][:vote_top]
        matches = [(j, verifier.verify(listing, ref_features[j])) for j in order]
        verified = [(m.inliers, j, m) for j, m in matches if m.verified]
        if verified:
            _, j, m = max(verified, key=lambda t: t[0])
            return j, "near-copy", m
        if packaging is not None:
            chosen = kverify.pick_same_package([(products[j], m) for j, m in matches], packaging)
            if chosen is not None:
                return matches[chosen][0], "same-product", matches[chosen][1]
        return None, None, None

    t0 = time.perf_counter()
    results = []
    for r in store:
        j, tier, m = decide(load_image(g / r["path"]))
        pick = products[j] if j is not None else None
        results.append({"path": r["path"], "product": r["product"], "pick": pick, "tier": tier,
                        "inliers": m.inliers if m is not None else 0,
                        "reason": m.describe_packaging(refs[j][1].split("/")[-1]) if tier == "same-product" else None})
    false_unrelated = []
    for name, item in unrelated:
        if isinstance(item, int):
            image = _synthetic_unrelated(item)
        elif isinstance(item, tuple):
            image = apply_edit(load_image(item[0]), item[1], rng)
        else:
            image = load_image(item)
        j, tier, m = decide(image)
        if j is not None:
            false_unrelated.append({"listing": name, "pick": products[j], "tier": tier, "inliers": m.inliers})
    elapsed = time.perf_counter() - t0

    def rate(rs: list[dict]) -> float | None:
        return round(float(np.mean([x["pick"] == x["product"] for x in rs])), 3) if rs else None

    wrong_brand = [x for x in results if x["pick"] and brand_of[x["pick"]] != brand_of[x["product"]]]
    same_brand = [x for x in results if x["pick"] and x["pick"] != x["product"] and brand_of[x["pick"]] == brand_of[x["product"]]]
    result = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "versions": _versions(),
        "config": {"quick": args.quick, "packaging": args.packaging, "references": len(refs),
                   "store photos": len(store), "splits": "val" + ("" if args.quick else " + train"),
                   "unrelated": len(unrelated), "top_k": args.top_k, "vote_top": vote_top, "seed": args.seed,
                   "packaging_settings": packaging.__dict__ if packaging else None, "data": str(args.data)},
        "top-1 product": rate(results),
        "top-1 product (val)": rate([x for x in results if "/val/" in x["path"]]),
        "top-1 product (train; 120 of them set the thresholds)": rate([x for x in results if "/train/" in x["path"]]),
        "matched as near-copy": sum(1 for x in results if x["tier"] == "near-copy"),
        "matched as same-product (packaging)": sum(1 for x in results if x["tier"] == "same-product"),
        "not matched": sum(1 for x in results if x["pick"] is None),
        "wrong product, same brand": len(same_brand),
        "wrong brand": len(wrong_brand),
        "unrelated photos": len(unrelated),
        "unrelated matched": len(false_unrelated),
        "per product top-1": {p: rate([x for x in results if x["product"] == p]) for p in products},
        "wrong picks": wrong_brand + same_brand,
        "unrelated matches": false_unrelated,
        "example reasons": [x["reason"] for x in results if x["reason"]][:5],
        "elapsed_s": round(elapsed, 1),
    }
    lines = [f"# grocerystore: same packaging ({result['date']})", "",
             "Official iconic photos of the 31 packaged products as references, store photos as listings; "
             f"same-packaging match {'ON' if args.packaging else 'OFF'}.", "",
             "    " + " ".join(["python benchmarks/bench_copies.py --grocery-only", *(["--packaging"] if args.packaging else []),
                               *(["--quick"] if args.quick else [])]), ""]
    lines += [f"- {k}: {v}" for k, v in result.items() if k not in ("wrong picks", "unrelated matches", "per product top-1",
                                                                   "example reasons", "machine", "versions")]
    lines += ["", "Per product top-1: " + ", ".join(f"{k} {v}" for k, v in result["per product top-1"].items()), ""]
    lines += ["Wrong picks:"] + [f"- {x['path']} -> {x['pick']} ({x['tier']}, {x['inliers']} inliers)" for x in result["wrong picks"]]
    lines += ["", "Unrelated matches:"] + [f"- {x}" for x in false_unrelated]
    lines += ["", "Example reasons:"] + [f"- {x}" for x in result["example reasons"]]
    lines.append(f"\nversions: {result['versions']}; machine: {result['machine']}")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "grocery_packaging" + ("" if args.packaging else "_off")
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / f"{stem}.md").write_text(text)
    print(f"written: {args.out / (stem + '.json')}, {args.out / (stem + '.md')}")
    return 0


def measure_speed(paths: list[Path], verifier: Any = None, shortlist: Any = None, repeats: int = 2) -> dict[str, Any]:
    """Images per second end to end (file -> hash or vectors), same files, same run; best of ``repeats``."""
    import imagehash

    from knockoff.embedders.perceptual import PerceptualEmbedder

    emb = PerceptualEmbedder()

    def phash(p: Path) -> Any:
        with Image.open(p) as im:
            return imagehash.phash(im.convert("RGB"))

    def perceptual_listing(p: Path) -> Any:  # what a listing costs: every query view
        im = load_image(p, min_side=emb.input_size)
        return emb.embed(emb.query_views(im))

    def perceptual_single(p: Path) -> Any:
        return emb.embed([load_image(p, min_side=emb.input_size)])

    def perceptual_reference(p: Path) -> Any:  # indexing one official photo: every reference view
        im = load_image(p, min_side=emb.input_size)
        return emb.embed(emb.reference_views(im))

    def perceptual_listing_keypoints(p: Path) -> Any:  # + RootSIFT (plain and mirrored) and the keypoint vote
        im = load_image(p, min_side=emb.input_size)
        vectors = emb.embed(emb.query_views(im))
        features = verifier.features(im, with_mirror=True)
        return vectors, shortlist.vote(features, top=3)

    out: dict[str, Any] = {"images": len(paths)}
    timed = [("pHash", phash), ("perceptual (full photo only)", perceptual_single),
             ("perceptual listing (all query views)", perceptual_listing),
             ("perceptual reference (all reference views)", perceptual_reference)]
    if verifier is not None and shortlist is not None:
        timed.append(("perceptual listing + keypoint shortlist (no verification)", perceptual_listing_keypoints))
    for name, fn in timed:
        fn(paths[0])  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            for p in paths:
                fn(p)
            best = min(best, time.perf_counter() - t)
        out[name] = round(len(paths) / best, 1)
    for name in list(out):
        if name.startswith("perceptual"):
            out[f"ratio {name} / pHash"] = round(out[name] / out["pHash"], 2)
    return out


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("numpy", "pillow", "opencv-python-headless", "imagehash", "pdqhash", "faiss-cpu"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def print_table(result: dict) -> None:
    print(markdown(result))


def markdown(result: dict) -> str:
    recall = result["recall"]
    names = list(recall)
    kinds = list(next(iter(recall.values())))
    lines = [f"# Copy detection ({result['date']})", "",
             f"{result['config']['sources']} sources x {len(result['config']['edit_kinds'])} edits, "
             f"{result['config']['unrelated']} unrelated photos ({result['config'].get('unrelated_detail', 'real')}), {result['config']['real_copies']} real copies; "
             "threshold per method = zero false matches on the unrelated set.", "",
             "| kind | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(f"{recall[n].get(kind, float('nan')):.2f}" for n in names) + " |")
    fm = result["false_matches_on_unrelated"]
    lines.append("| false matches (unrelated) | " + " | ".join(str(fm.get(n, "")) for n in names) + " |")
    lines += ["", "Thresholds: " + ", ".join(f"{k} {v:.3f}" for k, v in result["thresholds_zero_false_matches"].items()), ""]
    lines += ["Speed (images/s end to end): " + ", ".join(f"{k}: {v}" for k, v in result["speed"].items()), ""]
    v = result.get("verification")
    if v:
        lines += [f"Verification: {v['ms per verify']} ms per pair, {v['verifications per query']} pairs per query; "
                  f"keypoint vote: {v['ms per keypoint vote']} ms per query; measured distributions (percentiles):", ""]
        for group in ("copies (own source)", "unrelated (top-k shortlisted pairs)"):
            lines.append(f"- {group}: " + "; ".join(
                f"{k} " + " ".join(f"{q}={val}" for q, val in d.items() if q in ("p0", "p1", "p5", "p50", "p99", "p100", "n"))
                for k, d in v[group].items()))
        lines.append(f"- unrelated pairs with >= 8 inliers: {len(v['unrelated with >= 8 inliers'])}")
        for item in v["unrelated with >= 8 inliers"][:20]:
            lines.append(f"  - {item}")
        lines.append(f"- copies missed by perceptual + verify: {len(v['failed copies'])}")
        for item in v["failed copies"][:40]:
            lines.append(f"  - {item}")
    fv = result.get("false_verified_pairs") or []
    lines.append(f"- unrelated pairs verified (false matches): {len(fv)}")
    for item in fv:
        lines.append(f"  - {item}")
    g = result.get("grocery")
    if g:
        lines += ["", "## grocerystore target (official iconic photos as references, store photos as listings)", ""]
        lines += [f"- {k}: {val}" for k, val in g.items() if k != "wrong picks"]
        for item in g["wrong picks"][:20]:
            lines.append(f"  - wrong pick: {item}")
    lines.append(f"\nversions: {result['versions']}; machine: {result['machine']}; elapsed {result['elapsed_s']} s")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
