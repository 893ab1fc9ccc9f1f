"""Replay ``packaging.min_product_detail`` on a ``bench_grocery_fusion.py`` run's every-photo file.

    python benchmarks/replay_product_detail.py benchmarks/out/grocery_fusion.NAME.rows.json [--policy packaging]

The rule (:func:`knockoff.match.siblings.product_check`) only decides whether a winning package names its product
or its brand, from one number per photo the run records (``<policy>_detail``: the small print the matched
official photo's match reproduces; ``<policy>_reference``: that photo). So for the ``packaging`` policy (no text)
the right-product and sibling rates at another minimum follow from the rows without running the detector again:
a photo whose package named a product keeps it when its detail reaches the minimum, else names the brand; a photo
that named the brand only because of the rule (``<policy>_unproven``) names the matched photo's product when its
detail reaches it. Not exact for the ``both`` policy (the photo's words may name a product the package did not).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import markdown_table, write_results  # noqa: E402

MINIMA = (0.0, 0.45, 0.5, 0.55, 0.57, 0.6, 0.65)


def product_of(label: str | None) -> str | None:
    """The grocerystore product of an official photo's label (``images/<Product>_Iconic.jpg``)."""
    return Path(label).name.rsplit("_Iconic", 1)[0] if label else None


def replayed(row: dict[str, Any], policy: str, minimum: float) -> str:
    """The photo's outcome under ``policy`` with ``min_product_detail`` = ``minimum``."""
    outcome, detail = row[policy], row.get(f"{policy}_detail")
    named = outcome in ("right", "sibling")
    demoted = outcome == "brand-only" and row.get(f"{policy}_unproven")
    if not (named or demoted) or "(same-package)" not in (row.get(f"{policy}_pick") or ""):
        return outcome
    if detail is not None and detail >= minimum or minimum <= 0:
        return "right" if product_of(row.get(f"{policy}_reference")) == row["product"] else "sibling"
    return "brand-only"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path)
    parser.add_argument("--policy", default="packaging")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    store = json.loads(args.rows.read_text(encoding="utf-8"))["store"]
    table = []
    for split in ("val", "train"):
        rows = [r for r in store if r["split"] == split]
        for minimum in MINIMA:
            outcomes = [replayed(r, args.policy, minimum) for r in rows]
            table.append([split, minimum, len(rows), round(outcomes.count("right") / len(rows), 3),
                          outcomes.count("sibling"), outcomes.count("brand-only")])
    md = (f"# The product rule replayed on {args.rows.name} ({args.policy})\n\n{__doc__.split(chr(10) * 2, 2)[2]}\n"
          + markdown_table(["split", "min_product_detail", "photos", "right product", "sibling", "brand only"], table)
          + "\n")
    name = args.name or f"product_detail_replay.{args.policy}"
    write_results(name, {"rows": str(args.rows.name), "policy": args.policy, "table": table}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
