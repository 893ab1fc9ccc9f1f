"""The offline demo: a small synthetic catalog and listings, checked end to end. With ``text=True`` (``knockoff
demo --text``) it also checks a few listings whose new photos show a brand's name printed, genuine or
misspelled, with text reading on (the default demo stays text-off and fast)."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from knockoff.catalog.readers import Brand, Catalog, Listing, read_listings
from knockoff.decide.detector import Detector
from knockoff.decide.policy import Policy
from knockoff.decide.verdict import VERDICTS, Verdict
from knockoff.embedders.base import create_embedder
from knockoff.evaluate.edits import load_font
from knockoff.evaluate.printed import misspell
from knockoff.match.index import build_index
from knockoff.match.text_index import match_key

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
    workdir: str | Path | None = None, *, engine: str = "auto", seed: int = 0, policy: Policy | None = None,
    text: bool = False,
) -> DemoResult:
    """Generate a small labeled set, index its catalog, and check every listing; with ``text`` (or a policy,
    given or the default, that reads text), also the printed-brand listings of :func:`text_listings` with text
    reading on."""
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
    if text or detector.policy.text.enabled:
        reading = Detector(index, replace(detector.policy, text=replace(detector.policy.text, enabled=True)))
        rows += [(label, kind, reading.check(listing)) for label, kind, listing in text_listings(set_dir, catalog)]
    confusion = Counter((label, v.verdict) for label, _, v in rows)
    return DemoResult(index.embedder.name, engine, set_dir, tuple(rows), dict(confusion))


def _poster(lines: tuple[str, ...], seed: int) -> Image.Image:
    """A new photo of a package with ``lines`` printed large (not a copy of any official photo)."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (640, 400), tuple(int(c) for c in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((32, 70 + 120 * number), line, font=load_font(60), fill=(20, 20, 30))
    return image


def _misspelled(brand: Brand, rng: np.random.Generator) -> str:
    """The brand's name with its longest word misspelled, unlike any of its aliases."""
    word = max(brand.name.split(), key=len)
    taken = {match_key(n) for n in (brand.name, *brand.aliases)} | {match_key(n) for n in brand.name.split()}
    for _ in range(100):
        wrong = misspell(word, rng)
        if match_key(wrong) not in taken and len(word) >= 4:
            return brand.name.replace(word, wrong)
    return brand.name.replace(word, word[::-1])


def text_listings(set_dir: Path, catalog: Catalog, n_brands: int = 2) -> list[tuple[str, str, Listing]]:
    """(label, kind, listing) of new photos that show a brand's name: printed right and sold by another seller
    (``counterfeit``), misspelled and sold by an authorized seller (``counterfeit``), printed right and sold
    by an authorized seller with a title and the brand's price (``genuine``). Photos go to ``text-listings/``."""
    folder = set_dir / "text-listings"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(7)
    out: list[tuple[str, str, Listing]] = []
    brands = [b for b in sorted(catalog.brands.values(), key=lambda b: b.key) if b.authorized_sellers][:n_brands]
    for number, brand in enumerate(brands):
        prices = sorted((r.price, r.currency) for r in catalog.references
                        if r.brand.casefold() == brand.key and r.price is not None)
        price, currency = prices[0] if prices else (None, None)
        seller = brand.authorized_sellers[0]
        cases = (("counterfeit", "text-brand-in-photo", brand.name.upper(), "shop-nobody", "new arrival"),
                 ("counterfeit", "text-misspelled", _misspelled(brand, rng).upper(), seller, f"{brand.name} pack"),
                 ("genuine", "text-brand-in-photo", brand.name.upper(), seller, f"{brand.name} pack"))
        for case, (label, kind, printed, who, title) in enumerate(cases):
            path = folder / f"T{number}{case}.png"
            _poster((printed, "ORIGINAL"), 100 * number + case).save(path)
            out.append((label, kind, Listing(images=(path,), listing_id=f"T{number}{case}", title=title,
                                             price=price, currency=currency, seller=who)))
    return out


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
