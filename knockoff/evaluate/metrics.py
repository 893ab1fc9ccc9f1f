"""Measure knockoff on a labeled set.

:func:`evaluate_set` builds the index from a labeled set's catalog and runs the real batch pipeline
(:func:`knockoff.run.scan.scan`, into a temporary directory) over its ``listings.csv``, reads the verdicts back
(:func:`knockoff.decide.verdict.read_verdicts`), then compares every verdict with the ground truth: precision,
recall and F1 of ``suspect`` against the ``counterfeit`` label, ROC-AUC and PR-AUC (average precision) of the
risk score, false flags per 10,000 genuine and unrelated listings, top-1 product accuracy, recall per ``kind``
and the throughput. Calibration is :mod:`knockoff.evaluate.calibrate`.

The metric functions (:func:`roc_auc`, :func:`average_precision`, ...) are pure numpy (no scikit-learn); they
follow scikit-learn's definitions, tied scores included.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from knockoff.catalog.readers import Catalog, LabeledListing, read_listings
from knockoff.decide.policy import Policy
from knockoff.decide.signals import RISK_CODES, VISUAL_MATCH
from knockoff.decide.verdict import Verdict, read_verdicts
from knockoff.errors import ConfigError, LabeledSetError

__all__ = [
    "EvaluationReport",
    "KindStats",
    "LabeledRun",
    "ListingOutcome",
    "average_precision",
    "evaluate_set",
    "outcome_of",
    "read_labeled_set",
    "scan_labeled_set",
    "precision_recall_f1",
    "pr_curve",
    "rate_per_10k",
    "roc_auc",
    "roc_curve",
]

log = logging.getLogger(__name__)

MATCHED = ("suspect", "authorized")
"""Verdicts that always mean the listing's photo matched a reference product (a ``review`` may or may not: a
match with signals that could not be checked, or a title that names a brand with no photo match)."""


# -- metrics (pure functions) ---------------------------------------------------------------------------------


def _as_arrays(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ConfigError(f"y_true and scores differ in length: {y.size} != {s.size}")
    if not np.all(np.isfinite(s)):
        raise ConfigError("scores must be finite")
    return y, s


def _cumulative_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives flagged at each distinct score, taken as the threshold (``score >= t``)."""
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s) != 0), y.size - 1] if y.size else np.array([], dtype=int)
    tps = np.cumsum(y)[last_of_group]
    fps = np.cumsum(~y)[last_of_group]
    return tps.astype(np.float64), fps.astype(np.float64), s[last_of_group]


def roc_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates, thresholds), starting at (0, 0); ties form one point."""
    y, s = _as_arrays(y_true, scores)
    tps, fps, thresholds = _cumulative_counts(y, s)
    n_pos, n_neg = y.sum(), (~y).sum()
    tpr = np.r_[0.0, tps / n_pos] if n_pos else np.zeros(tps.size + 1)
    fpr = np.r_[0.0, fps / n_neg] if n_neg else np.zeros(fps.size + 1)
    return fpr, tpr, np.r_[np.inf, thresholds]


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """Area under the ROC curve: the chance that a random positive outscores a random negative (a tie counts
    one half). None when only one class is present."""
    y, s = _as_arrays(y_true, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def pr_curve(y_true: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) at each distinct score, highest threshold first."""
    y, s = _as_arrays(y_true, scores)
    tps, fps, thresholds = _cumulative_counts(y, s)
    n_pos = y.sum()
    precision = tps / np.maximum(tps + fps, 1)
    recall = tps / n_pos if n_pos else np.zeros_like(tps)
    return precision, recall, thresholds


