"""The ``knockoff`` command, thin over the library.

Exit codes: 0 nothing needs a person, 1 suspect or review verdicts found, 2 bad usage or bad input files.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from knockoff.errors import KnockoffError

EXIT_OK, EXIT_NEEDS_PERSON, EXIT_BAD_INPUT = 0, 1, 2

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
    from knockoff.decide.rule import needs_person

    return EXIT_NEEDS_PERSON if needs_person(verdict) else EXIT_OK


def _cmd_scan(args: argparse.Namespace) -> int:
    from knockoff.run.scan import scan

    summary = scan(args.folder, args.index, args.out, policy=_policy(args), listings_csv=args.listings,
                   workers=args.workers, batch_size=args.batch_size,
                   progress=False if args.no_progress else None, engine=args.engine, address=args.address)
    if not args.no_report:
        from knockoff.report.render import write_reports

        write_reports(args.out)
    counts = ", ".join(f"{n} {v}" for v, n in sorted(summary.counts.items()))
    print(f"scanned {summary.total} listings ({summary.already_done} done before, {summary.decided} now): "
          f"{counts or 'nothing'}; results in {summary.results_path}")
    if summary.bad_rows:
        print(f"{len(summary.bad_rows)} bad rows of the listings file were skipped (see the log above)")
    from knockoff.decide.rule import needs_person

    return EXIT_NEEDS_PERSON if any(n for name, n in summary.counts.items() if needs_person(name)) else EXIT_OK


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
    from knockoff.report.render import write_reports

    csv_path, html_path = write_reports(args.out_dir)
    print(f"wrote {csv_path} and {html_path}")
    return EXIT_OK


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
    scan.add_argument("--no-progress", action="store_true", help="no progress bar")
    scan.add_argument("--no-report", action="store_true", help="do not write results.csv and report.html")
    scan.add_argument("--engine", choices=["local", "ray"], default="local",
                      help="local worker processes (default), or Ray Data (pip install 'knockoff[ray]')")
    scan.add_argument("--address", help="Ray cluster address, e.g. ray://head:10001 (default: a local Ray instance)")
    scan.set_defaults(func=_cmd_scan)

    _add_policy_commands(sub)
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
