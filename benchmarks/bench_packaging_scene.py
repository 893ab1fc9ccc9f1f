"""The packaging match's scene rule, measured: which packaging matches show a package and which a re-shot scene.

With ``packaging_match`` on, a packaging match whose matching keypoints span more than half of the official
photo's shown part, or whose matches land just off the fitted plane more than half as often as on it
(parallax), names the brand only (``knockoff.match.verify.scene_check``). This script lists every packaging match
the Detector makes (``Policy(packaging_match=True)``, perceptual engine) with both measures, on:

- packages, where the rule must not fire: grocerystore *train* store photos (a seeded sample; the thresholds
  were set on these, with a margin above the most they reach), synthetic hard's own photos of a product;
- re-shot scenes of shared/data/real's copy groups (jenssegers' second photo of the office, a hard negative;
  threatexchange's three re-shot desk photos; its coaster photographed anew, a flat printed object), and every
  ordered pair of the office's two and the desk's four photos, each in turn the official photo;
- the sibling set of ``bench_sibling_verdicts.py`` (official photos of products missing from the index);
- grocerystore *val*, held out: never used to set anything, the last check.

Beside the rule's two measures, a candidate measured and rejected (``--fundamental``, slower): the matches that a
fundamental matrix (RANSAC, 2 px) explains but the homography does not, per inlier: packages on a shelf reach as
much as scenes (a second carton of the same product beside the first, a carton's second face, repeated print).

    python benchmarks/bench_packaging_scene.py [--train 300] [--fundamental]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grocery_fusion as fusion  # noqa: E402
import bench_sibling_verdicts as siblings  # noqa: E402
from common import REAL_DATA, markdown_table, write_results  # noqa: E402

from knockoff import Catalog, Detector, Listing, Policy, build_index  # noqa: E402
from knockoff.match.verify import GeometricVerifier  # noqa: E402

POLICY = Policy(packaging_match=True)


class _Recording(GeometricVerifier):
    """Keeps each match's ratio-test points, for the fundamental-matrix diagnostic (``--fundamental``)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.points: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def _ratio_matches(self, listing: Any, reference: Any) -> tuple[np.ndarray, np.ndarray]:
        src, dst = super()._ratio_matches(listing, reference)
        self._last = (src, dst)
        return src, dst

    def _match(self, listing: Any, reference: Any, *, mirrored: bool) -> Any:
        self._last = None
        match = super()._match(listing, reference, mirrored=mirrored)
        if self._last is not None and match.inliers:
            self.points[_key(match.to_dict())] = self._last
        return match


def _key(d: dict[str, Any]) -> tuple:
    return tuple(d[k] for k in ("inliers", "matches", "inlier_ratio", "reference_coverage", "listing_coverage",
                                "mirrored", "off_plane"))


def _fundamental_excess(points: tuple[np.ndarray, np.ndarray] | None, inliers: int) -> float | None:
    """Matches a fundamental matrix explains and the homography does not, per homography inlier."""
    import cv2

    if points is None or len(points[0]) < 8:
        return None
    src, dst = points
    cv2.setRNGSeed(12345)
    _, h_mask = cv2.findHomography(src, dst, cv2.RANSAC, POLICY.verifier.ransac_threshold, maxIters=2000,
                                   confidence=0.995)
    _, f_mask = cv2.findFundamentalMat(src, dst, cv2.FM_RANSAC, 2.0, 0.999, 5000)
    if h_mask is None or f_mask is None:
        return None
    return round(int((f_mask.ravel().astype(bool) & ~h_mask.ravel().astype(bool)).sum()) / max(inliers, 1), 3)


def _detector(index: Any, fundamental: bool) -> Detector:
    verifier = _Recording(POLICY.verifier, packaging=POLICY.packaging) if fundamental else "auto"
    return Detector(index, POLICY, verifier=verifier)


