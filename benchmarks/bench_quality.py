"""Quality benchmark: knockoff beside hash baselines measured in the same run, on synthetic and real labeled sets.

    python benchmarks/bench_quality.py --quick     # about a minute: small sets
    python benchmarks/bench_quality.py             # a few minutes: the full sets
    python benchmarks/bench_quality.py --packaging # also each engine with Policy(packaging_match=True)

Without ``--packaging`` each engine runs with the packaging match off (``Policy(packaging_match=False)``; it is
on by default).

For each set and each knockoff engine (perceptual; clip only when its weights are on this machine), it runs
``knockoff.evaluate.metrics.evaluate_set`` (the real scan pipeline) and reports the suspect precision / recall / F1 and
ROC-AUC of the risk score. Beside it, the *visual matching* of every method, knockoff included, on the same
listings: "right product" is the share of counterfeit and genuine listings matched to their true product,
"false matches" the share of unrelated listings matched to any product.

The baselines (imagehash pHash and dHash, PDQ when pdqhash is installed) match a listing to the reference with
the smallest Hamming distance when it is within a threshold, at two operating points, the same rule for each:
``std``, the threshold commonly used (10 of 64 bits for pHash/dHash, imagededup's default; 31 of 256 for PDQ,
ThreatExchange's), and ``tuned``, the largest threshold with no false match on this set's unrelated listings
(chosen on the very listings it is measured on: optimistic for the baselines). knockoff runs its default policy.

Results: printed, and written to benchmarks/results/quality(.quick).{json,md} with the machine, versions, date.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from common import (
    REAL_DATA,
    STANDARD_THRESHOLDS,
    Stopwatch,
    hamming,
    hash_baselines,
    markdown_table,
    text_table,
    write_results,
)


def build_sets(workdir: Path, quick: bool, real_root: Path) -> list[tuple[str, Path, str]]:
    from knockoff.cli.evaluate import size_to_arguments
    from knockoff.evaluate.synthetic import make_labeled_set
    from knockoff.evaluate.realsets import RealDataMissingError, make_copy_set, make_grocery_set

    sets = []
    make_labeled_set(workdir / "synthetic-demo", seed=0)
    sets.append(("synthetic-demo", workdir / "synthetic-demo", "make_labeled_set(seed=0), the demo's set"))
    hard_size = 27 if quick else 120
    make_labeled_set(workdir / "synthetic-hard", seed=1, difficulty="hard", **size_to_arguments(hard_size))
    sets.append(("synthetic-hard", workdir / "synthetic-hard", f"make-set --size {hard_size} --seed 1 --difficulty hard"))
    sources = ("jenssegers-imagehash", "imagededup") if quick else ("threatexchange-pdq", "jenssegers-imagehash", "imagededup")
    try:
        make_copy_set(workdir / "real-copies", real_root, sources)
        sets.append(("real-copies", workdir / "real-copies", "copy groups of " + ", ".join(sources)))
    except RealDataMissingError as error:
        print(f"real copy set skipped: {error}", file=sys.stderr)
    try:
        n = 20 if quick else None
        make_grocery_set(workdir / "real-grocery", real_root, max_listings=n, seed=0)
        sets.append(("real-grocery", workdir / "real-grocery",
                     f"Grocery Store val photos{f' (sample of {n})' if n else ''} vs iconic images"))
    except RealDataMissingError as error:
        print(f"real grocery set skipped: {error}", file=sys.stderr)
    return sets


def knockoff_engines() -> list[str]:
    from knockoff.embedders.clip import default_weights_available

    engines = ["perceptual"]
    if default_weights_available():
        engines.append("clip")
    else:
        print("clip engine skipped: its weights are not on this machine (see weights/README.md)", file=sys.stderr)
    return engines


def _visual(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Right-product rate over counterfeit+genuine, false-match rate over unrelated, right-product rate per kind."""
    known = [r for r in rows if r["label"] != "unrelated"]
    unrelated = [r for r in rows if r["label"] == "unrelated"]
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for r in known:
        by_kind[f"{r['kind']} ({r['label']})"].append(r["right"])
    return {
        "right_product": float(np.mean([r["right"] for r in known])) if known else None,
        "false_matches": float(np.mean([r["matched"] for r in unrelated])) if unrelated else None,
        "n_known": len(known), "n_unrelated": len(unrelated),
        "by_kind": {k: float(np.mean(v)) for k, v in sorted(by_kind.items())},
        "kind_n": {k: len(v) for k, v in sorted(by_kind.items())},
    }


def run_baseline(set_dir: Path, name: str, fn) -> dict[str, Any]:
    from knockoff.catalog.readers import Catalog, read_listings
    from knockoff.errors import ImageError
    from knockoff.catalog.images import load_image

    watch = Stopwatch()
    catalog = Catalog.from_dir(set_dir)
    refs = catalog.references
    ref_bits = np.stack([fn(load_image(r.image)) for r in refs])
    items = read_listings(set_dir / "listings.csv")
    bits, keep = [], []
    for item in items:
        try:
            bits.append(fn(load_image(item.listing.images[0])))
            keep.append(item)
        except ImageError:
            bits.append(None)
            keep.append(item)
    dist_rows = []
    for item, b in zip(keep, bits):
        if b is None:
            dist_rows.append((item, None, None))
            continue
        d = hamming(b[None, :], ref_bits)[0]
        j = int(np.argmin(d))
        dist_rows.append((item, int(d[j]), refs[j].product_id))
    seconds = watch.seconds
    unrelated_d = [d for item, d, _ in dist_rows if item.label == "unrelated" and d is not None]
    std = STANDARD_THRESHOLDS[name]
    tuned = (min(unrelated_d) - 1) if unrelated_d else std
    out = {"seconds": round(seconds, 3), "thresholds": {"std": std, "tuned": tuned}, "bits": int(ref_bits.shape[1])}
    for point, t in (("std", std), ("tuned", tuned)):
        rows = []
        for item, d, product in dist_rows:
            matched = d is not None and d <= t
            rows.append({"label": item.label, "kind": item.kind, "matched": matched,
                         "right": matched and product == item.product_id})
        out[point] = _visual(rows)
    return out