def average_precision(y_true: ArrayLike, scores: ArrayLike) -> float | None:
    """PR-AUC as average precision: sum over distinct thresholds of (recall gained) x (precision there),
    scikit-learn's definition (no interpolation). None when there is no positive."""
    y, s = _as_arrays(y_true, scores)
    if not y.any():
        return None
    precision, recall, _ = pr_curve(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def precision_recall_f1(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    """Precision, recall and F1 from counts; each None when undefined (nothing flagged, no positive)."""
    for name, value in (("tp", tp), ("fp", fp), ("fn", fn)):
        if value < 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def rate_per_10k(count: int, total: int) -> float | None:
    """``count`` out of ``total``, scaled to 10,000; None when ``total`` is 0."""
    return 10_000.0 * count / total if total else None


# -- the report -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingOutcome:
    """One listing's ground truth beside what knockoff decided."""

    listing_id: str
    label: str
    kind: str | None
    product_id: str | None
    verdict: str
    risk: float
    similarity: float | None
    matched_product: str | None
    verified: bool = False
    risk_codes: tuple[str, ...] = ()
    tier: str | None = None

    @property
    def matched(self) -> bool:
        return self.verdict in MATCHED or (self.verdict == "review" and self.tier is not None)

    @property
    def flagged(self) -> bool:
        return self.verdict == "suspect"

    @property
    def right_product(self) -> bool:
        return self.matched and self.product_id is not None and self.matched_product == self.product_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "listing_id": self.listing_id, "label": self.label, "kind": self.kind, "product_id": self.product_id,
            "verdict": self.verdict, "risk": self.risk, "similarity": self.similarity,
            "matched_product": self.matched_product, "verified": self.verified, "risk_codes": list(self.risk_codes),
            "tier": self.tier,
        }


@dataclass(frozen=True)
class KindStats:
    """Figures for the listings of one (kind, label): how many were flagged, matched, matched the right product."""

    kind: str
    label: str
    n: int
    flagged: int
    matched: int
    right_product: int

    @property
    def flag_rate(self) -> float:
        return self.flagged / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "n": self.n, "flagged": self.flagged,
                "matched": self.matched, "right_product": self.right_product, "flag_rate": round(self.flag_rate, 4)}


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True)
class EvaluationReport:
    """Everything :func:`evaluate_set` measured. Rates are None where undefined (e.g. no genuine listing)."""

    set_dir: str
    engine: str
    n_listings: int
    label_counts: Mapping[str, int]
    verdict_counts: Mapping[str, int]
    confusion: Mapping[str, Mapping[str, int]]
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    roc_auc: float | None
    pr_auc: float | None
    false_flags_per_10k_genuine: float | None
    false_flags_per_10k_unrelated: float | None
    false_matches_per_10k_unrelated: float | None
    top1_accuracy: float | None
    """Among listings with a ``product_id``: matched (suspect or authorized) to that very product."""
    top1_retrieval: float | None
    """Among listings with a ``product_id``: the best reference product is that product, threshold or not."""
    recall_by_kind: Mapping[str, float]
    per_kind: tuple[KindStats, ...]
    errors: int
    index_seconds: float
    scan_seconds: float
    listings_per_second: float | None
    policy: Mapping[str, Any] = field(default_factory=dict)
    outcomes: tuple[ListingOutcome, ...] = ()
    plots: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "set_dir": self.set_dir, "engine": self.engine, "n_listings": self.n_listings,
            "label_counts": dict(self.label_counts), "verdict_counts": dict(self.verdict_counts),
            "confusion": {k: dict(v) for k, v in self.confusion.items()},
            "tp": self.tp, "fp": self.fp, "fn": self.fn,
            "precision": _r(self.precision), "recall": _r(self.recall), "f1": _r(self.f1),
            "roc_auc": _r(self.roc_auc), "pr_auc": _r(self.pr_auc),
            "false_flags_per_10k_genuine": _r(self.false_flags_per_10k_genuine, 1),
            "false_flags_per_10k_unrelated": _r(self.false_flags_per_10k_unrelated, 1),
            "false_matches_per_10k_unrelated": _r(self.false_matches_per_10k_unrelated, 1),
            "top1_accuracy": _r(self.top1_accuracy), "top1_retrieval": _r(self.top1_retrieval),
            "recall_by_kind": {k: round(v, 4) for k, v in self.recall_by_kind.items()},
            "per_kind": [k.to_dict() for k in self.per_kind],
            "errors": self.errors, "index_seconds": round(self.index_seconds, 3),
            "scan_seconds": round(self.scan_seconds, 3), "listings_per_second": _r(self.listings_per_second, 2),
            "policy": dict(self.policy), "plots": list(self.plots),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def format_table(self) -> str:
        """A plain-text summary for a terminal."""

        def f(value: float | None, pattern: str = "{:.3f}") -> str:
            return "n/a" if value is None else pattern.format(value)

        labels = ", ".join(f"{n} {label}" for label, n in sorted(self.label_counts.items()))
        lines = [
            f"set       {self.set_dir}",
            f"engine    {self.engine}",
            f"listings  {self.n_listings} ({labels}); {self.errors} unreadable",
            "",
            f"{'precision':<34}{f(self.precision)}"
            + (" (no genuine or unrelated listing: none could be flagged wrongly)" if self.precision is None
               and self.tp else ""),
            f"{'recall':<34}{f(self.recall)}",
            f"{'F1':<34}{f(self.f1)}",
            f"{'ROC-AUC (risk score)':<34}{f(self.roc_auc)}",
            f"{'PR-AUC (average precision)':<34}{f(self.pr_auc)}",
            f"{'false flags / 10k genuine':<34}{f(self.false_flags_per_10k_genuine, '{:.0f}')}",
            f"{'false flags / 10k unrelated':<34}{f(self.false_flags_per_10k_unrelated, '{:.0f}')}",
            f"{'false matches / 10k unrelated':<34}{f(self.false_matches_per_10k_unrelated, '{:.0f}')}",
            f"{'top-1 product accuracy':<34}{f(self.top1_accuracy)}",
            f"{'top-1 retrieval (any similarity)':<34}{f(self.top1_retrieval)}",
            f"{'throughput':<34}{f(self.listings_per_second, '{:.1f} listings/s')}"
            f" (scan {self.scan_seconds:.1f} s, index {self.index_seconds:.1f} s)",
            "",
            f"{'kind':<24}{'label':<13}{'n':>5}{'flagged':>9}{'matched':>9}{'right':>7}",
        ]
        for k in self.per_kind:
            lines.append(f"{k.kind:<24}{k.label:<13}{k.n:>5}{k.flagged:>9}{k.matched:>9}{k.right_product:>7}")
        if self.plots:
            lines += ["", "plots: " + ", ".join(self.plots)]
        return "\n".join(lines)


