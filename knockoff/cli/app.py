"""The ``knockoff`` command, thin over the library.

Exit codes: 0 nothing needs a person, 1 suspect or review verdicts found, 2 bad usage or bad input files,
3 an internal error (a bug: one line on stderr, the traceback with -v).
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
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from knockoff import __version__
from knockoff.embedders.base import list_embedders
from knockoff.errors import KnockoffError

EXIT_OK, EXIT_SUSPECT, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_NEEDS_PERSON = EXIT_SUSPECT  # a suspect or a review verdict: someone must look

VERBOSE_HELP = "more log output (-vv for debug; also a traceback on an internal error)"

log = logging.getLogger("knockoff.cli.app")


def _policy(args: argparse.Namespace):
    from knockoff.decide.policy import Policy

    return Policy.load(args.policy) if getattr(args, "policy", None) else None


def _cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from knockoff.evaluate.demo import format_demo, run_demo

    with tempfile.TemporaryDirectory(prefix="knockoff-demo-") as scratch:  # removed, even when the demo fails
        result = run_demo(args.workdir or scratch, engine=args.engine, seed=args.seed, text=args.text)
        print(format_demo(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    print(f"generated set: {result.set_dir}" if args.workdir else
          "the generated set was in a temporary folder, now removed (--workdir DIR keeps it)")
    return EXIT_OK


def _cmd_engines(args: argparse.Namespace) -> int:
    from knockoff.embedders.base import describe_embedders

    for name, text in describe_embedders().items():
        print(f"{name:<12} {text}")
    return EXIT_OK


def _cmd_index_build(args: argparse.Namespace) -> int:
    from knockoff.catalog.readers import Catalog
    from knockoff.match.index import build_index, check_save_target

    check_save_target(args.out)  # before the build: never over a folder that is not an index (exit 2)
    policy = _policy(args)
    shortlist = None if policy is None else policy.shortlist.build_params()
    catalog = Catalog.from_dir(args.catalog, strict=args.strict)
    if args.backend == "ray":
        from knockoff.match.ray_build import build_index_ray

        index = build_index_ray(catalog, args.engine, index_type=args.index_type, read_text=args.text,
                                shortlist=shortlist)
    else:
        index = build_index(catalog, args.engine, index_type=args.index_type, read_text=args.text,
                            shortlist=shortlist)
    index.save(args.out)
    texts = index.reference_texts
    print(
        f"indexed {len(index)} reference images of {len(catalog.products)} products "
        f"({index.vector_count} vectors, engine {index.embedder.name}) into {args.out}; "
        f"{len(catalog.problems)} bad catalog rows and {len(index.skipped)} unreadable images skipped"
        + (f"; text read from {len(texts.photos) - len(texts.unreadable)} photos" if texts is not None else "")
    )
    return EXIT_BAD_INPUT if (catalog.problems or index.skipped) and args.strict else EXIT_OK


def _cmd_index_verify(args: argparse.Namespace) -> int:
    """Hash every file of an index against its manifest (whatever the file stamps say) and check the files
    against one another: exit 0 when all is well, 2 naming the damaged or missing file."""
    from knockoff.match.index_check import verify_index

    index = verify_index(args.path)
    hashed, seconds = (len(index.checked.hashed), index.checked.seconds) if index.checked else (0, 0.0)
    print(f"{args.path}: {len(index)} reference photos, {index.vector_count} vectors; all {hashed} files hashed "
          f"and match the manifest ({seconds:.1f} s); the files agree with one another")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from knockoff.catalog.readers import Listing
    from knockoff.decide.detector import Detector
    from knockoff.match.index import ReferenceIndex

    detector = Detector(ReferenceIndex.load(args.index, mmap=True), _policy(args))  # read only: mapped
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
    from knockoff.decide.rule import needs_person

    return EXIT_NEEDS_PERSON if needs_person(verdict) else EXIT_OK


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
        from knockoff.report import write_reports

        print(f"report: {write_reports(args.out).html}")
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


# Loggers whose INFO lines a user sees without -v: a long, silent wait explained (the OCR models derived at first use).
NOTICE_LOGGERS = ("knockoff.match.ocr_int8",)


@contextlib.contextmanager
def _notices_shown(level: int) -> Iterator[None]:
    """Let :data:`NOTICE_LOGGERS` log at INFO (or ``level``, when lower) while a command runs."""
    loggers = [logging.getLogger(name) for name in NOTICE_LOGGERS]
    saved = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(min(level, logging.INFO))
    try:
        yield
    finally:
        for logger, old in zip(loggers, saved):
            logger.setLevel(old)


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
    if summary.index_check:
        lines.append(f"index checksums: {summary.index_check}")
    return lines


def _cmd_policy_show(args: argparse.Namespace) -> int:
    from knockoff.decide.policy import Policy

    print((_policy(args) or Policy()).to_json(), end="")
    return EXIT_OK


def _cmd_policy_write(args: argparse.Namespace) -> int:
    from knockoff.decide.policy import Policy
    from knockoff.errors import PolicyError

    path = Path(args.file)
    if path.exists() and not args.force:
        raise PolicyError(f"{path} exists; pass --force to replace it")
    Policy().save(path)
    print(f"wrote the default policy to {path}; edit it and pass it with --policy {path}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from knockoff.report import write_reports

    files = write_reports(args.out_dir, one_file=args.one_file, title=args.title)
    kind = "one self-contained page" if files.folder is None else f"its data and thumbnails in {files.folder}"
    print(f"wrote {files.csv} and {files.html} ({files.listings:,} listings; {kind})")
    return EXIT_OK


def _add_report_command(sub: Any) -> None:
    report = sub.add_parser("report", help="(re)write results.csv and report.html of a scan")
    report.add_argument("out_dir", help="a scan's output directory")
    layout = report.add_mutually_exclusive_group()
    layout.add_argument("--one-file", dest="one_file", action="store_true", default=None,
                        help="one self-contained report.html, photos inline (default up to 200 listings)")
    layout.add_argument("--folder", dest="one_file", action="store_false",
                        help="report.html plus a report/ folder of data and thumbnails (default beyond 200)")
    report.add_argument("--title", default="knockoff report", help="the page's title")
    report.set_defaults(func=_cmd_report)


def _add_policy_commands(sub: Any) -> None:
    policy = sub.add_parser("policy", help="show the effective policy, or write the defaults to a file to edit")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    show = policy_sub.add_parser("show", help="print the effective policy as JSON")
    show.add_argument("--policy", help="policy JSON file (keys left out keep their defaults)")
    show.set_defaults(func=_cmd_policy_show)
    write = policy_sub.add_parser("write", help="write the default policy as JSON, to edit and pass with --policy")
    write.add_argument("file", help="the JSON file to write")
    write.add_argument("--force", action="store_true", help="replace the file if it exists")
    write.set_defaults(func=_cmd_policy_write)


def engine_help(default: str = "auto") -> str:
    """Help text of an ``--engine`` option: the valid embedder names."""
    return f"embedder: {', '.join(list_embedders())}, or e.g. clip:MODEL/PRETRAINED (default: {default})"


def _add_verbose_to_subcommands(parser: argparse.ArgumentParser) -> None:
    """Accept ``-v`` after the subcommand too (``knockoff scan ... -v``), on every subcommand at any depth."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                subparser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=VERBOSE_HELP)
                _add_verbose_to_subcommands(subparser)


