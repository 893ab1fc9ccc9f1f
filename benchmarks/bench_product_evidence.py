"""What tells a product's new photo from a sibling's: candidate evidence on the packaging match's product picks.

    python benchmarks/bench_product_evidence.py            # measure both settings (a few minutes)
    python benchmarks/bench_product_evidence.py --rows-from DIR   # only summarise missing.json/present.json in DIR

The evidence behind ``PackagingSettings.min_product_detail`` (:func:`knockoff.match.siblings.product_check`).
Two settings, grocerystore *train* store photos only (val held out), text reading off, the rule itself off
(``min_product_detail=0``: every winning package names its product, as before the rule):

- ``missing``: ``bench_sibling_verdicts.py --store 3``'s flow: half of each brand's products indexed, up to 3
  train store photos of each other product listed: every product named is a wrong one (a sibling);
- ``present``: all 31 products indexed, 200 train store photos (``bench_grocery_fusion.store_photos``, seed 0): the products named right and wrong.

For each product-named pick, measured on its chosen match: its inliers and their spread, the small print
reproduced (``detail``: the detail agreement), the share of the official photo's keypoint-bearing grid cells
(6x6, visible in the listing) that hold an inlier (``occ6``), the worst region of a 2x2 / 3x3 / 4x4 grid in
small print (``dmin*``) and in colour under one global colour map (``cmin*``), and the small print with 2-4
pixels of misalignment forgiven (``dshift*``). The summary gives each measure's percentiles per group, the area
under the ROC curve between right products and siblings, and a sweep of the detail threshold. It reaches into
the verifier's internals (a probe, not the library's API).
"""
import argparse
import json
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_grocery_fusion as gf  # noqa: E402
import bench_sibling_verdicts as sv  # noqa: E402
from common import REAL_DATA, markdown_table, write_results  # noqa: E402

from knockoff import Detector, Listing, Policy, build_index  # noqa: E402
from knockoff.catalog.readers import Catalog  # noqa: E402
from knockoff.decide.policy import TextSettings  # noqa: E402
from knockoff.match import pixels  # noqa: E402

_BASE = Policy(packaging_match=True, text=TextSettings(enabled=False))
POLICY = replace(_BASE, packaging=replace(_BASE.packaging, min_product_detail=0.0))
RECORD: list = []


