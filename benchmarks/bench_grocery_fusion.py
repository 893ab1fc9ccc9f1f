"""grocerystore in-store photos: which brand and product the detector names, per policy, all in one run.

    python benchmarks/bench_grocery_fusion.py --quick   # 40 val photos, 30 unrelated photos
    python benchmarks/bench_grocery_fusion.py           # every val photo (100), 150 train photos, 100 unrelated

The 31 packaged products' official ("iconic") photos are the references (brand "God Morgon" for the dataset's
"God"), indexed by the perceptual engine with their text read (``build_index(read_text=True)``); each in-store
photo is one listing (no title, no price, a seller no brand authorizes). Four policies, the same photos:

- ``default``: ``Policy()`` as it is (text reading and the packaging match on: ``both`` since issue 14's eighth round);
- ``packaging``: ``packaging_match`` on, text off;
- ``text``: ``text.enabled`` on, the packaging match off;
- ``both``: both on.

Per policy: right brand (the match, of any tier, names the photo's brand), right product, wrong brand, sibling
product (right brand, another of its products), brand only (right brand, no product named); and unrelated photos
(the other folders of shared/data/real: no grocery brand; the dataset's produce photos are not in shared/)
given a brand. Figures per split: ``val`` is held out; of ``train``, 120 photos set the packaging thresholds.

Beside it, the evidence each photo gives on its own (the confusion table): the brand the text names
(``TextMatcher.identify``: right / wrong / none), the product its words pick (right / sibling / none) and the
product the packaging match picks (the ``packaging`` column).

The text read from a photo is cached (``--cache``, keyed on the decoded photo's pixels and the read settings):
reading is deterministic, and the cache lets the four policies and later runs share one reading per photo.
Results: benchmarks/results/grocery_fusion(.quick).{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from common import REAL_DATA, markdown_table, text_table, write_results

from knockoff.catalog.readers import Catalog, Listing
from knockoff.decide import text_evidence
from knockoff.decide.detector import Detector
from knockoff.decide.policy import Policy, TextSettings
from knockoff.decide.text_evidence import TextMatcher
from knockoff.match.index import build_index
from knockoff.match.text import PhotoText

GROCERY = "grocerystore"
BRAND_NAMES = {"God": "God Morgon"}  # the dataset's brand column keeps only the first word
UNRELATED_FOLDERS = ("imagededup", "jenssegers-imagehash", "threatexchange-pdq")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
POLICIES = {
    "default": Policy(),
    "packaging": Policy(packaging_match=True, text=TextSettings(enabled=False)),
    "text": Policy(packaging_match=False, text=TextSettings(enabled=True)),
    "both": Policy(packaging_match=True, text=TextSettings(enabled=True)),
}


# -- the photos' text, read once ---------------------------------------------------------------------------


class TextCache:
    """``read_text`` (the one each listing photo is read by) memoised on the photo's pixels and the read
    settings, kept in a JSON file."""

    def __init__(self, path: Path | None):
        self.path = path
        self.data: dict[str, Any] = {}
        if path is not None and path.is_file():
            self.data = json.loads(path.read_text(encoding="utf-8"))
        self.hits = self.misses = 0
        self._read = text_evidence.read_text

    def install(self) -> None:
        text_evidence.read_text = self.read_text  # type: ignore[assignment]

    def read_text(self, image: Any, settings: Any = None) -> PhotoText:
        key = hashlib.sha1(image.tobytes() + repr((image.size, image.mode, settings)).encode()).hexdigest()
        if key in self.data:
            self.hits += 1
        else:
            self.misses += 1
            self.data[key] = self._read(image, settings).to_dict()
        return PhotoText.from_dict(self.data[key])

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data), encoding="utf-8")


# -- the set -----------------------------------------------------------------------------------------------


def _rows(data: Path) -> list[dict[str, str]]:
    with open(data / GROCERY / "groundtruth_packages.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["brand"] = BRAND_NAMES.get(row["brand"], row["brand"])
    return rows


def write_catalog(data: Path, folder: Path) -> Path:
    """brands.csv and references.csv of the 31 iconic photos, hard-linked (else copied) into ``folder``."""
    import os
    import shutil

    products: dict[str, tuple[str, str]] = {}
    for row in _rows(data):
        products.setdefault(row["product"], (row["brand"], row["iconic_reference_image"]))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    refs = []
    for product, (brand, iconic) in sorted(products.items()):
        target = folder / "images" / Path(iconic).name
        if not target.exists():
            try:
                os.link(data / GROCERY / iconic, target)
            except OSError:
                shutil.copy2(data / GROCERY / iconic, target)
        refs.append((brand, product, product.replace("-", " "), f"images/{target.name}"))
    with open(folder / "brands.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["brand", "aliases", "authorized_sellers"])
        writer.writerows([(b, "", "official-store") for b in sorted({r[0] for r in refs})])
    with open(folder / "references.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["brand", "product_id", "product_name", "image", "price", "currency"])
        writer.writerows([(*r, "", "") for r in refs])
    return folder


def store_photos(data: Path, quick: bool, seed: int, n_train: int, n_val: int | None = None) -> list[dict[str, str]]:
    """val photos (40 in --quick; ``n_val`` of them, a seeded sample, when given: 0 for a train-only run that
    leaves val held out), then a sample of train photos (none in --quick)."""
    rows = _rows(data)
    rng = np.random.default_rng(seed)
    val = [r for r in rows if r["split"] == "val"]
    train = [r for r in rows if r["split"] == "train"]
    if quick:
        val = [val[int(i)] for i in np.sort(rng.choice(len(val), 40, replace=False))]
        train = []
    elif n_train < len(train):
        train = [train[int(i)] for i in np.sort(rng.choice(len(train), n_train, replace=False))]
    if n_val is not None and n_val < len(val):
        val = [val[int(i)] for i in np.sort(np.random.default_rng(seed + 1).choice(len(val), n_val, replace=False))]
    return val + train


def unrelated_photos(data: Path, n: int, seed: int) -> list[Path]:
    paths = sorted(p for folder in UNRELATED_FOLDERS if (data / folder).is_dir()
                   for p in (data / folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if n < len(paths):
        paths = [paths[int(i)] for i in np.sort(np.random.default_rng(seed).choice(len(paths), n, replace=False))]
    return paths


# -- outcomes ----------------------------------------------------------------------------------------------


def product_brand(products: dict[str, str], product: str | None) -> str | None:
    return products.get(product) if product else None


def outcome(match: Any, truth_brand: str | None, truth_product: str | None) -> str:
    """right / brand-only / sibling / wrong-brand / none (for an unrelated photo: none or given-a-brand)."""
    if match is None or match.tier is None:
        return "none"
    if truth_brand is None:
        return "given-a-brand"
    if match.brand != truth_brand:
        return "wrong-brand"
    if not match.product_id:
        return "brand-only"
    return "right" if match.product_id == truth_product else "sibling"


def evidence_of(matcher: TextMatcher, detector: Detector, listing: Listing, brand_of: dict[str, str],
                truth_brand: str, truth_product: str) -> dict[str, Any]:
    """What the photo's text alone says: the brand ``identify`` names and the product its words pick."""
    loaded = detector.load(listing)
    evidence = matcher.read(loaded.images, loaded.paths)
    identity = matcher.identify(evidence)
    brand = identity.brand.name if identity else None
    product = None
    if identity is not None and identity.product:
        product = json.loads(identity.product)[1]
    text_brand = "none" if brand is None else "right" if brand == truth_brand else "wrong"
    words = "none" if product is None else "right" if product == truth_product else (
        "sibling" if brand_of.get(product) == truth_brand else "wrong-brand")
    read = [box.text for t in evidence.texts for box in t.boxes]
    return {"text_brand": text_brand, "text_brand_name": brand, "words_product": words, "words_pick": product,
            "words": list(identity.words) if identity else [], "read": read}