def _row(group: str, detector: Detector, verdict: Any, outcome: str) -> dict[str, Any]:
    match = verdict.match
    visual = verdict.signal("VISUAL_MATCH")
    details = visual.details if visual is not None else {}
    row = {"group": group, "listing": verdict.listing_id, "verdict": verdict.verdict, "outcome": outcome,
           "tier": match.tier if match else None, "product": match.product_id if match else None,
           "similarity": match.similarity if match else None, "scene": details.get("scene"),
           "look_alike": bool(details.get("look_alike")), "packaging": False}
    verification = (match.verification or {}) if match else {}
    if match is not None and match.tier == "same-package" and verification and not verification.get("verified"):
        inliers = verification["inliers"]
        row.update(packaging=True, inliers=inliers, spread=verification["inlier_spread"],
                   off_plane=round(verification["off_plane"] / max(inliers, 1), 3))
        points = getattr(detector.verifier, "points", None)
        if points is not None:
            row["fundamental_excess"] = _fundamental_excess(points.get(_key(verification)), inliers)
    return row


def grocery_rows(data: Path, n_train: int, fundamental: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="knockoff-bench-") as tmp:
        index = build_index(Catalog.from_dir(fusion.write_catalog(data, Path(tmp) / "catalog")), "perceptual")
        detector = _detector(index, fundamental)
        for photo in fusion.store_photos(data, False, 0, n_train):
            verdict = detector.check(Listing([data / fusion.GROCERY / photo["path"]], seller="shop-nobody",
                                             listing_id=photo["path"]))
            outcome = fusion.outcome(verdict.match, photo["brand"], photo["product"])
            rows.append(_row(f"grocery {photo['split']}", detector, verdict, outcome))
    return rows


def labeled_rows(folder: Path, group: str, fundamental: bool, kinds: set[str] | None) -> list[dict[str, Any]]:
    """The listings of a labeled set (of ``kinds`` only, when given)."""
    detector = _detector(build_index(Catalog.from_dir(folder), "perceptual"), fundamental)
    rows = []
    with open(folder / "listings.csv", newline="", encoding="utf-8") as handle:
        for item in csv.DictReader(handle):
            if kinds is not None and item["kind"] not in kinds:
                continue
            verdict = detector.check(Listing([folder / item["image"]], seller="shop-nobody",
                                             listing_id=item["listing_id"]))
            truth = item["product_id"] or None
            matched = verdict.match.product_id if verdict.match and verdict.match.tier else None
            outcome = ("none" if matched is None else "brand-only" if not matched else
                       "right" if matched == truth else "unrelated-named" if truth is None else "wrong")
            rows.append(_row(f"{group} {item['kind']}", detector, verdict, outcome))
    return rows


RESHOT = {  # photos of one scene taken anew: each, in turn, the official photo of the others
    "office": ("jenssegers-imagehash/tests/images/office/tumblr_ndyfnr7lk21tubinno1_1280.jpg",
               "jenssegers-imagehash/tests/images/office/tumblr_ndyfq386o41tubinno1_1280.jpg"),
    "desk": tuple(f"threatexchange-pdq/pdq/data/reg-test-input/exif-rotn/exif-rotn-{i}.jpg" for i in (1, 3, 6, 8)),
}


def reshot_rows(data: Path, fundamental: bool) -> list[dict[str, Any]]:
    """Every ordered pair of the re-shot scenes' photos (``RESHOT``): a product named is a scene taken for one."""
    import shutil

    rows = []
    for scene, paths in RESHOT.items():
        if not all((data / p).is_file() for p in paths):
            continue
        for reference in paths:
            with tempfile.TemporaryDirectory(prefix="knockoff-bench-") as tmp:
                root = Path(tmp)
                shutil.copy(data / reference, root / Path(reference).name)
                (root / "brands.csv").write_text("brand,aliases,authorized_sellers\nscene,,official\n")
                (root / "references.csv").write_text("brand,product_id,product_name,image,price,currency\n"
                                                     f"scene,{scene},{scene},{Path(reference).name},,\n")
                detector = _detector(build_index(Catalog.from_dir(root), "perceptual"), fundamental)
                for listed in paths:
                    if listed != reference:
                        verdict = detector.check(Listing([data / listed], seller="shop-nobody",
                                                         listing_id=f"{Path(listed).name} vs {Path(reference).name}"))
                        named = verdict.match.product_id if verdict.match and verdict.match.tier else None
                        outcome = "none" if named is None else "brand-only" if not named else "product named"
                        rows.append(_row(f"re-shot pairs: {scene}", detector, verdict, outcome))
    return rows