# -- running a set through the pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledRun:
    """A labeled set scanned by the real pipeline: each listing with its ground truth and its verdict."""

    engine: str
    engine_kind: str
    verifier_on: bool
    labeled: tuple[LabeledListing, ...]
    verdicts: Mapping[str, Verdict]  # by listing id
    index_seconds: float
    scan_seconds: float


def read_labeled_set(set_dir: str | Path) -> list[LabeledListing]:
    """The labeled listings of a set (``listings.csv`` with a ``label`` on every row)."""
    set_dir = Path(set_dir)
    listings_csv = set_dir / "listings.csv"
    if not listings_csv.is_file():
        raise LabeledSetError(f"{set_dir}: not a labeled set (listings.csv is missing)")
    labeled = read_listings(listings_csv, strict=True)
    unlabeled = [item.listing.listing_id for item in labeled if not item.label]
    if unlabeled:
        raise LabeledSetError(f"{listings_csv}: {len(unlabeled)} listings have no label (first: {unlabeled[0]!r})")
    if not labeled:
        raise LabeledSetError(f"{listings_csv}: no listings")
    return labeled


def scan_labeled_set(set_dir: str | Path, detector: Any, *, workers: int = 0, index_seconds: float = 0.0) -> LabeledRun:
    """Scan a labeled set's listings with ``detector`` through :func:`knockoff.run.scan.scan` (into a temporary
    directory, removed afterwards) and read the verdicts back."""
    from knockoff.run.scan import RESULTS_FILE, scan

    root = Path(set_dir)
    labeled = read_labeled_set(root)
    with tempfile.TemporaryDirectory(prefix="knockoff-eval-") as tmp:
        summary = scan(root, detector.index, tmp, listings_csv=root / "listings.csv", workers=workers,
                       progress=False, detector=detector)
        verdicts = {v.listing_id: v for v in read_verdicts(Path(tmp) / RESULTS_FILE)}
    missing = [item.listing.listing_id for item in labeled if item.listing.listing_id not in verdicts]
    if missing:
        raise LabeledSetError(f"{root}: the scan gave no result for {len(missing)} listings (first {missing[0]!r})")
    index = detector.index
    return LabeledRun(index.embedder.name, index.embedder.kind, detector.verifier is not None, tuple(labeled),
                      verdicts, index_seconds, summary.seconds)


def build_set_index(set_dir: str | Path, engine: Any) -> tuple[Any, float]:
    """The index of a labeled set's catalog, and the seconds it took."""
    from knockoff.embedders.base import create_embedder
    from knockoff.match.index import build_index

    started = time.perf_counter()
    index = build_index(Catalog.from_dir(Path(set_dir), strict=True), create_embedder(engine))
    return index, time.perf_counter() - started


def outcome_of(item: LabeledListing, verdict: Verdict) -> ListingOutcome:
    """One listing's ground truth beside its verdict."""
    match = verdict.match
    visual = verdict.signal(VISUAL_MATCH)
    verified = bool(visual.details.get("verified")) if visual is not None else False
    codes = tuple(s.code for s in verdict.signals if s.hit and s.code in RISK_CODES)
    return ListingOutcome(
        listing_id=item.listing.listing_id, label=item.label, kind=item.kind, product_id=item.product_id,
        verdict=verdict.verdict, risk=verdict.risk, similarity=match.similarity if match else None,
        matched_product=match.product_id if match else None, verified=verified, risk_codes=codes,
        tier=match.tier if match else None,
    )


