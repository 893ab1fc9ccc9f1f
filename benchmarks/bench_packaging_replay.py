"""The packaging match's second look, replayed pair by pair: which picks each way of running it changes.

    python benchmarks/bench_packaging_replay.py --quick   # grocerystore val (100) and synthetic hard (27)
    python benchmarks/bench_packaging_replay.py           # val, 150 train photos, synthetic hard (120) and demo,
                                                          # real copy groups

For every listing of each set, the candidates a ``Policy(packaging_match=True)`` Detector verifies (the global
shortlist and the keypoint vote's ``packaging.vote_top``) are matched by the first, copy-check match
(``GeometricVerifier.verify(second_look=False)``) and by three second looks with the small photos enlarged:
``either way`` (the listing photo also mirrored: the code before issue 14's round), ``unmirrored`` (now), and
``reference only`` (only the official photo enlarged). Then the packaging decision (a copy, else
:func:`~knockoff.match.verify.pick_same_package`, else :func:`~knockoff.match.verify.pick_same_brand`) is replayed
for each way, and for ``unmirrored`` gated as the detector gates it (the second look only when a candidate's first
match found ``packaging.second_look_min_matches`` ratio-test matches). Reported: the picks (right product, brand
only, sibling, wrong brand, unrelated matched, none), the listings whose pick differs from ``either way``, and the
CPU seconds of the matching (enlarged features included, computed once per photo).

Results: benchmarks/results/packaging_replay(.quick).{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from dataclasses import replace
from typing import Any

from PIL import Image, ImageOps

from common import REAL_DATA, markdown_table, text_table, write_results

from knockoff import Catalog, Detector, build_index
from knockoff.catalog.readers import read_listings
from knockoff.decide.policy import Policy
from knockoff.match.verify import pick_same_brand, pick_same_package

WAYS = ("first only", "either way", "unmirrored", "reference only")


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.process_time()
    return fn(*args, **kwargs), time.process_time() - start


_MIRRORED: dict[int, Any] = {}  # id of a listing photo's features -> its enlarged mirrored features (one listing)


def _enlarged_mirror(v: Any, lf: Any, big_l: Any) -> Any:
    """The mirrored enlarged listing photo's features, as the code before computed them with the enlarged ones."""
    if big_l is lf:
        return v._mirror_of(lf)
    if id(lf) not in _MIRRORED:
        gray = Image.fromarray(lf.small_gray)
        scale = min(v.settings.enlarge_small_to, v.settings.max_side) / max(gray.size)
        big = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.BICUBIC)
        _MIRRORED.clear()
        _MIRRORED[id(lf)] = replace(v._compute(ImageOps.mirror(big), lf.image_size), thumbnail=big_l.thumbnail,
                                    colour=lf.colour)
    return _MIRRORED[id(lf)]


def _second(v: Any, way: str, lf: Any, rf: Any) -> tuple[Any, float]:
    """The second look's match of one pair, and its CPU seconds (enlarging included, when first done here)."""
    start = time.process_time()
    big_l, big_r = v.enlarged(lf) or lf, v.enlarged(rf) or rf
    if way == "either way":  # the code before: the enlarged listing photo also mirrored
        match = v._match(big_l, big_r, mirrored=False)
        if not match.verified and v.settings.try_mirror:
            flipped = v._match(_enlarged_mirror(v, lf, big_l), big_r, mirrored=True)
            match = flipped if flipped.verified or flipped.inliers > match.inliers else match
    elif way == "unmirrored":
        match = v._match(big_l, big_r, mirrored=False)
    else:
        match = v._match(lf, big_r, mirrored=False)
    return match, time.process_time() - start