def product_evidence(name: str, verdict: Any) -> dict[str, Any]:
    """The matched official photo, the small print its match reproduces and why no product was named (the
    packaging match's product rule), per policy: to replay ``packaging.min_product_detail`` from the rows."""
    match = verdict.match
    if match is None or not match.tier:
        return {}
    visual = verdict.signal("VISUAL_MATCH")
    return {name + "_reference": match.reference_label,
            name + "_detail": (match.verification or {}).get("detail_agreement"),
            name + "_unproven": visual.details.get("unproven") if visual is not None else None}


def check_all(detectors: dict[str, Detector], matcher: TextMatcher, photos: list[dict[str, str]],
              unrelated: list[Path], data: Path, brand_of: dict[str, str], cache: TextCache) -> tuple[list, list]:
    store_out, unrelated_out = [], []
    started = time.perf_counter()
    for number, row in enumerate(photos):
        listing = Listing(images=(data / GROCERY / row["path"],), seller="shop-nobody", listing_id=row["path"])
        entry: dict[str, Any] = {"path": row["path"], "split": row["split"], "brand": row["brand"],
                                 "product": row["product"]}
        for name, detector in detectors.items():
            verdict = detector.check(listing)
            entry[name] = outcome(verdict.match, row["brand"], row["product"])
            entry[name + "_pick"] = (f"{verdict.match.brand}/{verdict.match.product_id} ({verdict.match.tier})"
                                     if verdict.match is not None and verdict.match.tier else None)
            entry.update(product_evidence(name, verdict))
        entry.update(evidence_of(matcher, detectors["both"], listing, brand_of, row["brand"], row["product"]))
        store_out.append(entry)
        if number % 10 == 9:
            cache.save()
            print(f"[{time.perf_counter() - started:6.0f} s] {number + 1}/{len(photos)} store photos", file=sys.stderr)
    for path in unrelated:
        listing = Listing(images=(path,), seller="shop-nobody", listing_id=str(path))
        entry = {"path": str(path.relative_to(data))}
        for name, detector in detectors.items():
            verdict = detector.check(listing)
            entry[name] = outcome(verdict.match, None, None)
            entry[name + "_pick"] = (f"{verdict.match.brand}/{verdict.match.product_id} ({verdict.match.tier})"
                                     if verdict.match is not None and verdict.match.tier else None)
        unrelated_out.append(entry)
    cache.save()
    return store_out, unrelated_out


