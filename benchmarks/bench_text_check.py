"""The full check with text reading on against the same check with it off, in one run, interleaved.

    python benchmarks/bench_text_check.py --quick   # 30 printed listings + a small labeled mix (~3 min)
    python benchmarks/bench_text_check.py           # 120 printed + a larger labeled mix

Two sets, each checked listing by listing by two Detectors on one index (built with the references' text):
``Policy(text=TextSettings(enabled=False))`` (text off) and ``Policy(text=TextSettings(enabled=True))`` (text on), the order alternating per
listing so that machine load falls on both alike. Reported per set: the throughput ratio on/off (the issue's
target: >= 0.5), how many listings' text was read (the detector skips reading when the text could not change the
verdict), and for the printed set the rate at which a misspelled brand is flagged (MISSPELLED_BRAND_IN_PHOTO hit;
target >= 0.9) and genuine spellings flagged as misspelled. ``--floor`` also checks each listing with text on
but no misspelling read again, and with that and one coarse look only (no closer look): what reading costs
without those parts (a measurement by patching the benchmark's process, not a setting; its misspellings are
unconfirmed readings, which knockoff never reports).

(a) printed: :func:`knockoff.evaluate.printed.make_printed_set` (one photo per listing, the brand printed,
    genuine / misspelled / unrelated; no titles or prices).
(b) labeled mix: :func:`knockoff.evaluate.synthetic.make_labeled_set` (copies and edits of official photos,
    sold by official and other sellers, and unrelated photos).
Results: benchmarks/results/text_check(.quick).{json,md}.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import markdown_table, text_table, write_results

from knockoff import Catalog, Detector, build_index
from knockoff.catalog.readers import read_listings
from knockoff.decide.policy import Policy, TextSettings
from knockoff.decide.signals import BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO
from knockoff.evaluate.printed import make_printed_set
from knockoff.evaluate.synthetic import make_labeled_set
from knockoff.decide import text_evidence
from knockoff.decide.photo_text import find_brand_mentions
from knockoff.match import text as text_module
from knockoff.match.text import TextReadSettings

FLOOR_MODES = ["on_no_reread", "on_no_reread_coarse_only"]


def _not_read(verdict: Any) -> bool:
    """Whether the check skipped reading the listing's text (its photo-text signals say so)."""
    return any(s.details.get("not_read") for s in verdict.signals
               if s.code in (BRAND_IN_PHOTO, MISSPELLED_BRAND_IN_PHOTO))


@contextmanager
def _floor(mode: str) -> Iterator[None]:
    """A measurement only (--floor), never a setting: the check with text on, its misspellings not read again
    (``no_reread``), and also detected in one coarse look with no closer one (``no_reread_coarse_only``)."""
    saved = text_evidence.read_brand_mentions, text_module._detect
    if mode.startswith("on_no_reread"):
        text_evidence.read_brand_mentions = lambda images, texts, brands, read=None, settings=None: (
            find_brand_mentions(texts, tuple(brands), settings))
    if mode == "on_no_reread_coarse_only":
        def coarse(engine: Any, bgr: Any, settings: TextReadSettings, options: Any = None) -> Any:
            once = replace(settings, det_side=settings.coarse_side, coarse_side=0)
            return saved[1](engine, bgr, once, options)
        text_module._detect = coarse
    try:
        yield
    finally:
        text_evidence.read_brand_mentions, text_module._detect = saved


def measure(root: Path, limit: int, read: TextReadSettings, floor: bool = False) -> dict[str, Any]:
    """Check every listing of the set at ``root`` with text off and on (and the --floor variants), interleaved;
    times and outcomes."""
    index = build_index(Catalog.from_dir(root), "perceptual", read_text=True)
    names = ["off", "on"] + (FLOOR_MODES if floor else [])
    detectors = {name: Detector(index, policy=Policy(text=TextSettings(enabled=False)) if name == "off" else
                                Policy(text=TextSettings(enabled=True, read=read))) for name in names}
    listings = read_listings(root / "listings.csv")[:limit]
    for name, detector in detectors.items():  # warm up: the OCR engine and the verifier are created on first use
        with _floor(name):
            detector.check(listings[0].listing)
    seconds = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)  # this process's CPU seconds, all its threads (the reader's included)
    rows = []
    for n, item in enumerate(listings):
        verdicts = {}
        for name in names if n % 2 == 0 else names[::-1]:
            with _floor(name):
                start, start_cpu = time.perf_counter(), time.process_time()
                verdicts[name] = detectors[name].check(item.listing)
                seconds[name] += time.perf_counter() - start
                cpu[name] += time.process_time() - start_cpu
        rows.append((item, verdicts["off"], verdicts["on"], verdicts))
    return {"n": len(rows), "seconds": seconds, "cpu": cpu, "rows": rows}


