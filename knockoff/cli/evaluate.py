"""The ``evaluate``, ``calibrate`` and ``make-set`` subcommands of ``knockoff`` (added by :func:`add_eval_commands`).

Each command's function takes the parsed arguments and returns the exit code; it prints, the library does not.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from knockoff.errors import ConfigError

EXIT_OK, EXIT_TARGET_MISSED = 0, 1

SIZE_HELP = (
    "about this many listings: 3 products per brand, 3 listings per product (2 counterfeit, 1 genuine), "
    "and 20%% unrelated listings (default 46: 4 brands, as the demo)"
)


def size_to_arguments(size: int) -> dict[str, int]:
    """``make_labeled_set`` arguments for a set of about ``size`` listings."""
    if size < 4:
        raise ConfigError(f"--size must be at least 4, got {size}")
    n_unrelated = max(1, round(0.2 * size))
    n_brands = max(1, round((size - n_unrelated) / 9))
    return {"n_brands": n_brands, "products_per_brand": 3, "listings_per_product": 3, "n_unrelated": n_unrelated}


def _load_policy(path: str | None) -> Any:
    from knockoff.decide.policy import Policy

    return Policy.load(path) if path else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from knockoff.evaluate.metrics import evaluate_set

    if args.decisions:
        return _evaluate_decisions(args)
    report = evaluate_set(args.set_dir, args.engine, policy=_load_policy(args.policy), out=args.out,
                          plot_dir=args.plot, workers=args.workers)
    print(report.format_table())
    if args.out:
        print(f"\nmetrics written to {args.out}")
    return EXIT_OK


def _evaluate_decisions(args: argparse.Namespace) -> int:
    """``evaluate RESULTS_DIR --decisions decisions.csv``: the scan's verdicts against reviewers' decisions."""
    from knockoff.decide.policy import Policy
    from knockoff.evaluate.decisions import labeled_outcomes
    from knockoff.evaluate.metrics import save_plots, summarize
    from knockoff.report import iter_results
    from knockoff.report.decisions import read_decisions

    labels = labeled_outcomes(iter_results(args.set_dir), read_decisions(args.decisions))
    report = summarize(labels.outcomes, set_dir=str(args.set_dir), engine=", ".join(labels.engines),
                       policy=(_load_policy(args.policy) or Policy()).to_dict())
    if args.plot:
        report = replace(report, plots=tuple(str(p) for p in save_plots(report, args.plot)))
    print(report.format_table())
    print(f"\n{len(labels.outcomes)} decided listings used as labels; {labels.unsure} marked unsure left out"
          + (f"; {len(labels.unknown_listings)} decided listings are not in these results" if labels.unknown_listings
             else ""))
    if args.out:
        Path(args.out).write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    return EXIT_OK


def cmd_calibrate(args: argparse.Namespace) -> int:
    if args.decisions:
        from knockoff.evaluate.decisions import calibrate_on_decisions
        from knockoff.report.decisions import read_decisions

        result = calibrate_on_decisions(args.set_dir, read_decisions(args.decisions), args.target_precision,
                                        holdout=args.holdout, seed=args.seed, base_policy=_load_policy(args.policy))
    else:
        from knockoff.evaluate.calibrate import calibrate

        result = calibrate(args.set_dir, args.engine, args.target_precision, holdout=args.holdout, seed=args.seed,
                           base_policy=_load_policy(args.policy), workers=args.workers)
    print(result.format_text())
    path = result.policy.save(args.out)
    print(f"policy written to {path} (use it with `knockoff scan --policy {path}`)")
    if args.report:
        Path(args.report).write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return EXIT_OK if result.met_target else EXIT_TARGET_MISSED


def cmd_make_set(args: argparse.Namespace) -> int:
    if args.kind == "printed":
        from knockoff.evaluate.printed import make_printed_set

        printed = make_printed_set(args.out_dir, n_listings=args.size, seed=args.seed, image_size=args.image_size,
                                   overwrite=args.overwrite)
        print(f"wrote a printed-brand set to {printed.root}: {printed.n_listings} listings {printed.kind_counts}")
        return EXIT_OK
    if args.from_real:
        from knockoff.evaluate import realsets

        if not args.real_root:
            raise ConfigError("--from-real needs --real-root (the folder holding the real data sources)")
        if args.from_real == "copies":
            real = realsets.make_copy_set(args.out_dir, args.real_root, overwrite=args.overwrite)
        else:
            real = realsets.make_grocery_set(args.out_dir, args.real_root, split=args.split,
                                             max_listings=args.max_listings, seed=args.seed,
                                             overwrite=args.overwrite)
        print(f"wrote {real.name} to {real.root}: {real.n_references} references, {real.n_listings} listings "
              f"{real.label_counts}; {len(real.skipped)} files skipped")
        return EXIT_OK
    from knockoff.evaluate.synthetic import make_labeled_set

    size = size_to_arguments(args.size)
    info = make_labeled_set(args.out_dir, seed=args.seed, difficulty=args.difficulty, image_size=args.image_size,
                            overwrite=args.overwrite, n_brands=size["n_brands"],
                            products_per_brand=size["products_per_brand"],
                            listings_per_product=size["listings_per_product"], n_unrelated=size["n_unrelated"])
    print(f"wrote a {info.difficulty} set to {info.root}: {info.n_brands} brands, {info.n_products} products, "
          f"{info.n_listings} listings {info.label_counts}")
    return EXIT_OK


def add_eval_commands(subparsers: Any, engine_help: str = "embedder name (default: auto)") -> None:
    """Add ``evaluate``, ``calibrate`` and ``make-set`` to the ``knockoff`` command's subparsers."""
    evaluate = subparsers.add_parser(
        "evaluate", help="measure knockoff on a labeled set (precision, recall, AUCs, per kind, throughput)")
    evaluate.add_argument("set_dir", help="labeled set: brands.csv, references.csv, listings.csv with labels")
    evaluate.add_argument("--engine", default="auto", help=engine_help)
    evaluate.add_argument("--policy", help="policy JSON file (e.g. from `knockoff calibrate`); with --decisions, "
                                           "the policy the scan used (its thresholds are drawn on the plots)")
    evaluate.add_argument("--out", help="also write every figure (and each listing's outcome) to this JSON file")
    evaluate.add_argument("--plot", metavar="DIR", help="save roc.png, pr.png and similarity.png into DIR")
    evaluate.add_argument("--workers", type=int, default=0, help="decoding processes (default 0: in process)")
    evaluate.add_argument("--decisions", metavar="FILE",
                          help="decisions.csv exported from a report: SET_DIR is then a scan's output directory, "
                               "whose verdicts are measured against the reviewers' decisions")
    evaluate.set_defaults(func=cmd_evaluate)

    calib = subparsers.add_parser(
        "calibrate", help="choose policy thresholds on a labeled set for a target precision",
        description="Choose the engine's similarity thresholds and min_risk_to_flag for the highest recall at "
                    "the target precision. Measuring on the set you calibrated on is optimistic: use --holdout "
                    "or evaluate on another set. With --decisions, a scan's verdicts and a team's review marks "
                    "are the labeled set. Exit code 1 when the target precision is not reached.")
    calib.add_argument("set_dir", help="labeled set (with --decisions: a scan's output directory)")
    calib.add_argument("--engine", default="auto", help=engine_help)
    calib.add_argument("--target-precision", type=float, default=0.99,
                       help="the precision the chosen thresholds must reach (default: 0.99)")
    calib.add_argument("--out", default="policy.json", help="policy file to write (default: policy.json)")
    calib.add_argument("--holdout", type=float, default=0.0,
                       help="fraction of the listings kept aside to measure the calibrated policy (e.g. 0.3)")
    calib.add_argument("--seed", type=int, default=0, help="seed of the holdout split")
    calib.add_argument("--policy", help="base policy file (other settings are kept from it)")
    calib.add_argument("--report", help="also write the calibration figures to this JSON file")
    calib.add_argument("--workers", type=int, default=0, help="decoding processes (default 0: in process)")
    calib.add_argument("--decisions", metavar="FILE",
                       help="decisions.csv exported from a report: the labels are the reviewers' marks on the scan "
                            "in SET_DIR (counterfeit / not counterfeit; unsure left out), without scanning again; pass "
                            "the policy the scan used with --policy (--engine and --workers are not used)")
    calib.set_defaults(func=cmd_calibrate)

    make = subparsers.add_parser("make-set", help="write a synthetic (or real-image) labeled set")
    make.add_argument("out_dir", help="folder to write the set into (created; see --overwrite)")
    make.add_argument("--size", type=int, default=46, help=SIZE_HELP)
    make.add_argument("--seed", type=int, default=0,
                      help="seed: the same seed writes the same set (also the grocery sample; default: 0)")
    make.add_argument("--difficulty", choices=("demo", "hard"), default="demo",
                      help="hard: look-alike products, own photos, no-name products among the unrelated")
    make.add_argument("--image-size", type=int, default=320, help="longer side of the official photos")
    make.add_argument("--overwrite", action="store_true", help="replace a set already in OUT_DIR")
    make.add_argument("--kind", choices=("catalog", "printed"), default="catalog",
                      help="printed: photos with a brand name printed, genuine or misspelled, or unrelated text "
                           "(--size listings), for text reading")
    make.add_argument("--from-real", choices=("copies", "grocery"),
                      help="build the set from real images instead (see shared/data/real/SOURCES.md)")
    make.add_argument("--real-root", help="folder with the real data sources (for --from-real)")
    make.add_argument("--split", choices=("val", "train"), default="val", help="grocery store photos to use")
    make.add_argument("--max-listings", type=int, help="grocery: sample at most this many store photos")
    make.set_defaults(func=cmd_make_set)