def sibling_rows(data: Path, fundamental: bool) -> list[dict[str, Any]]:
    original = siblings.Detector
    kept: list[Any] = []

    def make(index: Any, policy: Policy) -> Detector:
        kept.append(_detector(index, fundamental))
        return kept[-1]

    siblings.Detector = make  # type: ignore[assignment]
    rows: list[dict[str, Any]] = []
    try:
        checked = siblings.run(data, POLICY)
    finally:
        siblings.Detector = original  # type: ignore[assignment]
    for item in checked:  # run() keeps only its own columns: the packaging measures are not there
        rows.append({"group": "siblings", "listing": item["listed"], "verdict": item["verdict"],
                     "outcome": "brand-only" if item["tier"] and not item["matched"] else
                     ("sibling" if item["tier"] else "none"), "tier": item["tier"], "product": item["matched"],
                     "similarity": item["global_similarity"], "packaging": False})
    return rows


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_group[row["group"]].append(row)
    table = []
    for group, items in sorted(by_group.items()):
        packaging = [r for r in items if r["packaging"]]
        outcomes = Counter(r["outcome"] for r in items)
        excess = [r["fundamental_excess"] for r in packaging if r.get("fundamental_excess") is not None]
        table.append([
            group, len(items), len(packaging), sum(bool(r.get("scene")) for r in items),
            max((r["spread"] for r in packaging), default=None), max((r["off_plane"] for r in packaging), default=None),
            max(excess, default=None), ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())),
            Counter(r["verdict"] for r in items).get("suspect", 0),
        ])
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--train", type=int, default=300, help="grocerystore train photos (a seeded sample)")
    parser.add_argument("--fundamental", action="store_true", help="also the fundamental-matrix diagnostic")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    from knockoff.cli.evaluate import size_to_arguments
    from knockoff.evaluate.realsets import make_copy_set
    from knockoff.evaluate.synthetic import make_labeled_set

    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="knockoff-bench-") as tmp:
        hard = Path(tmp) / "synthetic-hard"
        make_labeled_set(hard, seed=1, difficulty="hard", **size_to_arguments(120))
        rows += labeled_rows(hard, "synthetic hard", args.fundamental, {"own-photo"})
        if (args.data / "threatexchange-pdq").is_dir() and (args.data / "jenssegers-imagehash").is_dir():
            copies = Path(tmp) / "real-copies"
            make_copy_set(copies, args.data, ("threatexchange-pdq", "jenssegers-imagehash", "imagededup"))
            rows += labeled_rows(copies, "real copy groups", args.fundamental, {"own-photo", "hard-negative", "unrelated"})
    rows += reshot_rows(args.data, args.fundamental)
    if (args.data / fusion.GROCERY).is_dir():
        rows += grocery_rows(args.data, args.train, args.fundamental)
        rows += sibling_rows(args.data, args.fundamental)
    table = summary(rows)
    s = POLICY.packaging
    md = (f"# The packaging match's scene rule\n\n{__doc__.split(chr(10) + chr(10), 1)[1]}\n"
          f"Thresholds: `max_inlier_spread` {s.max_inlier_spread}, `max_off_plane` {s.max_off_plane} per inlier.\n\n"
          + markdown_table(["listings", "n", "packaging matches (not copies)", "judged a scene (brand only)",
                            "max spread", "max off-plane per inlier", "max fundamental excess per inlier",
                            "outcomes", "suspect"], table)
          + "\n\nEvery packaging match of a scene or a copy group, and those of the other groups that the rule "
          "judged a scene:\n\n"
          + markdown_table(["listings", "listing", "verdict", "outcome", "similarity", "spread", "off-plane",
                            "fundamental excess", "scene"],
                           [[r["group"], r["listing"][-48:], r["verdict"], r["outcome"], r["similarity"],
                             r.get("spread"), r.get("off_plane"), r.get("fundamental_excess"),
                             (r.get("scene") or "")[:60]]
                            for r in rows if r["packaging"] and (r["group"].startswith(("real", "re-shot")) or r.get("scene"))])
          + f"\n\nElapsed {time.perf_counter() - started:.0f} s.\n")
    if not args.no_write:
        write_results("packaging_scene", {"rows": rows, "summary": table,
                                          "elapsed_s": round(time.perf_counter() - started, 1)}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