def _flag_rate(rows: list, kind: str, mode: str = "on") -> tuple[int, int]:
    cases = [verdicts[mode] for item, _, _, verdicts in rows if item.kind == kind]
    flagged = [v for v in cases if (s := v.signal(MISSPELLED_BRAND_IN_PHOTO)) is not None and s.hit]
    return len(flagged), len(cases)


def summarise(name: str, result: dict[str, Any]) -> dict[str, Any]:
    rows, seconds = result["rows"], result["seconds"]
    out: dict[str, Any] = {
        "set": name, "listings": result["n"],
        "ratio_on_over_off": round(seconds["off"] / seconds["on"], 3) if seconds["on"] else None,
        "cpu_ratio_on_over_off": round(result["cpu"]["off"] / result["cpu"]["on"], 3) if result["cpu"]["on"] else None,
        "cpu_s_per_listing_off": round(result["cpu"]["off"] / result["n"], 3) if result["n"] else None,
        "text_not_read": sum(_not_read(on) for _, _, on, _ in rows),
        "verdicts_changed_by_text": sum(off.verdict != on.verdict for _, off, on, _ in rows),
        "suspects_off": sum(off.verdict == "suspect" for _, off, _, _ in rows),
        "suspects_on": sum(on.verdict == "suspect" for _, _, on, _ in rows),
    }
    if name == "printed":
        hit, total = _flag_rate(rows, "printed-misspelled")
        wrong, genuine = _flag_rate(rows, "printed-genuine")
        out["misspelled_flagged"] = f"{hit}/{total}"
        out["misspelled_flag_rate"] = round(hit / total, 3) if total else None
        out["genuine_flagged_misspelled"] = f"{wrong}/{genuine}"
    for mode in (m for m in FLOOR_MODES if m in result["cpu"]):
        out[f"cpu_ratio_{mode}"] = round(result["cpu"]["off"] / result["cpu"][mode], 3)
        if name == "printed":
            out[f"misspelled_flagged_{mode}"] = "{}/{}".format(*_flag_rate(rows, "printed-misspelled", mode))
    return out



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--printed", type=int, default=None, help="printed listings (default 30 quick, 120 full)")
    parser.add_argument("--det-side", type=int, default=TextReadSettings().det_side,
                        help="the text detector's photo side with text on (TextReadSettings.det_side)")
    parser.add_argument("--coarse-side", type=int, default=TextReadSettings().coarse_side,
                        help="the text detector's first, coarse look (TextReadSettings.coarse_side; 0: one look at "
                             "--det-side)")
    parser.add_argument("--threads", type=int, default=TextReadSettings().threads,
                        help="the text reader's threads (TextReadSettings.threads; 0: every CPU)")
    parser.add_argument("--models", default=TextReadSettings().models,
                        help="the OCR models listings are read with (TextReadSettings.models: int8 or full; the "
                             "references are read at index build with the default)")
    parser.add_argument("--overlap", action="store_true",
                        help="read the text during the photo match, not after it (TextReadSettings.overlap on)")
    parser.add_argument("--floor", action="store_true",
                        help="also measure the check with text on but no misspelling read again, and with that and one "
                             "coarse look only (a measurement of what the rest costs, not a setting)")
    parser.add_argument("--name", default=None, help="results file name (default text_check[.quick])")
    args = parser.parse_args()
    n_printed = args.printed or (30 if args.quick else 120)
    load = [os.getloadavg()[0], 0.0]
    with tempfile.TemporaryDirectory() as tmp:
        printed = make_printed_set(Path(tmp) / "printed", n_listings=n_printed, seed=0).root
        labeled = make_labeled_set(Path(tmp) / "labeled", n_brands=3 if args.quick else 4,
                                   listings_per_product=2 if args.quick else 3,
                                   n_unrelated=4 if args.quick else 10, seed=0).root
        read = TextReadSettings(det_side=args.det_side, coarse_side=args.coarse_side, threads=args.threads,
                                overlap=args.overlap, models=args.models)
        summaries = [summarise("printed", measure(printed, n_printed, read, args.floor)),
                     summarise("labeled-mix", measure(labeled, 10_000, read, args.floor))]
    load[1] = os.getloadavg()[0]
    headers = list(dict.fromkeys(k for s in summaries for k in s))
    table = [[s.get(h, "") for h in headers] for s in summaries]
    print(text_table(headers, table))
    name = args.name or ("text_check.quick" if args.quick else "text_check")
    markdown = ("Full Detector.check with text on vs off (same index, interleaved per listing); "
                f"ratio = throughput on / off (wall time), cpu_ratio = CPU seconds off / on (this process, all threads); "
                f"text read with {vars(read)}; 1-min load average at the start {load[0]:.1f}, at the end {load[1]:.1f} "
                f"(2 CPUs shared with other work).\n\n" + markdown_table(headers, table))
    write_results(name, {"quick": args.quick, "read_settings": vars(read), "load_average": load, "summaries": summaries}, markdown)


if __name__ == "__main__":
    main()
