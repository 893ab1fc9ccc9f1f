"""Scan throughput with text reading off, on (read after the photo match) and on with ``overlap`` (read during it).

    python benchmarks/bench_text_scan.py --quick   # 60 printed listings, each scan twice (~4 min on 2 shared cores)
    python benchmarks/bench_text_scan.py           # 150 printed listings

One index of a printed-brand set (:func:`knockoff.evaluate.printed.make_printed_set`, built with ``--text``), scanned
by ``knockoff scan`` in a child process per run, the three policies in the order A B C C B A so that machine load
falls on each alike. Reported per policy: listings per second (wall time of the whole scan, start-up included) and
CPU seconds per listing (the scan's process tree: this process's children), the ratio of each to the scan without
text, and the verdict counts (reading during the match must not change them). The question it answers: does
reading during the match (:attr:`knockoff.match.text.TextReadSettings.overlap`) raise a scan's throughput when the
cores are busy, or only one check's latency on an idle machine?
Results: benchmarks/results/text_scan(.quick).{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import markdown_table, text_table, write_results

from knockoff.evaluate.printed import make_printed_set

POLICIES = {"off": {}, "on": {"text": {"enabled": True}},
            "on-overlap": {"text": {"enabled": True, "read": {"overlap": True}}}}
ORDER = ("off", "on", "on-overlap", "on-overlap", "on", "off")


def _knockoff(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, "-m", "knockoff", *args], env=env, capture_output=True, text=True)


def _scan(root: Path, index: Path, policy: Path, out: Path) -> dict[str, Any]:
    before, load = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg()[0]
    start = time.perf_counter()
    done = _knockoff("scan", str(root), "--index", str(index), "--out", str(out), "--policy", str(policy),
                     "--no-progress", "--no-report")
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines() if (out / "results.jsonl").exists() else []
    if done.returncode not in (0, 1) or not lines:
        raise SystemExit(f"scan failed ({done.returncode}): {done.stderr[-2000:]}")
    return {"wall_s": wall, "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
            "listings": len(lines), "load": load, "verdicts": dict(Counter(json.loads(x)["verdict"] for x in lines))}


def measure(n: int, tmp: Path) -> list[dict[str, Any]]:
    root = make_printed_set(tmp / "printed", n_listings=n, seed=1).root
    index = tmp / "index"
    built = _knockoff("index", "build", str(root), "--out", str(index), "--text")
    if built.returncode != 0:
        raise SystemExit(f"index build failed: {built.stderr[-2000:]}")
    runs = []
    for number, name in enumerate(ORDER):
        policy = tmp / f"{name}.json"
        policy.write_text(json.dumps(POLICIES[name]), encoding="utf-8")
        runs.append({"policy": name, **_scan(root, index, policy, tmp / f"out{number}")})
        print(runs[-1], flush=True)
    return runs


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals = {}
    for name in POLICIES:
        mine = [r for r in runs if r["policy"] == name]
        listings = sum(r["listings"] for r in mine)
        totals[name] = {"policy": name, "scans": len(mine), "listings_per_s": listings / sum(r["wall_s"] for r in mine),
                        "cpu_s_per_listing": sum(r["cpu_s"] for r in mine) / listings,
                        "listings_per_s_each_scan": [round(r["listings"] / r["wall_s"], 2) for r in mine],
                        "load_at_start": [round(r["load"], 1) for r in mine], "verdicts": mine[0]["verdicts"]}
    base = totals["off"]
    for row in totals.values():
        row["throughput_ratio_to_off"] = round(row["listings_per_s"] / base["listings_per_s"], 3)
        row["cpu_ratio_to_off"] = round(base["cpu_s_per_listing"] / row["cpu_s_per_listing"], 3)
        row["listings_per_s"] = round(row["listings_per_s"], 2)
        row["cpu_s_per_listing"] = round(row["cpu_s_per_listing"], 3)
    return list(totals.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--listings", type=int, default=None, help="printed listings (default 60 quick, 150 full)")
    parser.add_argument("--name", default=None, help="results file name (default text_scan[.quick])")
    args = parser.parse_args()
    n = args.listings or (60 if args.quick else 150)
    with tempfile.TemporaryDirectory() as tmp:
        runs = measure(n, Path(tmp))
    rows = summarise(runs)
    headers = ["policy", "scans", "listings_per_s", "throughput_ratio_to_off", "cpu_s_per_listing", "cpu_ratio_to_off",
               "listings_per_s_each_scan", "load_at_start", "verdicts"]
    table = [[row[h] for h in headers] for row in rows]
    print(text_table(headers, table))
    markdown = (f"`knockoff scan` of {n} printed-brand listings, text off / on / on with overlap, in the order "
                f"{' '.join(ORDER)}; wall time of the whole scan (start-up included), CPU of its process tree; "
                f"{os.cpu_count()} CPUs shared with other work (load = 1-min load average).\n\n"
                + markdown_table(headers, table))
    write_results(args.name or ("text_scan.quick" if args.quick else "text_scan"),
                  {"quick": args.quick, "listings": n, "order": list(ORDER), "runs": runs, "summary": rows}, markdown)


if __name__ == "__main__":
    main()