def summarize(
    outcomes: Sequence[ListingOutcome], *, set_dir: str = "", engine: str = "", index_seconds: float = 0.0,
    scan_seconds: float = 0.0, policy: Mapping[str, Any] | None = None,
) -> EvaluationReport:
    """Compute every figure of an :class:`EvaluationReport` from listing outcomes (a pure function)."""
    labels = [o.label for o in outcomes]
    positive = np.array([o.label == "counterfeit" for o in outcomes], dtype=bool)
    flagged = np.array([o.flagged for o in outcomes], dtype=bool)
    tp = int((positive & flagged).sum())
    fp = int((~positive & flagged).sum())
    fn = int((positive & ~flagged).sum())
    precision, recall, f1 = precision_recall_f1(tp, fp, fn)
    if not (~positive).any():  # nothing could be flagged wrongly: a precision of 1 would say nothing
        precision = f1 = None
    risks = [o.risk for o in outcomes]
    confusion: dict[str, Counter[str]] = {}
    for o in outcomes:
        confusion.setdefault(o.label, Counter())[o.verdict] += 1
    genuine = [o for o in outcomes if o.label == "genuine"]
    unrelated = [o for o in outcomes if o.label == "unrelated"]
    with_product = [o for o in outcomes if o.product_id and o.label != "unrelated"]
    groups: dict[tuple[str, str], list[ListingOutcome]] = {}
    for o in outcomes:
        groups.setdefault((o.kind or "(none)", o.label), []).append(o)
    per_kind = tuple(
        KindStats(kind, label, len(group), sum(o.flagged for o in group), sum(o.matched for o in group),
                  sum(o.right_product for o in group))
        for (kind, label), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    )
    recall_by_kind = {k.kind: k.flagged / k.n for k in per_kind if k.label == "counterfeit" and k.n}
    return EvaluationReport(
        set_dir=set_dir, engine=engine, n_listings=len(outcomes),
        label_counts=dict(sorted(Counter(labels).items())),
        verdict_counts=dict(sorted(Counter(o.verdict for o in outcomes).items())),
        confusion={label: dict(sorted(c.items())) for label, c in sorted(confusion.items())},
        tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1,
        roc_auc=roc_auc(positive, risks) if outcomes else None,
        pr_auc=average_precision(positive, risks) if positive.any() and not positive.all() else None,
        false_flags_per_10k_genuine=rate_per_10k(sum(o.flagged for o in genuine), len(genuine)),
        false_flags_per_10k_unrelated=rate_per_10k(sum(o.flagged for o in unrelated), len(unrelated)),
        false_matches_per_10k_unrelated=rate_per_10k(sum(o.matched for o in unrelated), len(unrelated)),
        top1_accuracy=(sum(o.right_product for o in with_product) / len(with_product)) if with_product else None,
        top1_retrieval=(sum(o.matched_product == o.product_id for o in with_product) / len(with_product))
        if with_product else None,
        recall_by_kind=recall_by_kind, per_kind=per_kind,
        errors=sum(o.verdict == "error" for o in outcomes),
        index_seconds=index_seconds, scan_seconds=scan_seconds,
        listings_per_second=len(outcomes) / scan_seconds if scan_seconds > 0 else None,
        policy=dict(policy or {}), outcomes=tuple(outcomes),
    )


def evaluate_set(
    set_dir: str | Path,
    engine: str = "auto",
    *,
    policy: Policy | None = None,
    out: str | Path | None = None,
    plot_dir: str | Path | None = None,
    workers: int = 0,
) -> EvaluationReport:
    """Index a labeled set's catalog, scan its listings with the real pipeline, and measure the verdicts.

    The listings go through :func:`knockoff.scan.scan` (into a temporary directory, removed afterwards), so the
    figures are those of ``knockoff scan``. ``workers``: decoding processes of the scan (0: in this process,
    best for small sets). ``out``: also write the report as JSON there. ``plot_dir``: also save
    ``roc.png``, ``pr.png`` and ``similarity.png`` there (needs matplotlib).
    The throughput counts the scan only (decode, embed, search, verify, decide), not the index build.
    """
    root = Path(set_dir)
    policy = policy or Policy()
    from knockoff.decide.detector import Detector

    index, index_seconds = build_set_index(root, engine)
    run = scan_labeled_set(root, Detector(index, policy), workers=workers, index_seconds=index_seconds)
    outcomes = [outcome_of(item, run.verdicts[item.listing.listing_id]) for item in run.labeled]
    report = summarize(outcomes, set_dir=str(root), engine=run.engine, index_seconds=run.index_seconds,
                       scan_seconds=run.scan_seconds, policy=policy.to_dict())
    if plot_dir is not None:
        report = replace(report, plots=tuple(str(p) for p in save_plots(report, plot_dir)))
    if out is not None:
        out_path = Path(out)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    return report