# -- summary -----------------------------------------------------------------------------------------------


def rates(rows: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    counts = Counter(r[policy] for r in rows)
    n = len(rows)
    brand = counts["right"] + counts["sibling"] + counts["brand-only"]
    share = (lambda k: round(k / n, 3) if n else None)  # noqa: E731
    return {"n": n, "right brand": share(brand), "right product": share(counts["right"]),
            "wrong brand": counts["wrong-brand"], "sibling product": share(counts["sibling"]),
            "sibling n": counts["sibling"], "brand only": counts["brand-only"], "none": counts["none"]}


def summarise(store: list[dict[str, Any]], unrelated: list[dict[str, Any]], policies: list[str]) -> dict[str, Any]:
    splits = {"val": [r for r in store if r["split"] == "val"], "train": [r for r in store if r["split"] == "train"],
              "all": store}
    out: dict[str, Any] = {"per policy": {}}
    for policy in policies:
        out["per policy"][policy] = {s: rates(rows, policy) for s, rows in splits.items() if rows}
        given = sum(1 for r in unrelated if r[policy] == "given-a-brand")
        out["per policy"][policy]["unrelated given a brand"] = (given, len(unrelated))
    out["confusion"] = {s: dict(Counter(f"text brand {r['text_brand']} | words {r['words_product']} | packaging "
                                        f"{r.get('packaging', '?')} | both {r.get('both', '?')}" for r in rows))
                        for s, rows in splits.items() if rows}
    out["text brand x packaging"] = {
        s: {f"{tb}": dict(Counter(r.get("packaging", "?") for r in rows if r["text_brand"] == tb))
            for tb in ("right", "wrong", "none")} for s, rows in splits.items() if rows}
    return out


def tables(summary: dict[str, Any], policies: list[str]) -> tuple[list[str], list[list[Any]], list[list[Any]]]:
    headers = ["policy", "split", "photos", "right brand", "right product", "wrong brand", "sibling product",
               "brand only", "none", "unrelated given a brand"]
    rows = []
    for policy in policies:
        entry = summary["per policy"][policy]
        given, total = entry["unrelated given a brand"]
        for split in ("val", "train", "all"):
            if split in entry:
                r = entry[split]
                rows.append([policy, split, r["n"], r["right brand"], r["right product"], r["wrong brand"],
                             f"{r['sibling product']} ({r['sibling n']})", r["brand only"], r["none"],
                             f"{given} / {total}"])
    confusion = []
    for split, table in summary["text brand x packaging"].items():
        for text_brand, counts in table.items():
            confusion.append([split, text_brand, *(counts.get(k, 0) for k in
                                                   ("right", "sibling", "brand-only", "wrong-brand", "none"))])
    return headers, rows, confusion


def evidence_rows(store: list[dict[str, Any]]) -> list[list[Any]]:
    """Per split: how many photos had each combination of evidence (the text's brand, the product its words
    single out, the packaging match's product) and what the fused ``both`` policy made of it."""
    counts = Counter((r["split"], r["text_brand"], r["words_product"], r.get("packaging", "?"), r["both"])
                     for r in store)
    return [[*k, n] for k, n in sorted(counts.items(), key=lambda kv: (kv[0][0] != "val", -kv[1], kv[0]))]


def report(args: argparse.Namespace, policies: list[str], store: list[dict[str, Any]],
           unrelated_rows: list[dict[str, Any]], notes: str) -> None:
    summary = summarise(store, unrelated_rows, policies)
    headers, rows, confusion = tables(summary, policies)
    conf_headers = ["split", "text names brand", "packaging: right", "sibling", "brand only", "wrong brand", "none"]
    ev_headers = ["split", "text's brand", "words' product", "packaging's product", "both on", "photos"]
    evidence = evidence_rows(store)
    print(text_table(headers, rows))
    print(text_table(conf_headers, confusion))
    print(text_table(ev_headers, evidence))
    print(notes)
    if args.no_write:
        return
    command = "python benchmarks/bench_grocery_fusion.py" + (" --quick" if args.quick else f" --train {args.train}") + (
        f" --val {args.val}" if args.val is not None else "") + (f" --policies {args.policies}" if args.policies != ",".join(POLICIES) else "") + (
        f" --min-product-detail {args.min_product_detail:g}" if args.min_product_detail is not None else "") + (
        f" --name {args.name}" if args.name else "")
    markdown = ("# grocerystore: brand and product per policy\n\n" + markdown_table(headers, rows)
                + "\n\n## Evidence per photo: the brand the text names x the packaging match's pick\n\n"
                + markdown_table(conf_headers, confusion)
                + "\n\n## Evidence per photo, each source alone, and the fused result (both on)\n\n"
                + markdown_table(ev_headers, evidence) + "\n\n" + notes + "\n")
    name = args.name or ("grocery_fusion.quick" if args.quick else "grocery_fusion")
    rows_path = Path(__file__).resolve().parent / "out" / f"{name}.rows.json"  # every photo (ignored folder)
    if args.rewrite is None:
        rows_path.parent.mkdir(parents=True, exist_ok=True)
        rows_path.write_text(json.dumps({"store": store, "unrelated": unrelated_rows, "notes": notes}, indent=1),
                             encoding="utf-8")
    misses = [{k: r.get(k) for k in ("path", "both", "both_pick", "text_brand_name", "words_pick")}
              for r in store if r["both"] in ("wrong-brand", "sibling")]
    given = [r for r in unrelated_rows if any(r[p] == "given-a-brand" for p in policies)]
    paths = write_results(name, {"script": "bench_grocery_fusion.py", "command": command, "summary": summary,
                                 "both: wrong brand or sibling": misses, "unrelated given a brand": given,
                                 "every photo": str(rows_path)}, markdown, args.results_dir)
    print("wrote " + " and ".join(str(p) for p in [*paths, rows_path]))


def with_min_product_detail(policy: Policy, minimum: float | None) -> Policy:
    """``policy`` with ``packaging.min_product_detail`` set (unchanged for None)."""
    if minimum is None:
        return policy
    return replace(policy, packaging=replace(policy.packaging, min_product_detail=minimum))


def run(args: argparse.Namespace, policies: list[str]) -> tuple[list, list, str]:
    cache = TextCache(args.cache)
    cache.install()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="knockoff-fusion-") as tmp:
        catalog = Catalog.from_dir(write_catalog(args.data, Path(tmp)))
        index = build_index(catalog, "perceptual", read_text=True)
        brand_of = {r.product_id: r.brand for r in catalog.references}
        detectors = {name: Detector(index, with_min_product_detail(POLICIES[name], args.min_product_detail))
                     for name in policies}
        matcher = TextMatcher(index.brands.values(), index.references, index.reference_texts, POLICIES["both"].text)
        photos = store_photos(args.data, args.quick, args.seed, args.train, args.val)
        unrelated = unrelated_photos(args.data, args.unrelated or (30 if args.quick else 100), args.seed)
        store, unrelated_rows = check_all(detectors, matcher, photos, unrelated, args.data, brand_of, cache)
    elapsed = time.perf_counter() - started
    notes = (f"{len(photos)} store photos ({dict(Counter(r['split'] for r in photos))}), {len(unrelated)} unrelated "
             f"photos, {elapsed:.0f} s (text cache: {cache.hits} hits, {cache.misses} read). Rates are shares of "
             "the split's store photos; wrong brand and unrelated given a brand are counts. val is held out; "
             "120 train photos set the packaging thresholds.")
    return store, unrelated_rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 val photos and 30 unrelated photos")
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--train", type=int, default=150, help="train photos in a full run (a seeded sample)")
    parser.add_argument("--val", type=int, default=None,
                        help="val photos (default all; 0: none, a development run on train that leaves val held out)")
    parser.add_argument("--unrelated", type=int, default=None, help="unrelated photos (30 quick, 100 full)")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of " + ",".join(POLICIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-product-detail", type=float, default=None, metavar="D",
                        help="Policy.packaging.min_product_detail for every policy (default: the policy's; 0: a "
                             "winning package always names its product, as before the rule)")
    parser.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / "out" / "grocery_text_cache.json")
    parser.add_argument("--results-dir", type=Path)
    parser.add_argument("--name", help="results file name (default grocery_fusion, or grocery_fusion.quick)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--rewrite", type=Path, help="only write the tables again from a run's every-photo file")
    args = parser.parse_args(argv)
    policies = [p for p in args.policies.split(",") if p]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or "both" not in policies:
        parser.error(f"unknown policies {unknown}" if unknown else "'both' is needed (the evidence is read with it)")
    if args.rewrite is not None:
        data = json.loads(args.rewrite.read_text(encoding="utf-8"))
        report(args, policies, data["store"], data["unrelated"], data.get("notes", ""))
        return 0
    if not (args.data / GROCERY / "groundtruth_packages.csv").is_file():
        print(f"no grocerystore data under {args.data}", file=sys.stderr)
        return 2
    report(args, policies, *run(args, policies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