def measures(det, cand, image):
    v = det.verifier
    m = cand.verification
    ref = det._features_of(cand.hit)
    lst = v._listing_features(image)
    if m.enlarged:
        lst = v.enlarged(lst) or lst
        ref = v.enlarged(ref) or ref
    if m.mirrored:
        return {}
    h = np.array(m.homography).reshape(3, 3)
    v._ensure_cv()
    src, dst = v._ratio_matches(lst, ref)
    hom = np.hstack([src, np.ones((len(src), 1))]) @ h.T
    proj = hom[:, :2] / hom[:, 2:3]
    inl = np.linalg.norm(proj - dst, axis=1) <= v.settings.ransac_threshold
    out = {}
    W, H = ref.work_size
    LW, LH = lst.work_size
    for g in (3, 4, 6):
        cx = (np.arange(g) + 0.5) * W / g
        cy = (np.arange(g) + 0.5) * H / g
        gx, gy = np.meshgrid(cx, cy)
        pts = np.stack([gx.ravel(), gy.ravel()], 1)
        ph = np.hstack([pts, np.ones((len(pts), 1))]) @ h.T
        pp = ph[:, :2] / ph[:, 2:3]
        visible = (ph[:, 2] > 0) & (pp[:, 0] >= 0) & (pp[:, 0] < LW) & (pp[:, 1] >= 0) & (pp[:, 1] < LH)
        def cells(p):
            c = np.clip((p[:, 1] * g // H).astype(int), 0, g - 1) * g + np.clip((p[:, 0] * g // W).astype(int), 0, g - 1)
            return np.bincount(c, minlength=g * g)
        kp = cells(ref.points.astype(np.float64))
        il = cells(src[inl])
        face = (kp >= 3) & visible
        out[f"occ{g}"] = float(((il > 0) & face).sum() / max(face.sum(), 1))
        out[f"face{g}"] = int(face.sum())
    al = pixels._aligned(lst.colour, lst.work_size, ref.colour, ref.work_size, h, False)
    if al is not None:
        r, w, cov = al
        C = pixels.COLOUR_CELL
        rows, cols = r.shape[0] // C, r.shape[1] // C
        full = pixels._cells(cov, C).mean(axis=1) >= pixels.MIN_COVERED
        rc, lc = pixels._cells(r, C), pixels._cells(w, C)
        rm, lm = rc.mean(axis=1), lc.mean(axis=1)
        chroma = rm.max(axis=1) - rm.min(axis=1)
        info = full & (((rc @ pixels._LUMA).std(axis=1) >= pixels.FLAT_STD) | (chroma >= pixels.CHROMA))
        if info.sum() >= 8:
            e1 = pixels._robust_colour_map(rm[info], lm[info])[1]
            e2 = pixels._robust_colour_map(lm[info], rm[info])[1]
            e = np.minimum(e1, e2) if False else (e1 if (e1 <= 30).mean() >= (e2 <= 30).mean() else e2)
            ok = np.zeros(len(rm), bool)
            ok[np.flatnonzero(info)] = e <= pixels.COLOUR_TOLERANCE
            out["colour"] = float(ok[info].mean())
            ri = np.arange(rows * cols) // cols
            ci = np.arange(rows * cols) % cols
            for g in (2, 3, 4):
                reg = (ri * g // max(rows, 1)) * g + (ci * g // max(cols, 1))
                vals = []
                for k in range(g * g):
                    sel = info & (reg == k)
                    if sel.sum() >= 3:
                        vals.append(float(ok[sel].mean()))
                out[f"cmin{g}"] = min(vals) if vals else None
                out[f"cq{g}"] = sorted(vals)[1] if len(vals) > 2 else None
        out["detail"] = pixels._detail_agreement(r, w, cov)
        out.update(region_detail(r, w, cov))
        for sh in (2, 3, 4):
            out[f"dshift{sh}"] = shifted_detail(r, w, cov, sh)
    return out


def region_detail(reference, warped, covered):
    import cv2
    a = cv2.GaussianBlur(np.ascontiguousarray(reference @ pixels._LUMA), (0, 0), 1.0)
    b = cv2.GaussianBlur(np.ascontiguousarray(warped), (0, 0), 1.0)
    s, cell = pixels.DETAIL_SHIFT, pixels.DETAIL_CELL
    shape = ((a.shape[0] - 2 * s) // cell, (a.shape[1] - 2 * s) // cell)
    ref_cells = pixels._cells(a, cell, s, shape)
    textured = (pixels._cells(covered, cell, s, shape).mean(axis=1) >= pixels.MIN_COVERED) & (ref_cells.std(axis=1) >= pixels.DETAIL_STD)
    if textured.sum() < 8:
        return {}
    y = ref_cells[textured] - ref_cells[textured].mean(axis=1, keepdims=True)
    best = np.zeros(len(y))
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            x = pixels._cells(b[s + dy:, s + dx:], cell, 0, shape)[textured]
            best = np.maximum(best, pixels._channel_correlation(y, x))
    idx = np.flatnonzero(textured)
    rows, cols = shape
    ri, ci = idx // cols, idx % cols
    out = {}
    ok = best >= pixels.DETAIL_NCC
    soft = best
    for g in (2, 3, 4):
        reg = (ri * g // rows) * g + (ci * g // cols)
        vals, svals = [], []
        for k in range(g * g):
            sel = reg == k
            if sel.sum() >= 6:
                vals.append(float(ok[sel].mean())); svals.append(float(np.median(soft[sel])))
        if len(vals) >= 2:
            out[f"dmin{g}"] = min(vals)
            out[f"drel{g}"] = min(vals) / max(np.median(vals), 1e-6)
            out[f"smin{g}"] = min(svals)
            out[f"nreg{g}"] = len(vals)
    out["ncc_med"] = float(np.median(best))
    out["ncc_p25"] = float(np.percentile(best, 25))
    return out


def shifted_detail(reference, warped, covered, s):
    import cv2
    a = cv2.GaussianBlur(np.ascontiguousarray(reference @ pixels._LUMA), (0, 0), 1.0)
    b = cv2.GaussianBlur(np.ascontiguousarray(warped), (0, 0), 1.0)
    cell = pixels.DETAIL_CELL
    shape = ((a.shape[0] - 2 * s) // cell, (a.shape[1] - 2 * s) // cell)
    ref_cells = pixels._cells(a, cell, s, shape)
    textured = (pixels._cells(covered, cell, s, shape).mean(axis=1) >= pixels.MIN_COVERED) & (ref_cells.std(axis=1) >= pixels.DETAIL_STD)
    if textured.sum() < 8:
        return None
    y = ref_cells[textured] - ref_cells[textured].mean(axis=1, keepdims=True)
    best = np.zeros(len(y))
    for dy in range(-s, s + 1):
        for dx in range(-s, s + 1):
            x = pixels._cells(b[s + dy:, s + dx:], cell, 0, shape)[textured]
            best = np.maximum(best, pixels._channel_correlation(y, x))
    return float((best >= pixels.DETAIL_NCC).mean())


def patch():
    orig = Detector._verify_and_pick

    def wrapped(self, candidates, images, vectors, checked=None):
        best = orig(self, candidates, images, vectors, checked)
        if best is not None and best.verification is not None and (best.same_package or best.same_brand):
            others = [c for c in (candidates or []) if c.verification is not None and
                      c.hit.reference.product_id != best.hit.reference.product_id]
            second = max((c.verification.inliers for c in others), default=0)
            m = best.verification
            RECORD.append({"product": best.hit.reference.product_id, "same_package": bool(best.same_package),
                           "brand_only_flag": bool(best.same_brand), "inliers": m.inliers, "ratio": m.inlier_ratio,
                           "refcov": m.reference_coverage, "lstcov": m.listing_coverage, "spread": m.inlier_spread,
                           "enlarged": m.enlarged, "second": second, "sim": best.hit.similarity,
                           **measures(self, best, images[best.listing_image])})
        return best
    Detector._verify_and_pick = wrapped


def missing(data=REAL_DATA):
    rows = []
    by_brand = defaultdict(list)
    for photo in sorted((data / sv.ICONIC).glob("*/*/*_Iconic.jpg")):
        by_brand[photo.parent.name.split("-")[0]].append(photo)
    with tempfile.TemporaryDirectory() as tmp:
        for half in (0, 1):
            indexed = [(b, p) for b, ps in by_brand.items() for i, p in enumerate(ps) if i % 2 == half]
            listed = [(b, p) for b, ps in by_brand.items() for i, p in enumerate(ps) if i % 2 != half]
            index = build_index(sv._catalog(Path(tmp) / f"half{half}", sorted(by_brand), indexed), "perceptual")
            det = Detector(index, POLICY)
            by_product = sv._store_photos(data, 3)
            for _, p in listed:
                for s in by_product.get(p.parent.name, []):
                    RECORD.clear()
                    vd = det.check(Listing([s], seller="shop123"))
                    rows.append({"truth": p.parent.name, "tier": vd.match.tier if vd.match else None,
                                 "named": vd.match.product_id if vd.match else None, "rec": list(RECORD)})
    return rows


def present(n_train, n_val, data=REAL_DATA):
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cat = gf.write_catalog(data, Path(tmp) / "cat")
        index = build_index(Catalog.from_dir(cat), "perceptual")
        det = Detector(index, POLICY)
        for r in gf.store_photos(data, False, 0, n_train, n_val):
            RECORD.clear()
            vd = det.check(Listing([data / "grocerystore" / r["path"]], seller="shop123"))
            rows.append({"truth": r["product"], "split": r["split"], "tier": vd.match.tier if vd.match else None,
                         "named": vd.match.product_id if vd.match else None, "rec": list(RECORD)})
    return rows



MEASURES = ("inliers", "ratio", "spread", "occ6", "detail", "dmin2", "dmin3", "dmin4", "cmin2", "cmin3", "colour",
            "dshift2", "dshift3", "dshift4")


def picks(rows):
    """The product-named same-package picks: {"right": [...], "wrong": [...]} of their measures."""
    out = {"right": [], "wrong": []}
    for r in rows:
        if r["tier"] != "same-package" or not r["named"]:
            continue
        rec = [x for x in r["rec"] if x["product"] == r["named"]]
        if rec:
            out["right" if r["named"] == r["truth"] else "wrong"].append(rec[-1])
    return out


def auc(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float((a[:, None] > b[None]).mean() + 0.5 * (a[:, None] == b[None]).mean())


def summary(missing_rows, present_rows):
    wrong, right = picks(missing_rows)["wrong"], picks(present_rows)["right"]
    table = []
    for k in MEASURES:
        w = [r.get(k) for r in wrong if r.get(k) is not None]
        g = [r.get(k) for r in right if r.get(k) is not None]
        if not w or not g:
            continue
        pw = np.percentile(w, [50, 90]).round(2).tolist()
        pg = np.percentile(g, [25, 50]).round(2).tolist()
        table.append([k, f"{pw[0]} / {pw[1]}", f"{pg[0]} / {pg[1]}", round(auc(g, w), 3)])
    sweep = [[t, sum((r.get("detail") or 0) >= t for r in wrong), len(wrong),
              sum((r.get("detail") or 0) >= t for r in right), len(right)] for t in (0.5, 0.55, 0.57, 0.6, 0.62, 0.65)]
    md = (f"# Product evidence: a product's new photo against a sibling's\n\n{__doc__.split(chr(10) + chr(10), 2)[2]}\n"
          f"- siblings named (missing setting): {len(wrong)}; right products named (present setting): {len(right)}\n\n"
          + markdown_table(["measure", "siblings p50 / p90", "right p25 / p50", "ROC AUC right vs sibling"], table)
          + "\n\nThreshold on the small print reproduced (``detail``): picks that keep naming a product\n\n"
          + markdown_table(["min detail", "siblings named", "of", "right products named", "of"], sweep) + "\n")
    return {"table": table, "sweep": sweep}, md


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows-from", type=Path, help="summarise missing.json and present.json in this folder")
    parser.add_argument("--name", default="product_evidence")
    args = parser.parse_args(argv)
    if args.rows_from:
        rows = {k: json.loads((args.rows_from / f"{k}.json").read_text()) for k in ("missing", "present")}
    else:
        patch()
        rows = {"missing": missing(), "present": present(200, 0)}
    data, md = summary(rows["missing"], rows["present"])
    write_results(args.name, data, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