def build_parser() -> argparse.ArgumentParser:
    """The ``knockoff`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="knockoff", description="Find counterfeit product listings from their photos.",
        epilog="exit codes: 0 nothing needs a person, 1 suspect or review verdicts found, 2 bad usage or bad input, "
               "3 internal error (a bug; -v shows the traceback)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo_and_engines(sub)
    _add_index_command(sub)
    _add_check_command(sub)
    _add_scan_command(sub)

    _add_report_command(sub)
    _add_policy_commands(sub)

    from knockoff.cli.evaluate import add_eval_commands

    add_eval_commands(sub, engine_help())
    _add_verbose_to_subcommands(parser)
    return parser


def _add_demo_and_engines(sub: Any) -> None:
    demo = sub.add_parser("demo", help="offline demo on a generated catalog and listings")
    demo.add_argument("--engine", default="auto", help=engine_help())
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated catalog and listings (default: 0)")
    demo.add_argument("--workdir", help="where to write the generated set (default: a temporary folder)")
    demo.add_argument("--json", help="also write every verdict to this JSON file")
    demo.add_argument("--text", action="store_true",
                      help="also check the listings whose photos show a brand's name with text reading on, even "
                           "when the policy turns it off (text reading is on by default: they are checked anyway)")
    demo.set_defaults(func=_cmd_demo)

    engines = sub.add_parser("engines", help="list the embedding engines (the names --engine takes)")
    engines.set_defaults(func=_cmd_engines)


def _add_index_command(sub: Any) -> None:
    index = sub.add_parser("index", help="build or verify reference indexes")
    index_sub = index.add_subparsers(dest="index_command", required=True)
    build = index_sub.add_parser("build", help="embed a catalog directory into an index directory")
    build.add_argument("catalog", help="directory with brands.csv and references.csv")
    build.add_argument("--out", required=True, help="index directory to write")
    build.add_argument("--engine", default="auto", help=engine_help())
    build.add_argument("--strict", action="store_true", help="fail on the first bad catalog row")
    build.add_argument("--index-type", choices=["auto", "flat", "hnsw", "ivfpq"], default="auto",
                       help="FAISS index type (auto: exact flat below 1M vectors, HNSW or IVF-PQ beyond)")
    build.add_argument("--text", action="store_true",
                       help="also read and keep the text of every reference photo, for policies with text.enabled "
                            "(slow: about a second a photo on 2 cores)")
    build.add_argument("--backend", choices=["local", "ray"], default="local",
                       help="where the photos are embedded and their keypoints extracted: this process, or Ray "
                            "tasks (a running cluster, else all local CPUs); the same index either way")
    build.add_argument("--policy", help="policy JSON file whose keypoint shortlist settings (shortlist.per_reference, "
                                        "flat_limit, compress_above, pq_bytes) the stored shortlist is built with")
    build.set_defaults(func=_cmd_index_build)
    verify = index_sub.add_parser("verify", help="hash every file of an index against its manifest (loads skip "
                                                 "the files whose stamps show them unchanged since such a check)")
    verify.add_argument("path", help="index directory")
    verify.set_defaults(func=_cmd_index_verify)


def _add_check_command(sub: Any) -> None:
    check = sub.add_parser("check", help="check one listing")
    check.add_argument("images", nargs="+", help="the listing's photos")
    check.add_argument("--index", required=True, help="index directory made by `knockoff index build`")
    check.add_argument("--title", help="the listing's title (checked for the brand, misspellings, replica terms)")
    check.add_argument("--price", type=float, help="the listing's price (compared with the reference price)")
    check.add_argument("--currency", help="currency of --price, e.g. USD (without it, the price check is unknown "
                       "unless the reference has no currency either)")
    check.add_argument("--seller", help="the seller's id (checked against the brand's authorized sellers)")
    check.add_argument("--policy", help="policy JSON file (e.g. from `knockoff calibrate`)")
    check.add_argument("--json", action="store_true", help="print the verdict as JSON")
    check.set_defaults(func=_cmd_check)


def _add_scan_command(sub: Any) -> None:
    scan = sub.add_parser("scan", help="scan a folder of listing photos (resumable)")
    scan.add_argument("folder", help="folder of photos, with an optional listings.csv")
    scan.add_argument("--index", required=True, help="index directory made by `knockoff index build`")
    scan.add_argument("--out", required=True, help="output directory (results.jsonl, results.csv, report.html)")
    scan.add_argument("--listings", help="listings CSV (default: listings.csv in the folder, if present)")
    scan.add_argument("--policy", help="policy JSON file (e.g. from `knockoff calibrate`)")
    scan.add_argument("--workers", type=int, help="decoding processes (default: CPUs - 1)")
    scan.add_argument("--batch-size", type=int, default=32, help="photos embedded together (default: 32)")
    scan.add_argument("--no-progress", action="store_true", help="no progress bar, no progress log lines")
    scan.add_argument("--no-report", action="store_true", help="do not write results.csv and report.html")
    scan.add_argument("--backend", choices=["local", "ray"], default="local",
                      help="local worker processes (default), or Ray Data (pip install 'knockoff[ray]')")
    scan.add_argument("--address", help="Ray cluster address, e.g. ray://head:10001 (default: a local Ray instance)")
    scan.set_defaults(func=_cmd_scan)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 nothing suspect, 1 suspects, 2 bad input, 3 a bug)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_BAD_INPUT
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        with _notices_shown(level):
            return int(args.func(args))
    except KnockoffError as error:
        print(f"knockoff: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # a path the user gave cannot be read or written
        print(f"knockoff: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - a bug: one line, the traceback only with -v
        return _internal_error(error, args.verbose)


def _internal_error(error: Exception, verbose: int) -> int:
    """Report an unexpected exception (a bug in knockoff) and return the internal-error exit code."""
    if verbose:
        traceback.print_exception(error, file=sys.stderr)
    print(f"knockoff: internal error (a bug, please report it): {type(error).__name__}: {error}"
          + ("" if verbose else " (run with -v for the traceback)"), file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
