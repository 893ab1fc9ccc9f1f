"""The cost of the packaging match: the full check with ``packaging_match`` on against the same check with it off,
in one run, interleaved listing by listing, on the labeled sets of ``bench_quality.py`` and a labeled mix.

    python benchmarks/bench_packaging_cost.py --quick            # small sets (~2-4 min on 2 shared cores)
    python benchmarks/bench_packaging_cost.py                    # bench_quality's full sets
    python benchmarks/bench_packaging_cost.py --quick --profile  # also cProfile each side (top functions)

Each set gets one index (perceptual engine) and two Detectors on it: ``Policy(packaging_match=False)`` and
``Policy(packaging_match=True)`` (every other setting the default). Each listing is checked by both, the order
alternating per listing so that machine load falls on both alike. Reported per set and over all sets: the
throughput ratio on / off (wall and this process's CPU time; the target for turning the match on by default is
>= 0.8), and the quality of each side: right product (counterfeit and genuine listings matched to their own
product), brand only (matched to their brand, no product named), sibling (another product of the right brand),
wrong brand, unrelated listings matched, suspects. Sets:

- synthetic-demo: ``make_labeled_set(seed=0)`` (the demo's set: edited copies, genuine copies, unrelated);
- synthetic-hard: ``make-set --size 27|120 --seed 1 --difficulty hard`` (look-alike products, new photos);
- real-copies: copy groups of the real image sets in ``shared/data/real``;
- real-grocery: Grocery Store val shelf photos (a sample of 30 with ``--quick``; ``--grocery-split train``: a sample
  of 100 train photos) against the iconic photos;
- labeled-mix: ``make_labeled_set(n_brands=3, listings_per_product=2, n_unrelated=4, seed=0)`` (bench_text_check's).

Results: benchmarks/results/<name>.{json,md} (default packaging_cost(.quick)), with the 1-minute load average.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import REAL_DATA, markdown_table, text_table, write_results

from knockoff import Catalog, Detector, build_index
from knockoff.catalog.readers import read_listings
from knockoff.decide.policy import Policy
from knockoff.evaluate.metrics import outcome_of

SIDES = ("off", "on")


def build_sets(workdir: Path, quick: bool, real_root: Path, only: set[str] | None,
               grocery_split: str = "val") -> list[tuple[str, Path]]:
    """The labeled sets to measure on (those whose data is missing are left out, with a line on stderr)."""
    from knockoff.cli.evaluate import size_to_arguments
    from knockoff.evaluate.realsets import RealDataMissingError, make_copy_set, make_grocery_set
    from knockoff.evaluate.synthetic import make_labeled_set

    makers: dict[str, Callable[[Path], Any]] = {
        "synthetic-demo": lambda d: make_labeled_set(d, seed=0),
        "synthetic-hard": lambda d: make_labeled_set(d, seed=1, difficulty="hard",
                                                     **size_to_arguments(27 if quick else 120)),
        "real-copies": lambda d: make_copy_set(d, real_root, ("threatexchange-pdq", "jenssegers-imagehash",
                                                              "imagededup")),
        "real-grocery": lambda d: make_grocery_set(d, real_root, split=grocery_split,
                                                   max_listings=30 if quick else 100 if grocery_split == "train" else None,
                                                   seed=0),
        "labeled-mix": lambda d: make_labeled_set(d, n_brands=3, listings_per_product=2, n_unrelated=4, seed=0),
    }
    sets = []
    for name, make in makers.items():
        if only and name not in only:
            continue
        try:
            make(workdir / name)
            sets.append((name, workdir / name))
        except RealDataMissingError as error:
            print(f"{name} skipped: {error}", file=sys.stderr)
    return sets


def _quality(rows: list[tuple[Any, Any]], brand_of: dict[str, str]) -> dict[str, int]:
    """Counts of one side's outcomes (see the module's docstring)."""
    out = {"right_product": 0, "brand_only": 0, "sibling": 0, "wrong_brand": 0, "unrelated_matched": 0,
           "suspects": 0, "known": 0, "unrelated": 0}
    for item, verdict in rows:
        outcome = outcome_of(item, verdict)
        out["suspects"] += verdict.verdict == "suspect"
        if item.label == "unrelated":
            out["unrelated"] += 1
            out["unrelated_matched"] += outcome.matched
            continue
        out["known"] += 1
        if not outcome.matched or verdict.match is None:
            continue
        same_brand = verdict.match.brand.casefold() == brand_of.get(item.product_id or "", "").casefold()
        if outcome.right_product:
            out["right_product"] += 1
        elif not same_brand:
            out["wrong_brand"] += 1
        elif verdict.match.product_id:
            out["sibling"] += 1
        else:
            out["brand_only"] += 1
    return out


def measure(root: Path, profiles: dict[str, cProfile.Profile] | None,
            min_product_detail: float | None = None) -> dict[str, Any]:
    """Check every listing of the set at ``root`` with the packaging match off and on, interleaved (on: with
    ``packaging.min_product_detail`` when given)."""
    catalog = Catalog.from_dir(root)
    brand_of = {r.product_id: r.brand for r in catalog.references}
    index = build_index(catalog, "perceptual")
    on = Policy(packaging_match=True)
    if min_product_detail is not None:
        on = replace(on, packaging=replace(on.packaging, min_product_detail=min_product_detail))
    detectors = {"off": Detector(index, policy=Policy(packaging_match=False)), "on": Detector(index, policy=on)}
    items = read_listings(root / "listings.csv")
    for detector in detectors.values():  # warm up: the verifier and the keypoint shortlist are made on first use
        detector.check(items[0].listing)
    seconds = dict.fromkeys(SIDES, 0.0)
    cpu = dict.fromkeys(SIDES, 0.0)
    rows: dict[str, list[tuple[Any, Any]]] = {side: [] for side in SIDES}
    for n, item in enumerate(items):
        for side in SIDES if n % 2 == 0 else SIDES[::-1]:
            profile = profiles[side] if profiles else None
            start, start_cpu = time.perf_counter(), time.process_time()
            if profile is not None:
                profile.enable()
            verdict = detectors[side].check(item.listing)
            if profile is not None:
                profile.disable()
            seconds[side] += time.perf_counter() - start
            cpu[side] += time.process_time() - start_cpu
            rows[side].append((item, verdict))
    changed = sum(a.verdict != b.verdict or (a.match and a.match.product_id) != (b.match and b.match.product_id)
                  for (_, a), (_, b) in zip(rows["off"], rows["on"]))
    return {"listings": len(items), "seconds": seconds, "cpu": cpu, "changed": changed,
            "quality": {side: _quality(rows[side], brand_of) for side in SIDES}}


def summary_row(name: str, result: dict[str, Any]) -> list[Any]:
    s, c, q = result["seconds"], result["cpu"], result["quality"]
    n = result["listings"]

    def pair(key: str) -> str:
        return f"{q['off'][key]} / {q['on'][key]}"

    return [name, n, round(n / s["off"], 2) if s["off"] else None, round(n / s["on"], 2) if s["on"] else None,
            round(s["off"] / s["on"], 3) if s["on"] else None, round(c["off"] / c["on"], 3) if c["on"] else None,
            f"{pair('right_product')} of {q['off']['known']}", pair("brand_only"), pair("sibling"),
            pair("wrong_brand"), f"{pair('unrelated_matched')} of {q['off']['unrelated']}", pair("suspects"),
            result["changed"]]


HEADERS = ["set", "listings", "listings/s off", "listings/s on", "ratio on/off (wall)", "ratio (CPU)",
           "right product off / on", "brand only", "sibling", "wrong brand", "unrelated matched", "suspects",
           "verdicts changed"]


def _profile_text(profile: cProfile.Profile, top: int) -> str:
    stream = io.StringIO()
    pstats.Stats(profile, stream=stream).sort_stats("tottime").print_stats(top)
    return stream.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets")
    parser.add_argument("--real-root", type=Path, default=REAL_DATA)
    parser.add_argument("--sets", default="", help="comma-separated set names (default: all)")
    parser.add_argument("--grocery-split", choices=("val", "train"), default="val",
                        help="real-grocery's store photos: val (100), or a sample of 100 train photos (development "
                             "runs that leave val held out)")
    parser.add_argument("--profile", action="store_true", help="cProfile each side and print its top functions")
    parser.add_argument("--profile-out", type=Path, default=None, help="with --profile: write each side's pstats here")
    parser.add_argument("--name", default=None, help="results file name (default packaging_cost[.quick])")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--min-product-detail", type=float, default=None, metavar="D",
                        help="packaging.min_product_detail of the 'on' side (default: the policy's; 0: no product rule)")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    only = {s.strip() for s in args.sets.split(",") if s.strip()} or None
    profiles = {side: cProfile.Profile() for side in SIDES} if args.profile else None
    load = [os.getloadavg()[0]]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wt-pack-bench-") as tmp:
        for name, root in build_sets(Path(tmp), args.quick, args.real_root, only, args.grocery_split):
            results[name] = measure(root, profiles, args.min_product_detail)
            load.append(os.getloadavg()[0])
            print(f"{name}: {summary_row(name, results[name])} load {load[-1]:.1f}", file=sys.stderr)
    total = {"listings": sum(r["listings"] for r in results.values()),
             "seconds": {side: sum(r["seconds"][side] for r in results.values()) for side in SIDES},
             "cpu": {side: sum(r["cpu"][side] for r in results.values()) for side in SIDES},
             "changed": sum(r["changed"] for r in results.values()),
             "quality": {side: {k: sum(r["quality"][side][k] for r in results.values())
                                for k in next(iter(results.values()))["quality"][side]} for side in SIDES}}
    table = [summary_row(name, r) for name, r in results.items()] + [summary_row("all sets", total)]
    print(text_table(HEADERS, table))
    if profiles:
        for side in SIDES:
            print(f"\n--- cProfile, packaging {side} (by own time) ---\n{_profile_text(profiles[side], 30)}")
            if args.profile_out:
                args.profile_out.mkdir(parents=True, exist_ok=True)
                profiles[side].dump_stats(args.profile_out / f"{side}.pstats")
    markdown = (
        "Full `Detector.check` with `packaging_match` off and on (same index per set, the order alternating per "
        "listing); ratio = listings/s on / off (wall) and CPU seconds off / on (this process); quality counts "
        "off / on. 1-minute load average at the start and after each set: "
        f"{', '.join(f'{x:.1f}' for x in load)} (2 CPUs shared with other work)"
        f"{'; cProfile on (slows both sides)' if args.profile else ''}.\n\n" + markdown_table(HEADERS, table))
    if not args.no_write:
        name = args.name or ("packaging_cost.quick" if args.quick else "packaging_cost")
        paths = write_results(name, {"quick": args.quick, "load_average": load, "sets": results, "all": total}, markdown)
        print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
