"""The ``knockoff`` command, thin over the library.

Exit codes: 0 nothing suspect, 1 suspects found, 2 bad usage or bad input files.
A scan stopped by SIGINT or SIGTERM exits 130 or 143 (128 + the signal), keeping what it decided.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from knockoff.errors import KnockoffError

EXIT_OK, EXIT_SUSPECT, EXIT_BAD_INPUT = 0, 1, 2

log = logging.getLogger("knockoff.cli.app")


def _policy(args: argparse.Namespace):
    from knockoff.decide.policy import Policy

    return Policy.load(args.policy) if getattr(args, "policy", None) else None


def _cmd_demo(args: argparse.Namespace) -> int:
    from knockoff.evaluate.demo import format_demo, run_demo

    result = run_demo(args.workdir, engine=args.engine, seed=args.seed)
    print(format_demo(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    return EXIT_OK


def _cmd_engines(args: argparse.Namespace) -> int:
    from knockoff.embedders.base import describe_embedders

    for name, text in describe_embedders().items():
        print(f"{name:<12} {text}")
    return EXIT_OK


def _cmd_index_build(args: argparse.Namespace) -> int:
    from knockoff.catalog.readers import Catalog
    from knockoff.match.index import build_index

    catalog = Catalog.from_dir(args.catalog, strict=args.strict)
    index = build_index(catalog, args.engine, index_type=args.index_type)
    index.save(args.out)
    print(
        f"indexed {len(index)} reference images of {len(catalog.products)} products "
        f"({index.vector_count} vectors, engine {index.embedder.name}) into {args.out}; "
        f"{len(catalog.problems)} bad catalog rows and {len(index.skipped)} unreadable images skipped"
    )
    return EXIT_BAD_INPUT if (catalog.problems or index.skipped) and args.strict else EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from knockoff.catalog.readers import Listing
    from knockoff.decide.detector import Detector
    from knockoff.match.index import ReferenceIndex

    detector = Detector(ReferenceIndex.load(args.index), _policy(args))
    listing = Listing(images=tuple(args.images), title=args.title or "", price=args.price,
                      currency=args.currency, seller=args.seller)
    verdict = detector.check(listing)
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=1))
    else:
        print(f"{verdict.verdict} (risk {verdict.risk:.2f}, engine {verdict.engine})")
        for reason in verdict.reasons:
            print(f"  - {reason.message}")
    if verdict.verdict == "error":
        return EXIT_BAD_INPUT
    return EXIT_SUSPECT if verdict.is_suspect else EXIT_OK


def _cmd_scan(args: argparse.Namespace) -> int:
    """Exit 0 when no listing needs a person, 1 when suspects or review verdicts are found, 2 on bad input
    (nothing to scan, an output folder in use), 130/143 when stopped by SIGINT/SIGTERM (results kept)."""
    from knockoff.run.scan import scan

    with _stop_on_sigterm() as received, _progress_lines(not args.no_progress):
        try:
            summary = scan(args.folder, args.index, args.out, policy=_policy(args), listings_csv=args.listings,
                           workers=args.workers, batch_size=args.batch_size,
                           progress=False if args.no_progress else None, backend=args.backend, address=args.address)
        except KeyboardInterrupt:
            signum = received[-1] if received else signal.SIGINT
            print(f"knockoff: scan stopped by {signal.Signals(signum).name}; what was decided is kept in "
                  f"{Path(args.out) / 'results.jsonl'}: run the same command again to resume", file=sys.stderr)
            return 128 + int(signum)
    for line in _scan_lines(summary):
        print(line)
    if args.no_report:
        print(f"results: {summary.results_path}")
    else:
        from knockoff.report.render import write_reports

        print(f"report: {write_reports(args.out)[1]}")
    return EXIT_SUSPECT if summary.needs_person else EXIT_OK


@contextlib.contextmanager
def _progress_lines(on: bool) -> Iterator[None]:
    """Show (or hide) the scan's progress log lines, which a run without a terminal gets instead of a bar."""
    logger = logging.getLogger("knockoff.run.progress")
    saved = logger.level
    logger.setLevel(logging.INFO if on else logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(saved)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[list[int]]:
    """SIGTERM interrupts like Ctrl-C (KeyboardInterrupt), so that a scan stops cleanly; yields the signals seen."""
    received: list[int] = []

    def interrupt(signum: int, frame: Any) -> None:
        received.append(signum)
        signal.default_int_handler(signum, frame)

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _scan_lines(summary: Any) -> list[str]:
    counts = ", ".join(f"{n} {v}" for v, n in sorted(summary.counts.items()))
    again = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in sorted(summary.redecided.items()))
    lines = [f"scanned {summary.total} listings ({summary.already_done} done before, {summary.decided} now"
             f"{'; decided again: ' + again if again else ''}): {counts or 'nothing'}"]
    skipped = [(len(summary.bad_rows), "bad rows of the listings file"),
               (len(summary.unlisted_photos), "photos no listing names"),
               (len(summary.missing_photos), "missing photos named by listings")]
    listed = ", ".join(f"{n} {what}" for n, what in skipped if n)
    if listed:
        lines.append(f"not scanned: {listed} (listed in {summary.skipped_path})")
    if summary.stale:
        lines.append(f"{summary.stale} results of listings no longer in the input are kept in {summary.results_path}")
    return lines


