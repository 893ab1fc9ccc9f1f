"""The offline demo: a small synthetic catalog and listings, checked end to end."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knockoff.catalog.readers import Catalog, read_listings
from knockoff.decide.detector import Detector
from knockoff.decide.policy import Policy
from knockoff.decide.verdict import VERDICTS, Verdict
from knockoff.embedders.base import create_embedder
from knockoff.match.index import build_index

EXPECTED = {"counterfeit": "suspect", "genuine": "authorized", "unrelated": "no_match"}
"""The verdict each label should get. The demo's genuine listings name an authorized seller, a price in the
reference's currency and a title, so every signal can be checked: they are ``authorized``, not ``review``."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the engine, each listing's label and verdict, and the confusion counts."""

    engine: str
    requested_engine: str
    set_dir: Path
    rows: tuple[tuple[str, str, Verdict], ...]  # (label, kind, verdict)
    confusion: dict[tuple[str, str], int]

    @property
    def correct(self) -> int:
        return sum(1 for label, _, v in self.rows if EXPECTED.get(label) == v.verdict)

    @property
    def counts(self) -> Counter[str]:
        return Counter(v.verdict for _, _, v in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "requested_engine": self.requested_engine,
            "set_dir": str(self.set_dir),
            "counts": dict(self.counts),
            "correct": self.correct,
            "total": len(self.rows),
            "confusion": {f"{label}->{verdict}": n for (label, verdict), n in self.confusion.items()},
            "listings": [{"label": label, "kind": kind, **v.to_dict()} for label, kind, v in self.rows],
        }


def run_demo(
    workdir: str | Path | None = None, *, engine: str = "auto", seed: int = 0, policy: Policy | None = None
) -> DemoResult:
    """Generate a small labeled set, index its catalog, and check every listing."""
    from knockoff.evaluate.synthetic import make_labeled_set

    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="knockoff-demo-"))
    set_dir = root / "demo-set"
    make_labeled_set(set_dir, seed=seed)
    catalog = Catalog.from_dir(set_dir)
    index = build_index(catalog, create_embedder(engine))
    detector = Detector(index, policy)
    rows = []
    for labeled in read_listings(set_dir / "listings.csv"):
        rows.append((labeled.label, labeled.kind or "", detector.check(labeled.listing)))
    confusion = Counter((label, v.verdict) for label, _, v in rows)
    return DemoResult(index.embedder.name, engine, set_dir, tuple(rows), dict(confusion))


def format_demo(result: DemoResult, *, width: int = 110) -> str:
    """The demo's table of verdicts with reasons, the confusion counts and a summary line."""
    lines = [f"{'listing':<14} {'label':<12} {'verdict':<11} {'risk':>5}  reasons", "-" * width]
    order = {name: rank for rank, name in enumerate(VERDICTS)}
    for label, kind, verdict in sorted(result.rows, key=lambda r: (order[r[2].verdict], -r[2].risk)):
        reasons = verdict.reasons
        first = reasons[0].message if reasons else ""
        mark = "" if EXPECTED.get(label) == verdict.verdict else "  <-- expected " + EXPECTED.get(label, "?")
        lines.append(f"{verdict.listing_id:<14} {label:<12} {verdict.verdict:<11} {verdict.risk:>5.2f}  {first}{mark}")
        for reason in reasons[1:]:
            lines.append(f"{'':<46}{reason.message}")
    lines.append("-" * width)
    lines.append("confusion (label -> verdict):")
    for label in ("counterfeit", "genuine", "unrelated"):
        cells = ", ".join(f"{v}={result.confusion.get((label, v), 0)}" for v in VERDICTS)
        lines.append(f"  {label:<12} {cells}")
    counts = result.counts
    lines.append(
        f"summary: {len(result.rows)} listings: {counts.get('suspect', 0)} suspect, {counts.get('review', 0)} "
        f"review, {counts.get('authorized', 0)} authorized, {counts.get('no_match', 0)} no match, "
        f"{counts.get('error', 0)} error; "
        f"{result.correct}/{len(result.rows)} as labeled; engine: {result.engine}{_why(result)}"
    )
    return "\n".join(lines)


def _why(result: DemoResult) -> str:
    if result.requested_engine != "auto":
        return ""
    if result.engine.startswith("clip"):
        return " (auto: CLIP weights found)"
    return " (auto: no CLIP weights found, so the weight-free engine; see weights/README.md for CLIP)"