def operating_point(report: EvaluationReport) -> tuple[float | None, float | None, float | None]:
    """The policy's (false positive rate, recall, precision) on the set: where its ``suspect`` verdicts lie on
    the ROC and precision-recall curves (None where a class is missing)."""
    negatives = sum(n for label, n in report.label_counts.items() if label != "counterfeit")
    fpr = report.fp / negatives if negatives else None
    return fpr, report.recall, report.precision


def _policy_thresholds(report: EvaluationReport) -> dict[str, float]:
    """The policy's similarity thresholds for the report's engine (empty when the report has no policy)."""
    by_kind = report.policy.get("engine_thresholds") or {}
    found = by_kind.get(report.engine.split(":", 1)[0]) or by_kind.get("clip") or {}
    return {k: float(v) for k, v in found.items() if k in ("near_copy", "match", "candidate")}


def _risk_label(report: EvaluationReport) -> str:
    cut = report.policy.get("min_risk_to_flag")
    return "policy" + (f" (min_risk_to_flag {float(cut):.2f})" if cut is not None else "")


def roc_figure(report: EvaluationReport, positive: list[bool], risks: list[float]) -> Any:
    from matplotlib.figure import Figure

    fpr, tpr, _ = roc_curve(positive, risks)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, drawstyle="default", marker=".")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    point_fpr, point_recall, _ = operating_point(report)
    if point_fpr is not None and point_recall is not None:
        ax.plot([point_fpr], [point_recall], "o", color="crimson", label=_risk_label(report))
        ax.legend(loc="lower right")
    auc = "n/a" if report.roc_auc is None else f"{report.roc_auc:.3f}"
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC of the risk score (AUC {auc})")
    fig.tight_layout()
    return fig


def pr_figure(report: EvaluationReport, positive: list[bool], risks: list[float]) -> Any:
    from matplotlib.figure import Figure

    precision, recall, _ = pr_curve(positive, risks)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.step(np.r_[0.0, recall], np.r_[precision[0] if precision.size else 1.0, precision], where="post")
    _, point_recall, point_precision = operating_point(report)
    if point_recall is not None and point_precision is not None:
        ax.plot([point_recall], [point_precision], "o", color="crimson", label=_risk_label(report))
        ax.legend(loc="lower left")
    ap = "n/a: no negatives" if report.pr_auc is None else f"{report.pr_auc:.3f}"
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.05), title=f"precision-recall (AP {ap})")
    fig.tight_layout()
    return fig


def similarity_figure(report: EvaluationReport) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    bins = np.linspace(-0.2, 1.0, 49).tolist()
    for label in ("counterfeit", "genuine", "unrelated"):
        sims = [o.similarity for o in report.outcomes if o.label == label and o.similarity is not None]
        if sims:
            ax.hist(sims, bins=bins, alpha=0.5, label=f"{label} ({len(sims)})")
    for (name, value), style in zip(sorted(_policy_thresholds(report).items()), (":", "--", "-.")):
        ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"policy {name} {value:.2f}")
    ax.set(xlabel="similarity of the best reference", ylabel="listings", title=f"best-match similarity, {report.engine}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_plots(report: EvaluationReport, plot_dir: str | Path) -> list[Path]:
    """ROC and PR curves of the risk score with the policy's operating point, and a histogram of best-match
    similarity per label with the policy's thresholds, as PNG files. A curve that needs a class the set lacks
    (ROC: both; PR: counterfeit listings) is left out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    folder = Path(plot_dir)
    folder.mkdir(parents=True, exist_ok=True)
    positive = [o.label == "counterfeit" for o in report.outcomes]
    risks = [o.risk for o in report.outcomes]
    figures = []
    if any(positive) and not all(positive):
        figures.append(("roc.png", roc_figure(report, positive, risks)))
    if any(positive):
        figures.append(("pr.png", pr_figure(report, positive, risks)))
    figures.append(("similarity.png", similarity_figure(report)))
    written = []
    for name, fig in figures:
        FigureCanvasAgg(fig)
        fig.savefig(folder / name, dpi=100)
        written.append(folder / name)
    return written