def _cmd_report(args: argparse.Namespace) -> int:
    from knockoff.report.render import write_reports

    csv_path, html_path = write_reports(args.out_dir)
    print(f"wrote {csv_path} and {html_path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="knockoff", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="offline demo on a generated catalog and listings")
    demo.add_argument("--engine", default="auto", help="embedder name (default: auto)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--workdir", help="where to write the generated set (default: a temporary folder)")
    demo.add_argument("--json", help="also write every verdict to this JSON file")
    demo.set_defaults(func=_cmd_demo)

    engines = sub.add_parser("engines", help="list the embedding engines")
    engines.set_defaults(func=_cmd_engines)

    index = sub.add_parser("index", help="build reference indexes")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser("build", help="embed a catalog directory into an index directory")
    build.add_argument("catalog", help="directory with brands.csv and references.csv")
    build.add_argument("--out", required=True, help="index directory to write")
    build.add_argument("--engine", default="auto")
    build.add_argument("--strict", action="store_true", help="fail on the first bad catalog row")
    build.add_argument("--index-type", choices=["auto", "flat", "hnsw", "ivfpq"], default="auto",
                       help="FAISS index type (auto: exact flat below 1M vectors, HNSW or IVF-PQ beyond)")
    build.set_defaults(func=_cmd_index_build)

    check = sub.add_parser("check", help="check one listing")
    check.add_argument("images", nargs="+", help="the listing's photos")
    check.add_argument("--index", required=True)
    check.add_argument("--title")
    check.add_argument("--price", type=float)
    check.add_argument("--currency")
    check.add_argument("--seller")
    check.add_argument("--policy", help="policy JSON file")
    check.add_argument("--json", action="store_true", help="print the verdict as JSON")
    check.set_defaults(func=_cmd_check)

    scan = sub.add_parser("scan", help="scan a folder of listing photos (resumable)")
    scan.add_argument("folder", help="folder of photos, with an optional listings.csv")
    scan.add_argument("--index", required=True, help="index directory made by `knockoff index build`")
    scan.add_argument("--out", required=True, help="output directory (results.jsonl, results.csv, report.html)")
    scan.add_argument("--listings", help="listings CSV (default: listings.csv in the folder, if present)")
    scan.add_argument("--policy", help="policy JSON file (e.g. from `knockoff calibrate`)")
    scan.add_argument("--workers", type=int, help="decoding processes (default: CPUs - 1)")
    scan.add_argument("--batch-size", type=int, default=32)
    scan.add_argument("--no-progress", action="store_true", help="no progress bar, no progress log lines")
    scan.add_argument("--no-report", action="store_true", help="do not write results.csv and report.html")
    scan.add_argument("--backend", choices=["local", "ray"], default="local",
                      help="local worker processes (default), or Ray Data (pip install 'knockoff[ray]')")
    scan.add_argument("--address", help="Ray cluster address, e.g. ray://head:10001 (default: a local Ray instance)")
    scan.set_defaults(func=_cmd_scan)

    report = sub.add_parser("report", help="(re)write results.csv and report.html of a scan")
    report.add_argument("out_dir", help="a scan's output directory")
    report.set_defaults(func=_cmd_report)

    from knockoff.cli.evaluate import add_eval_commands

    add_eval_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_BAD_INPUT
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except KnockoffError as error:
        print(f"knockoff: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, FileNotFoundError) as error:
        print(f"knockoff: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
