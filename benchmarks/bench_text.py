"""Reading brands printed in photos: the synthetic printed-brand set, grocerystore in-store photos, and speed.

    python benchmarks/bench_text.py --quick    # 300 printed cases, 40 grocery photos: a few minutes
    python benchmarks/bench_text.py --quick --parts speed --speed-photos 10 --det-sides 640   # speed only
    python benchmarks/bench_text.py            # 3,000 printed cases, 150 grocery photos (about an hour on 2
                                               # shared cores; --printed 1500 --det-sides 480,640 for ~25 min)

(a) Synthetic printed set (knockoff.evaluate.printed): misspelled brand flagged (MISSPELLED_BRAND_IN_PHOTO for
    the imitated brand), genuine spelling flagged as misspelled, unrelated text matched to a brand; once with
    the text as printed (the matching alone) and once with the text read by OCR.
(b) grocerystore (../shared/data/real/grocerystore): per in-store photo of a packaged product, the brand read
    right (the true brand's name or alias read exactly), wrong (another catalog brand named, not the true one),
    or none; misspellings reported on these genuine packages (all false); the product chosen by product words
    (reference texts read from the iconic photos + product names). Unrelated real photos (the other folders of
    shared/data/real: no packaged grocery brand) given a brand. The dataset's produce photos are not in
    shared/ (SOURCES.md), so produce is not measured here.
(c) Speed, photos/s and CPU seconds per photo, on 348-px shelf photos and on 1-2 MP photos, per onnxruntime
    thread count (--threads), with baselines in the same run: the same settings read through rapidocr.RapidOCR as
    knockoff did before it ran the models itself (RapidOcrPipeline; alternating rounds), and the perceptual global
    descriptor (knockoff's default engine) on the same photos.
Results: benchmarks/results/text(.quick).{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common import REAL_DATA, markdown_table, text_table, write_results

from knockoff.catalog.readers import Brand
from knockoff.decide.photo_text import BrandMention, TextMatchSettings, find_brand_mentions, read_brand_mentions
from knockoff.match.text_index import ProductTexts, words
from knockoff.evaluate.printed import PRINTED_BRANDS, available_fonts, printed_cases
from knockoff.match.text import PhotoText, TextBox, TextReadSettings, choose_boxes, read_text, reader_status

GROCERY = REAL_DATA / "grocerystore"
GROCERY_BRAND_NAMES = {"God": "God Morgon"}  # the dataset's brand column keeps only the first word
UNRELATED_FOLDERS = ("imagededup", "jenssegers-imagehash", "threatexchange-pdq")
_BOX = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))


def _load(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


# -- (a) synthetic printed set -----------------------------------------------------------------------------


def _printed_outcome(case, found: tuple[BrandMention, ...]) -> dict[str, Any]:
    own = [m for m in found if m.brand.casefold() == case.brand.casefold()]
    return {
        "kind": case.kind, "font": case.font, "angled": case.angle != 0.0,
        "misspelled_flag": any(m.how == "misspelled" for m in own),
        "misspelled_unconfirmed": any(m.how == "unconfirmed" for m in own),
        "any_misspelled": any(m.how == "misspelled" for m in found),
        "genuine_read": any(m.how in ("exact", "alias") for m in own),
        "any_brand": bool(found),
        "wrong_brand": any(m.brand.casefold() != case.brand.casefold() for m in found),
    }


def _printed_summary(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind = {k: [o for o in outcomes if o["kind"] == k] for k in sorted({o["kind"] for o in outcomes})}
    mis, gen, unr = (by_kind.get(k, []) for k in ("printed-misspelled", "printed-genuine", "printed-unrelated"))
    rate = lambda rows, key: (sum(o[key] for o in rows) / len(rows)) if rows else None  # noqa: E731
    return {
        "n": {k: len(v) for k, v in by_kind.items()},
        "misspelled_flagged": rate(mis, "misspelled_flag"),
        "misspelled_unconfirmed": rate(mis, "misspelled_unconfirmed"),
        "misspelled_read_as_genuine": rate(mis, "genuine_read"),
        "genuine_flagged_misspelled": sum(o["any_misspelled"] for o in gen),
        "genuine_read": rate(gen, "genuine_read"),
        "unrelated_given_a_brand": sum(o["any_brand"] for o in unr),
        "wrong_brand_named": sum(o["wrong_brand"] for o in outcomes),
        "misspelled_flagged_by_font": {f: rate([o for o in mis if o["font"] == f], "misspelled_flag")
                                       for f in sorted({o["font"] for o in mis})},
        "misspelled_flagged_angled": rate([o for o in mis if o["angled"]], "misspelled_flag"),
    }


def bench_printed(n: int, read: TextReadSettings) -> dict[str, Any]:
    brands = [Brand(b) for b in PRINTED_BRANDS]
    settings = TextMatchSettings()
    as_printed, as_read, misses = [], [], []
    started = time.perf_counter()
    for case in printed_cases(n, seed=0, image_size=320):
        lines = [t for t in (case.printed, *case.extra) if t]
        exact = PhotoText(tuple(TextBox(t, 1.0, _BOX) for t in lines), "as-printed")
        as_printed.append(_printed_outcome(case, find_brand_mentions([exact], brands, settings)))
        text = read_text(case.image, read)
        outcome = _printed_outcome(case, read_brand_mentions([case.image], [text], brands, read, settings))
        as_read.append(outcome)
        if case.kind == "printed-misspelled" and not outcome["misspelled_flag"] and len(misses) < 15:
            misses.append({"case": case.case_id, "brand": case.brand, "printed": case.printed, "font": case.font,
                           "angle": case.angle, "read": list(read_text(case.image, read).texts)})
    seconds = time.perf_counter() - started
    return {"n_cases": n, "fonts": list(available_fonts()), "as_printed": _printed_summary(as_printed),
            "ocr": _printed_summary(as_read), "ocr_photos_per_s": n / seconds, "missed_misspellings": misses}


# -- (b) grocerystore --------------------------------------------------------------------------------------


def _grocery_rows(n: int) -> list[dict[str, str]]:
    with open(GROCERY / "groundtruth_packages.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] in ("train", "val")]
    rows.sort(key=lambda r: r["path"])
    if n < len(rows):
        picks = np.random.default_rng(0).choice(len(rows), size=n, replace=False)
        rows = [rows[int(i)] for i in sorted(picks)]
    return rows


def _grocery_catalog(read: TextReadSettings) -> tuple[list[Brand], ProductTexts, dict[str, list[str]]]:
    """The brands, and every product's words: its name, its brand and the text read from its iconic photo."""
    with open(GROCERY / "groundtruth_packages.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    iconic = {r["product"]: (r["brand"], r["iconic_reference_image"]) for r in rows}
    texts: dict[str, list[str]] = {}
    for product, (brand, path) in sorted(iconic.items()):
        read_lines = list(read_text(_load(GROCERY / path), read).texts)
        texts[product] = [product.replace("-", " "), GROCERY_BRAND_NAMES.get(brand, brand), *read_lines]
    brands = sorted({GROCERY_BRAND_NAMES.get(b, b) for b, _ in iconic.values()})
    return [Brand(b) for b in brands], ProductTexts.build(texts), texts


def _grocery_outcome(row: dict[str, str], image: Image.Image, read: TextReadSettings, brands: list[Brand],
                     products: ProductTexts) -> dict[str, Any]:
    truth = GROCERY_BRAND_NAMES.get(row["brand"], row["brand"])
    text = read_text(image, read)
    found = read_brand_mentions([image], [text], brands, read)
    named = {m.brand for m in found if m.how in ("exact", "alias")}
    brand = "right" if truth in named else "wrong" if named else "none"
    best = products.match([text], top=1)
    return {"path": row["path"], "brand_truth": truth, "brand": brand, "named": sorted(named),
            "misspelled": [m.to_dict() for m in found if m.how == "misspelled"],
            "unconfirmed": [m.to_dict() for m in found if m.how == "unconfirmed"],
            "product": (best[0].product_id if best else None), "product_truth": row["product"],
            "product_words": list(best[0].words) if best else [], "read": list(text.texts)}


def _unrelated_photos() -> list[Path]:
    found = []
    for folder in UNRELATED_FOLDERS:
        for path in sorted((REAL_DATA / folder).rglob("*")):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") and path.stat().st_size > 2000:
                found.append(path)
    return found


def bench_grocery(n: int, read: TextReadSettings, with_unrelated: bool = True) -> dict[str, Any]:
    if not GROCERY.is_dir():
        return {"skipped": f"{GROCERY} not found"}
    brands, products, product_texts = _grocery_catalog(read)
    outcomes = [_grocery_outcome(r, _load(GROCERY / r["path"]), read, brands, products)
                for r in _grocery_rows(n)]
    counts = Counter(o["brand"] for o in outcomes)
    with_words = [o for o in outcomes if o["product"]]
    unrelated = []
    for path in _unrelated_photos() if with_unrelated else []:
        try:
            image = _load(path)
        except OSError as exc:
            unrelated.append({"path": str(path.relative_to(REAL_DATA)), "error": str(exc)})
            continue
        found = read_brand_mentions([image], [read_text(image, read)], brands, read)
        unrelated.append({"path": str(path.relative_to(REAL_DATA)), "brands": [m.to_dict() for m in found]})
    read_ok = [u for u in unrelated if "error" not in u]
    return {
        "n_photos": len(outcomes), "brand": dict(counts),
        "brand_right_rate": counts["right"] / len(outcomes), "brand_wrong": counts["wrong"],
        "misspelling_false_flags": sum(bool(o["misspelled"]) for o in outcomes),
        "misspelling_unconfirmed": sum(bool(o["unconfirmed"]) and not o["misspelled"] for o in outcomes),
        "product_by_words_right": sum(o["product"] == o["product_truth"] for o in with_words),
        "product_by_words_any": len(with_words),
        "unrelated_photos": len(read_ok), "unrelated_given_a_brand": sum(bool(u["brands"]) for u in read_ok),
        "reference_words": {p: sorted({w for t in ts for w in words(t)}) for p, ts in product_texts.items()},
        "outcomes": outcomes, "unrelated": unrelated,
    }


# -- (c) speed ---------------------------------------------------------------------------------------------


def _speed_photos(n: int) -> dict[str, list[Image.Image]]:
    shelf = [_load(GROCERY / r["path"]) for r in _grocery_rows(n)] if GROCERY.is_dir() else []
    big = [p for p in sorted((REAL_DATA / "threatexchange-pdq").rglob("*.jpg"))
           if 1_000_000 <= np.prod(Image.open(p).size) <= 2_100_000][:n // 2]
    megapixel = [_load(p) for p in big]
    megapixel += [im.resize((1224, 1224), Image.Resampling.BICUBIC) for im in shelf[: n - len(megapixel)]]
    printed = [case.image for case in printed_cases(n, seed=0, image_size=320)]
    return {"shelf_348px": shelf, "photos_1_2_MP": megapixel, "printed_320px": printed}


class RapidOcrPipeline:
    """The baseline of the speed table: text read as knockoff read it before it ran the models on its own
    sessions (commit eaf2b9e): ``rapidocr.RapidOCR`` detecting on the photo sized as the settings say (PIL), then
    each chosen box cropped and recognised in a call of its own."""

    def __init__(self, threads: int) -> None:
        import rapidocr

        models = Path(rapidocr.__file__).resolve().parent / "models"
        files = {"Det": "PP-OCRv6_det_small.onnx", "Rec": "PP-OCRv6_rec_small.onnx",
                 "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx"}
        params: dict[str, Any] = {f"{k}.model_path": str(models / v) for k, v in files.items()}
        params.update({"Global.log_level": "error", "Global.use_cls": False, "Global.text_score": 0.0,
                       "Det.limit_type": "max", "Det.limit_side_len": 2000,
                       "EngineConfig.onnxruntime.intra_op_num_threads": threads if threads > 0 else -1})
        self.engine = rapidocr.RapidOCR(params=params)

    def __call__(self, image: Image.Image, settings: TextReadSettings) -> list[str]:
        import cv2

        rgb = np.asarray(image.convert("RGB"))
        height, width = rgb.shape[:2]
        scale = min(settings.det_side / max(height, width), settings.max_upscale)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resample = Image.Resampling.BILINEAR if scale < 1 else Image.Resampling.BICUBIC
        sized = np.asarray(Image.fromarray(rgb).resize(size, resample, reducing_gap=2.0 if scale < 1 else None))
        bgr = np.ascontiguousarray(sized[:, :, ::-1])
        source, factor = (np.ascontiguousarray(rgb[:, :, ::-1]), width / size[0]) if scale < 1 else (bgr, 1.0)
        found = self.engine(bgr, use_det=True, use_cls=False, use_rec=False)
        boxes = [np.asarray(b, np.float32).reshape(4, 2) for b in (found.boxes if found.boxes is not None else [])]
        texts = []
        for i in choose_boxes(boxes, settings.min_height, settings.max_boxes):
            points = boxes[i] * factor
            w = int(max(np.linalg.norm(points[0] - points[1]), np.linalg.norm(points[2] - points[3])))
            h = int(max(np.linalg.norm(points[0] - points[3]), np.linalg.norm(points[1] - points[2])))
            w, h = max(w, 2), max(h, 2)
            matrix = cv2.getPerspectiveTransform(points, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32))
            crop = cv2.warpPerspective(source, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            crop = np.ascontiguousarray(np.rot90(crop)) if h >= 1.5 * w else crop
            read = self.engine(crop, use_det=False, use_cls=False, use_rec=True)
            if read.txts and read.scores and read.txts[0].strip() and read.scores[0] >= settings.min_score:
                texts.append(read.txts[0].strip())
        return texts


def _timed(fn, images: list[Image.Image], warmup: int = 2) -> tuple[float, float]:
    """Photos per second (wall clock) and CPU seconds per photo of ``fn`` over ``images``."""
    for image in images[:warmup]:
        fn(image)
    wall, cpu = time.perf_counter(), time.process_time()
    for image in images:
        fn(image)
    return len(images) / (time.perf_counter() - wall), (time.process_time() - cpu) / len(images)


def bench_speed(n: int, det_sides: list[int], threads: list[int], rounds: int = 2,
                coarse_sides: tuple[int, ...] = (TextReadSettings().coarse_side,)) -> list[dict[str, Any]]:
    """Photos/s of the reader and of the baseline pipeline (:class:`RapidOcrPipeline`), each thread count,
    detection size and first coarse look (``coarse_side``, 0: none), in alternating rounds over the same photos
    (so that machine load falls on both alike)."""
    from knockoff.embedders.base import create_embedder

    embedder = create_embedder("perceptual")
    rows = []
    for name, images in _speed_photos(n).items():
        if not images:
            continue
        perceptual, _ = _timed(lambda im: embedder.embed([im]), images)
        for count in threads:
            baseline = RapidOcrPipeline(count)
            for side, coarse in [(side, coarse) for side in det_sides for coarse in coarse_sides]:
                settings = TextReadSettings(det_side=side, coarse_side=coarse, threads=count)
                runs: dict[str, list[tuple[float, float]]] = {"reader": [], "baseline": []}
                for round_ in range(rounds):
                    order = ("reader", "baseline") if round_ % 2 == 0 else ("baseline", "reader")
                    for which in order:
                        fn = (lambda im: read_text(im, settings)) if which == "reader" else (
                            lambda im: baseline(im, settings))
                        runs[which].append(_timed(fn, images))
                reader, before = (np.mean(runs[k], axis=0) for k in ("reader", "baseline"))
                rows.append({"photos": name, "n": len(images), "threads": count, "det_side": side,
                             "coarse_side": coarse,
                             "text_photos_per_s": reader[0], "baseline_photos_per_s": before[0],
                             "speedup_vs_baseline": reader[0] / before[0], "cpu_s_per_photo": reader[1],
                             "baseline_cpu_s_per_photo": before[1], "perceptual_photos_per_s": perceptual})
    return rows


def bench_read_rates(n: int, variants: list[tuple[int, float]], n_printed: int = 0) -> list[dict[str, Any]]:
    """The grocery brand-read rate (and, with ``n_printed``, the printed set's misspelling flag and genuine read
    rates) at each (detection size, largest enlargement), same photos."""
    rows = []
    for side, upscale in variants:
        read = TextReadSettings(det_side=side, max_upscale=upscale)
        result = bench_grocery(n, read, with_unrelated=False)
        if "skipped" in result:
            return []
        row = {"det_side": side, "max_upscale": upscale, "n": result["n_photos"],
               "right": result["brand"].get("right", 0), "wrong": result["brand_wrong"],
               "misspelling_false_flags": result["misspelling_false_flags"]}
        if n_printed:
            printed = bench_printed(n_printed, read)["ocr"]
            row.update({"printed_n": n_printed, **{f"printed_{k}": printed[k] for k in
                        ("misspelled_flagged", "genuine_flagged_misspelled", "genuine_read", "unrelated_given_a_brand")}})
        rows.append(row)
    return rows


# -- main --------------------------------------------------------------------------------------------------


def _markdown(data: dict[str, Any]) -> str:
    p, g = data["printed"], data["grocery"]
    lines = ["# Reading brands in photos", "",
             f"OCR engine: {data['engine']}; read settings {data['read_settings']}", ""]
    lines += ["## Synthetic printed-brand set", "", markdown_table(
        ["text", "misspelled flagged", "misspelled unconfirmed (review)", "misspelled read as genuine",
         "genuine flagged misspelled", "genuine read", "unrelated given a brand", "wrong brand named"],
        [[k, s["misspelled_flagged"], s.get("misspelled_unconfirmed"), s["misspelled_read_as_genuine"],
          s["genuine_flagged_misspelled"],
          s["genuine_read"], s["unrelated_given_a_brand"], s["wrong_brand_named"]]
         for k, s in (("as printed", p["as_printed"]), ("read by OCR", p["ocr"]))]), "",
        f"cases per kind: {p['ocr']['n']}; misspelled flagged by font: {p['ocr']['misspelled_flagged_by_font']}", ""]
    if "skipped" not in g:
        lines += ["## grocerystore in-store photos", "", markdown_table(
            ["photos", "brand right", "wrong", "none", "right rate", "misspelling false flags",
             "misspelling unconfirmed (review)", "product by words right / any", "unrelated photos given a brand"],
            [[g["n_photos"], g["brand"].get("right", 0), g["brand_wrong"], g["brand"].get("none", 0),
              g["brand_right_rate"], g["misspelling_false_flags"], g.get("misspelling_unconfirmed"),
              f"{g['product_by_words_right']} / {g['product_by_words_any']}",
              f"{g['unrelated_given_a_brand']} / {g['unrelated_photos']}"]]), ""]
    if data["read_rates"]:
        lines += ["### brand read rate by detection size", "",
                  markdown_table(list(data["read_rates"][0]), [list(r.values()) for r in data["read_rates"]]), ""]
    lines += ["## Speed (2 shared cores, baselines in the same run)", "",
              "text_photos_per_s: knockoff's reader; baseline: the same settings read through rapidocr.RapidOCR, "
              "as at commit eaf2b9e (benchmarks/bench_text.py RapidOcrPipeline), in alternating rounds; "
              "cpu_s_per_photo: CPU seconds of this process per photo (all threads).", "",
              markdown_table(list(data["speed"][0]), [list(r.values()) for r in data["speed"]]) if data["speed"]
              else "no photos", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--printed", type=int, help="synthetic cases (default 3000; quick 300)")
    parser.add_argument("--grocery", type=int, help="grocery photos (default 150; quick 40)")
    parser.add_argument("--det-sides", default="480,640,736", help="detection sizes to compare")
    parser.add_argument("--max-upscales", default="2.0",
                        help="largest enlargements the rates part compares (with each of --det-sides)")
    parser.add_argument("--rates-printed", type=int, default=0,
                        help="printed cases the rates part also reads at each setting (default 0: none)")
    parser.add_argument("--parts", default="speed,rates,grocery,printed", help="what to run (comma-separated)")
    parser.add_argument("--threads", default="0,1", help="onnxruntime thread counts the speed part compares")
    parser.add_argument("--coarse-sides", default=str(TextReadSettings().coarse_side),
                        help="first coarse looks the speed part compares (TextReadSettings.coarse_side; 0: none)")
    parser.add_argument("--speed-photos", type=int, default=40, help="photos of each kind the speed part reads")
    parser.add_argument("--models", default=TextReadSettings().models,
                        help="the OCR models the grocery and printed parts read with (TextReadSettings.models: "
                             "int8 or full)")
    parser.add_argument("--name", help="results file name (default: text or text.quick)")
    args = parser.parse_args()
    n_printed = args.printed or (300 if args.quick else 3000)
    n_grocery = args.grocery or (40 if args.quick else 150)
    sides = [int(s) for s in args.det_sides.split(",")]
    if reader_status():
        raise SystemExit(f"cannot read text: {reader_status()}")
    read = TextReadSettings(models=args.models)
    data: dict[str, Any] = {"engine": read_text(Image.new("RGB", (64, 64)), read).engine, "read_settings": vars(read),
                            "ocr_versions": {p: metadata.version(p) for p in ("rapidocr", "onnxruntime")}}
    parts = set(args.parts.split(","))
    threads = [int(t) for t in args.threads.split(",")]
    coarse_sides = tuple(int(c) for c in args.coarse_sides.split(","))
    data["speed"] = bench_speed(args.speed_photos, sides, threads, coarse_sides=coarse_sides) if "speed" in parts else []
    rates = "rates" in parts
    variants = [(side, float(up)) for side in sides for up in args.max_upscales.split(",")
                if (side, float(up)) != (read.det_side, read.max_upscale)]
    data["read_rates"] = bench_read_rates(min(n_grocery, 60), variants, args.rates_printed) if rates else []
    data["grocery"] = bench_grocery(n_grocery, read) if "grocery" in parts else {"skipped": "not run (--parts)"}
    data["printed"] = bench_printed(n_printed if "printed" in parts else 0, read)
    markdown = _markdown(data)
    print(markdown)
    write_results(args.name or ("text.quick" if args.quick else "text"), data, markdown)


if __name__ == "__main__":
    main()