def pairs_of(root: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every listing's candidates with their first match and each second look."""
    catalog = Catalog.from_dir(root)
    detector = Detector(build_index(catalog, "perceptual"), policy=Policy(packaging_match=True))
    v = detector.verifier
    rows = []
    for item in read_listings(root / "listings.csv"):
        loaded = detector.load(item.listing)
        if not loaded.images:
            continue
        vectors = detector.embed(loaded.images)
        candidates = detector._candidates(detector.search(vectors))
        shortlist = [c for c in candidates[: detector.policy.verify_top]
                     if c.hit.similarity >= detector.thresholds.candidate]
        pairs = []
        for c in shortlist + detector._voted_candidates(candidates, loaded.images, vectors, shortlist):
            lf, rf = v._listing_features(loaded.images[c.listing_image]), detector._features_of(c.hit)
            first, seconds = _timed(v.verify, loaded.images[c.listing_image], rf, second_look=False)
            pair = {"key": (c.hit.reference.brand, c.hit.reference.product_id), "sim": c.hit.similarity,
                    "first": first, "cpu": {"first only": seconds}, "small": lf.small_gray is not None
                    or rf.small_gray is not None}
            # enlarging each photo costs once (the verifier keeps it): counted where it is first done
            pair["enlarge listing"] = _timed(v.enlarged, lf)[1] if pair["small"] else 0.0
            pair["enlarge reference"] = _timed(v.enlarged, rf)[1] if pair["small"] else 0.0
            for way in WAYS[1:]:
                pair[way], pair["cpu"][way] = _second(v, way, lf, rf) if pair["small"] else (None, 0.0)
            pairs.append(pair)
        rows.append({"label": item.label, "product": item.product_id, "pairs": pairs})
    return rows, {r.product_id: r.brand for r in catalog.references}


def pick(pairs: list[dict[str, Any]], way: str, gate: int = 0) -> tuple[str, str, str] | None:
    """The packaging decision with the second look ``way`` (gated as the detector gates it)."""
    looked = way != "first only" and max((p["first"].matches for p in pairs), default=0) >= gate
    matches = []
    for p in pairs:
        second = p.get(way) if looked else None
        better = second is not None and not p["first"].verified and (second.verified or second.inliers > p["first"].inliers)
        matches.append((p, second if better else p["first"]))
    copies = [(p, m) for p, m in matches if m.verified]
    if copies:
        p, _ = max(copies, key=lambda x: (x[1].inliers, x[0]["sim"]))
        return "copy", *p["key"]
    matches.sort(key=lambda x: -x[0]["sim"])
    chosen = pick_same_package([(p["key"], m) for p, m in matches])
    if chosen is not None:
        return "package", *matches[chosen][0]["key"]
    chosen = pick_same_brand([((p["key"][0].casefold(), p["key"][1]), m) for p, m in matches])
    return None if chosen is None else ("brand", matches[chosen][0]["key"][0], "")


def outcome(row: dict[str, Any], chosen: tuple[str, str, str] | None, brand_of: dict[str, str]) -> str:
    if chosen is None:
        return "none"
    if row["label"] == "unrelated":
        return "unrelated matched"
    if chosen[2] == row["product"]:
        return "right product"
    if chosen[1].casefold() != brand_of.get(row["product"] or "", "").casefold():
        return "wrong brand"
    return "sibling" if chosen[2] else "brand only"


def _second_cpu(pair: dict[str, Any], way: str) -> float:
    """CPU seconds of a pair's second look ``way``, with the enlarging it needs when first done for this pair."""
    return pair["cpu"][way] + pair["enlarge reference"] + (pair["enlarge listing"] if way != "reference only" else 0.0)


def summarise(rows: list[dict[str, Any]], brand_of: dict[str, str], gate: int) -> list[dict[str, Any]]:
    ways = [(way, 0) for way in WAYS] + [("unmirrored", gate)]
    reference = {id(r): pick(r["pairs"], "either way") for r in rows}
    out = []
    for way, g in ways:
        counts: Counter[str] = Counter()
        changed = skipped = 0
        cpu = 0.0
        for r in rows:
            chosen = pick(r["pairs"], way, g)
            counts[outcome(r, chosen, brand_of)] += 1
            changed += chosen != reference[id(r)]
            looked = way != "first only" and max((p["first"].matches for p in r["pairs"]), default=0) >= g
            skipped += not looked and way != "first only"
            cpu += sum(p["cpu"]["first only"] + (_second_cpu(p, way) if looked and way != "first only" else 0.0)
                       for p in r["pairs"])
        out.append({"second look": way + (f", gated at {g} matches" if g else ""), **dict(counts),
                    "picks changed vs either way": changed, "listings without a second look": skipped,
                    "CPU s": round(cpu, 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--real-root", type=Path, default=REAL_DATA)
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    from knockoff.cli.evaluate import size_to_arguments
    from knockoff.evaluate.realsets import RealDataMissingError, make_copy_set, make_grocery_set
    from knockoff.evaluate.synthetic import make_labeled_set

    gate = Policy().packaging.second_look_min_matches
    makers = {
        "grocery-val": lambda d: make_grocery_set(d, args.real_root, seed=0),
        "grocery-train-150": lambda d: make_grocery_set(d, args.real_root, split="train", max_listings=150, seed=0),
        "synthetic-hard": lambda d: make_labeled_set(d, seed=1, difficulty="hard",
                                                     **size_to_arguments(27 if args.quick else 120)),
        "synthetic-demo": lambda d: make_labeled_set(d, seed=0),
        "real-copies": lambda d: make_copy_set(d, args.real_root, ("threatexchange-pdq", "jenssegers-imagehash",
                                                                   "imagededup")),
    }
    if args.quick:
        makers = {k: makers[k] for k in ("grocery-val", "synthetic-hard")}
    load = [os.getloadavg()[0]]
    tables: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="wt-pack-replay-") as tmp:
        for name, make in makers.items():
            try:
                make(Path(tmp) / name)
            except RealDataMissingError as error:
                print(f"{name} skipped: {error}", file=sys.stderr)
                continue
            rows, brand_of = pairs_of(Path(tmp) / name)
            tables[name] = summarise(rows, brand_of, gate)
            load.append(os.getloadavg()[0])
            print(f"{name} done, load {load[-1]:.1f}", file=sys.stderr)
    parts = []
    for name, table in tables.items():
        headers = list(dict.fromkeys(k for row in table for k in row))
        rows_ = [[row.get(h, 0) for h in headers] for row in table]
        print(name + "\n" + text_table(headers, rows_))
        parts.append(f"### {name}\n\n" + markdown_table(headers, rows_))
    markdown = ("Packaging decisions replayed per listing with each way of running the second, enlarged match "
                "(see the script's docstring); CPU s: the matching of every candidate pair. 1-minute load average "
                f"at the start and after each set: {', '.join(f'{x:.1f}' for x in load)}.\n\n" + "\n\n".join(parts))
    write_results(args.name or ("packaging_replay.quick" if args.quick else "packaging_replay"),
                  {"quick": args.quick, "gate": gate, "load_average": load, "sets": tables}, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