def run_knockoff(set_dir: Path, engine: str, packaging: bool = False) -> dict[str, Any]:
    from knockoff.evaluate.metrics import evaluate_set
    from knockoff.decide.policy import Policy

    # explicit either way: the packaging match is on by default since issue 14's eighth round
    report = evaluate_set(set_dir, engine, policy=Policy(packaging_match=packaging))
    rows = [{"label": o.label, "kind": o.kind, "matched": o.matched, "right": o.right_product}
            for o in report.outcomes]
    data = report.to_dict()
    data.pop("outcomes")
    data.pop("policy")
    return {"engine": report.engine, "report": data, "visual": _visual(rows), "seconds": report.scan_seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sets, about a minute")
    parser.add_argument("--real-root", type=Path, default=REAL_DATA, help=f"real data folder (default {REAL_DATA})")
    parser.add_argument("--results-dir", type=Path, help="where to write JSON and Markdown (default benchmarks/results)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--packaging", action="store_true",
                        help="also run each engine with Policy(packaging_match=True) (the same-packaging match, "
                             "on by default; without this flag each engine runs with it off)")
    parser.add_argument("--name", default=None, help="results file name (default quality, or quality.quick)")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    baselines = hash_baselines()
    engines = knockoff_engines()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="knockoff-bench-") as tmp:
        for set_name, set_dir, note in build_sets(Path(tmp), args.quick, args.real_root):
            entry: dict[str, Any] = {"note": note, "methods": {}}
            for engine in engines:
                for packaging in (False, True) if args.packaging else (False,):
                    method = f"knockoff-{engine}" + (" + packaging" if packaging else "")
                    try:
                        entry["methods"][method] = run_knockoff(set_dir, engine, packaging)
                    except Exception as error:  # noqa: BLE001 - a failed case is recorded, the sweep goes on
                        entry["methods"][method] = {"error": f"{type(error).__name__}: {error}"}
            for name, fn in baselines.items():
                try:
                    entry["methods"][name] = run_baseline(set_dir, name, fn)
                except Exception as error:  # noqa: BLE001
                    entry["methods"][name] = {"error": f"{type(error).__name__}: {error}"}
            results[set_name] = entry
            print(f"[{time.perf_counter() - started:5.0f} s] {set_name} done", file=sys.stderr)

    summary_headers = ["set", "method", "right product", "false matches (unrelated)", "suspect P", "suspect R",
                       "F1", "ROC-AUC", "listings/s"]
    summary_rows, md_parts, text_parts = [], [], []
    for set_name, entry in results.items():
        for method, m in entry["methods"].items():
            if "error" in m:
                summary_rows.append([set_name, method, m["error"], "", "", "", "", "", ""])
            elif method.startswith("knockoff"):
                r, v = m["report"], m["visual"]
                summary_rows.append([set_name, method, v["right_product"], v["false_matches"], r["precision"],
                                     r["recall"], r["f1"], r["roc_auc"], r["listings_per_second"]])
            else:
                for point in ("std", "tuned"):
                    v = m[point]
                    summary_rows.append([set_name, f"{method} ({point} <= {m['thresholds'][point]})",
                                         v["right_product"], v["false_matches"], "", "", "", "", ""])
    md_parts.append("### Visual matching and detection, per set\n\n" + markdown_table(summary_headers, summary_rows))
    text_parts.append(text_table(summary_headers, summary_rows))
    for set_name, entry in results.items():
        methods = {k: m for k, m in entry["methods"].items() if "error" not in m}
        if not methods:
            continue
        first = next(iter(methods.values()))
        visual0 = first["visual"] if "visual" in first else first["std"]
        headers = ["kind", "n"] + [k if k.startswith("knockoff") else f"{k} std/tuned" for k in methods]
        rows = []
        for kind, n in visual0["kind_n"].items():
            row: list[Any] = [kind, n]
            for k, m in methods.items():
                if "visual" in m:
                    row.append(m["visual"]["by_kind"].get(kind))
                else:
                    row.append(f"{m['std']['by_kind'].get(kind, 0):.2f}/{m['tuned']['by_kind'].get(kind, 0):.2f}")
            rows.append(row)
        title = f"{set_name}: share matched to the right product, per kind ({entry['note']})"
        md_parts.append(f"### {title}\n\n" + markdown_table(headers, rows))
        text_parts.append(title + "\n" + text_table(headers, rows))
    notes = (
        "right product: counterfeit+genuine listings matched to their true product; false matches: unrelated "
        "listings matched to any product. knockoff: default policy. Baselines: nearest reference by Hamming "
        "distance, std = the usual threshold, tuned = largest threshold without a false match on this set's "
        "unrelated listings (optimistic for them). clip runs only where its weights are present."
    )
    print("\n\n".join(text_parts))
    print("\n" + notes)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if not args.no_write:
        command = ("python benchmarks/bench_quality.py" + (" --quick" if args.quick else "")
                   + (" --packaging" if args.packaging else "") + (f" --name {args.name}" if args.name else ""))
        name = args.name or ("quality.quick" if args.quick else "quality")
        paths = write_results(name, {"script": "bench_quality.py", "command": command, "quick": args.quick,
                                     "engines": engines, "baselines": list(baselines), "sets": results},
                              "\n\n".join(md_parts) + "\n\n" + notes, args.results_dir)
        print("wrote " + " and ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
