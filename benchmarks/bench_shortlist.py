"""Keypoint shortlist at catalog scale: the product-quantized vote (IVF-PQ) against the exact (flat) vote.

References: the real copy sources of bench_copies (their RootSIFT keypoints) among ``--references`` reference
photos in all; the others are distractors made from the keypoints of the real unrelated photos (grocerystore
store photos), each a random unrelated photo's descriptors with Gaussian noise (``--noise`` a component, then
clipped at 0 and renormalised: about as far from their origin as descriptors of different photos are from
each other) — real descriptor statistics without computing SIFT on 10^4 photos.
Queries: every edit kind of knockoff.evaluate.edits applied to the sources (``--queries`` of them).
The PQ shortlist goes the way an index's does: built (trained on a sample, filled), saved into a folder
(``shortlist.faiss``, as ``knockoff index build`` stores it) and loaded back memory-mapped
(``KeypointShortlist.load``, no training); the loaded one votes. ``--per-reference`` sets its descriptors a
reference photo (the exact vote keeps 500: today's reference).
For each query both shortlists vote (top 3, at least 4 votes, the detector's settings); measured:
- agreement: the exact vote's top candidate is in the PQ vote's top 3; overlap of the two top-3 lists;
- copy recall through the vote: the query's own source is in the top 3 (exact / PQ), and is then proven by the
  geometric verifier (``verified``), which is what the detector does with the voted candidates;
- vote time (ratio PQ / exact, same run), the shortlist's memory a reference photo, its file's size, and the
  time to load it (ratio to the build's, same run).

    python benchmarks/bench_shortlist.py --quick     # 2,000 references (about 10^6 descriptors), 60 queries
    python benchmarks/bench_shortlist.py             # 10,000 references, 120 queries
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_copies import DEFAULT_DATA, source_paths, unrelated_paths  # noqa: E402

from knockoff.catalog.images import load_image  # noqa: E402


class _Desc:
    """The parts of LocalFeatures the shortlist reads (descriptors and responses)."""

    def __init__(self, descriptors: np.ndarray, responses: np.ndarray | None):
        self.descriptors = descriptors
        self.responses = responses

    def __len__(self) -> int:
        return len(self.descriptors)


def distractor(base: Any, rng: np.random.Generator, noise: float, keep: int) -> _Desc:
    desc = np.asarray(base.descriptors, np.float32)
    pick = rng.choice(len(desc), min(keep, len(desc)), replace=False)
    d = np.clip(desc[pick] + rng.normal(0, noise, (len(pick), 128)).astype(np.float32), 0, None)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    return _Desc(d, rng.random(len(d)).astype(np.float32))


def build(kind: str, refs: list[Any], per_reference: int, folder: Path,
          hnsw_from: int = 8192) -> tuple[Any, float, dict[str, Any]]:
    """The exact shortlist (in memory), or the PQ one built, saved into ``folder`` and loaded back (``graph``: its
    lists found through an HNSW graph from ``hnsw_from`` lists up)."""
    from knockoff.match.keypoints import SHORTLIST_FILE, KeypointShortlist

    t = time.perf_counter()
    if kind == "exact":
        s = KeypointShortlist(per_reference=per_reference, flat_limit=10**12)
    else:  # the plan the detector gets at this size, with compression forced from 1 descriptor up
        s = KeypointShortlist(per_reference=per_reference, compress_above=1, expected_references=len(refs),
                              hnsw_from=hnsw_from if kind == "graph" else 8192)
    for j, f in enumerate(refs):
        s.add(j, f)
    if kind == "exact":
        s.vote(refs[0], top=1)  # builds
        return s, time.perf_counter() - t, {}
    entry = s.save(folder)  # trains what is left, fills, writes
    built = time.perf_counter() - t
    t = time.perf_counter()
    loaded = KeypointShortlist.load(folder, entry, mmap=True)
    return loaded, built, {"load_s": time.perf_counter() - t, "file_bytes": (folder / SHORTLIST_FILE).stat().st_size,
                           "entry": entry}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--references", type=int, default=0)
    p.add_argument("--queries", type=int, default=0)
    p.add_argument("--noise", type=float, default=0.03)
    p.add_argument("--per-reference", type=int, default=500, help="descriptors a reference in the PQ shortlist")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--hnsw-from", type=int, default=0,
                   help="also a PQ shortlist whose lists are found through an HNSW graph from this many lists up "
                        "(two-level k-means; 'graph' in the results), to compare with the exact-quantizer one")
    args = p.parse_args(argv)
    n_refs = args.references or (2_000 if args.quick else 10_000)
    n_queries = args.queries or (60 if args.quick else 120)
    if not (args.data / "grocerystore").is_dir():
        print(f"skipped: real data not found at {args.data}")
        return 0
    from knockoff.evaluate.edits import EDIT_KINDS, apply_edit
    from knockoff.match.verify import GeometricVerifier

    verifier = GeometricVerifier()
    rng = np.random.default_rng(0)
    sources = [load_image(x) for x in source_paths(args.data)]
    src_features = [verifier.features(im) for im in sources]
    unrelated = [verifier.features(load_image(x)) for x in unrelated_paths(args.data)[::4]]
    refs: list[Any] = list(src_features)
    while len(refs) < n_refs:
        refs.append(distractor(unrelated[int(rng.integers(len(unrelated)))], rng, args.noise, 500))
    pairs = [(i, k) for i in range(len(sources)) for k in EDIT_KINDS]
    pairs = [pairs[j] for j in sorted(rng.choice(len(pairs), min(n_queries, len(pairs)), replace=False))]
    queries = [(i, k, verifier._listing_features(apply_edit(sources[i], k, rng))) for i, k in pairs]
    print(f"{len(refs)} references ({len(sources)} real sources), {len(queries)} queries", flush=True)

    shortlists = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("exact", "pq", "graph") if args.hnsw_from else ("exact", "pq"):
            (Path(folder) / kind).mkdir()
            shortlists[kind] = build(kind, refs, 500 if kind == "exact" else args.per_reference, Path(folder) / kind,
                                     args.hnsw_from)
            print(kind, shortlists[kind][0].index_plan, f"built in {shortlists[kind][1]:.1f}s", flush=True)
        return _run_queries(args, n_refs, sources, queries, shortlists, verifier, src_features)


def _run_queries(args: Any, n_refs: int, sources: list[Any], queries: list[Any], shortlists: dict,
                 verifier: Any, src_features: list[Any]) -> int:
    rows = []
    times = {name: 0.0 for name in shortlists}
    for i, kind, feats in queries:
        row: dict[str, Any] = {"source": i, "kind": kind}
        for name in sorted(shortlists, reverse=True):  # interleaved: the same machine load for both
            t = time.perf_counter()
            votes = shortlists[name][0].vote(feats, top=3, min_votes=4)
            times[name] += time.perf_counter() - t
            top = [r for r, _ in votes]
            row[name] = top
            row[name + "_verified"] = i in top and bool(verifier.verify(feats, src_features[i]).verified)
        rows.append(row)
    return report(args, n_refs, len(sources), rows, times, shortlists)


def report(args: Any, n_refs: int, n_sources: int, rows: list[dict], times: dict, shortlists: dict) -> int:
    from common import write_results

    n = len(rows)
    with_exact = [r for r in rows if r["exact"]]
    agree = sum(r["exact"][0] in r["pq"] for r in with_exact) / max(len(with_exact), 1)
    overlap = float(np.mean([len(set(r["exact"]) & set(r["pq"])) / max(len(r["exact"]), 1) for r in with_exact]))
    figures = {
        "references": n_refs, "real_sources": n_sources, "queries": n,
        "descriptors": shortlists["exact"][0].descriptor_count,
        "pq_plan": vars(shortlists["pq"][0].index_plan),
        "exact_top1_in_pq_top3": round(agree, 4), "top3_overlap": round(overlap, 4),
        "source_in_top3": {k: round(sum(r["source"] in r[k] for r in rows) / n, 4) for k in shortlists},
        "source_verified": {k: round(sum(r[k + "_verified"] for r in rows) / n, 4) for k in shortlists},
        "vote_seconds_ratio_pq_over_exact": round(times["pq"] / max(times["exact"], 1e-9), 4),
        "build_seconds_ratio_pq_over_exact": round(shortlists["pq"][1] / max(shortlists["exact"][1], 1e-9), 3),
        "bytes_per_reference": {k: shortlists[k][0].index_plan.bytes_per_descriptor() * (
            500 if k == "exact" else args.per_reference) for k in ("exact", "pq")},
        "pq_per_reference": args.per_reference,
        "pq_file_bytes_per_reference": round(shortlists["pq"][2]["file_bytes"] / n_refs, 1),
        "pq_load_seconds_ratio_to_build": round(shortlists["pq"][2]["load_s"] / max(shortlists["pq"][1], 1e-9), 5),
        "pq_loaded_descriptors": shortlists["pq"][0].descriptor_count,
    }
    misses = [(r["source"], r["kind"]) for r in rows if r["exact_verified"] and not r["pq_verified"]]
    figures["copies_lost_by_pq"] = misses
    if "graph" in shortlists:
        figures["graph_plan"] = vars(shortlists["graph"][0].index_plan)
        figures["graph_build_seconds_ratio_to_pq"] = round(shortlists["graph"][1] / max(shortlists["pq"][1], 1e-9), 3)
        figures["graph_vote_seconds_ratio_to_pq"] = round(times["graph"] / max(times["pq"], 1e-9), 3)
        figures["copies_lost_by_graph_vs_pq"] = [(r["source"], r["kind"]) for r in rows
                                                 if r["pq_verified"] and not r["graph_verified"]]
    cmd = "python " + " ".join(["benchmarks/bench_shortlist.py", *sys.argv[1:]])
    md = f"| measure | exact (flat) | stored ({figures['pq_plan']['kind']}) |\n|---|---|---|\n"
    for key in ("source_in_top3", "source_verified"):
        md += f"| {key} | {figures[key]['exact']} | {figures[key]['pq']} |\n"
    md += (f"| bytes a reference (500 / {args.per_reference} descriptors) | {figures['bytes_per_reference']['exact']} | "
           f"{figures['bytes_per_reference']['pq']} |\n\n"
           f"The PQ shortlist was saved as the index folder stores it and loaded back memory-mapped (no training): "
           f"{figures['pq_file_bytes_per_reference']} bytes a reference on disk, loaded in "
           f"{figures['pq_load_seconds_ratio_to_build']}x its build time; it voted below.\n\n"
           f"{n_refs} references ({n_sources} real sources, the rest noisy replicas of real unrelated photos' "
           f"descriptors), {figures['descriptors']} descriptors, {n} edited-copy queries. PQ plan "
           f"{figures['pq_plan']}. Exact top-1 in PQ top-3: {agree:.3f}; top-3 overlap {overlap:.3f}; vote time "
           f"PQ/exact {figures['vote_seconds_ratio_pq_over_exact']}x; copies verified by exact but lost by PQ: "
           f"{misses}.\n")
    if "graph" in shortlists:
        md += (f"\nWith the lists found through an HNSW graph (plan {figures['graph_plan']}): source in top 3 "
               f"{figures['source_in_top3']['graph']}, verified {figures['source_verified']['graph']} (PQ with the exact "
               f"quantizer: {figures['source_in_top3']['pq']}, {figures['source_verified']['pq']}); build time "
               f"{figures['graph_build_seconds_ratio_to_pq']}x and vote time {figures['graph_vote_seconds_ratio_to_pq']}x "
               f"the exact quantizer's; copies it lost that PQ verified: {figures['copies_lost_by_graph_vs_pq']}.\n")
    print(md)
    suffix = ("" if args.per_reference == 500 else f".per{args.per_reference}") + (
        f".graph{args.hnsw_from}" if args.hnsw_from else "")
    write_results("shortlist" + (".quick" if args.quick else "") + suffix, {"script": "bench_shortlist.py", "command": cmd,
                                                                 **figures}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
