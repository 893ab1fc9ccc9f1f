"""Calibrate a policy on a labeled set: the engine's ``near_copy`` and ``match`` similarity thresholds and
``min_risk_to_flag`` with the highest recall of ``suspect`` on ``counterfeit`` listings at a target precision.

How: the set is scanned once with a permissive policy (every candidate that is verified, is the same package or
reaches the ``candidate`` similarity counts as a match), which fixes each listing's best reference and what the
decision depends on (:class:`Evidence`: the similarity, the geometric proof, the signals). The verdicts under
any threshold setting then follow from that evidence by the detector's own decision rule
(:func:`knockoff.decide.signals.tier_index` for the tier, :func:`knockoff.decide.rule.decide` for the verdict),
so the search is exhaustive and fast, and its verdicts are the detector's (:func:`simulate`; tested).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.decide import rule
from knockoff.decide.policy import EngineThresholds, Policy
from knockoff.decide.signals import (
    REPLICA_TERMS,
    TEXT_RISK_CODES,
    TEXT_TIER,
    TIERS,
    VISUAL_MATCH,
    Signal,
    guessed_copy,
    match_tier,
    replica_terms,
    tier_index,
)
from knockoff.decide.verdict import Verdict
from knockoff.errors import ConfigError, LabeledSetError
from knockoff.evaluate.metrics import build_set_index, precision_recall_f1, scan_labeled_set

__all__ = ["CalibrationResult", "Evidence", "EvidenceRun", "calibrate", "collect_evidence", "check_arguments",
           "evidence_of", "fit_thresholds", "permissive_policy", "simulate"]


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


@dataclass(frozen=True)
class CalibrationResult:
    """The calibrated policy and what it is expected to do.

    ``expected_*`` are measured on the listings the thresholds were chosen on (optimistic); ``holdout_*`` on
    the listings kept aside (None without a holdout); ``default_*`` are the base policy's on the fit listings.
    """

    policy: Policy
    engine: str
    engine_kind: str
    target_precision: float
    met_target: bool
    expected_precision: float | None
    expected_recall: float | None
    n_fit: int
    holdout_precision: float | None
    holdout_recall: float | None
    n_holdout: int
    default_precision: float | None
    default_recall: float | None
    thresholds: Mapping[str, float]
    notes: tuple[str, ...] = ()  # what the labels left out or what limited the search

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "engine_kind": self.engine_kind, "target_precision": self.target_precision,
            "met_target": self.met_target, "expected_precision": _r(self.expected_precision),
            "expected_recall": _r(self.expected_recall), "n_fit": self.n_fit,
            "holdout_precision": _r(self.holdout_precision), "holdout_recall": _r(self.holdout_recall),
            "n_holdout": self.n_holdout, "default_precision": _r(self.default_precision),
            "default_recall": _r(self.default_recall), "thresholds": dict(self.thresholds),
            "policy": self.policy.to_dict(), "notes": list(self.notes),
        }

    def format_text(self) -> str:
        def f(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        t = self.thresholds
        lines = [
            f"engine {self.engine}: near_copy {t['near_copy']:.4f}, match {t['match']:.4f}, "
            f"candidate {t['candidate']:.4f}, min_risk_to_flag {t['min_risk_to_flag']:.4f}",
            f"on the {self.n_fit} calibration listings: precision {f(self.expected_precision)}, recall "
            f"{f(self.expected_recall)} (default policy: precision {f(self.default_precision)}, recall "
            f"{f(self.default_recall)})",
        ]
        if not self.met_target:
            lines.append(f"target precision {self.target_precision} NOT reached; the most precise setting is kept")
        if self.n_holdout:
            lines.append(f"on the {self.n_holdout} held-out listings: precision {f(self.holdout_precision)}, "
                         f"recall {f(self.holdout_recall)}")
        else:
            lines.append("measured on the same listings it was fitted on: expect less on new data "
                         "(use --holdout for an honest figure)")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


# -- evidence and simulation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    """What a listing's verdict depends on once its best candidate is fixed.

    ``similarity`` (-inf without a candidate), ``verified`` and ``same_package``: the tier's inputs;
    ``risk_signals``: the signals of the best candidate's product (used when the tier is a match);
    ``title_signals``: what the listing rests on when no photo matches: its title's signals, or with text
    reading on the signals of the brand its photos' text names (then ``fallback_tier`` is ``text``);
    ``unread_signals``: with text reading on, the risk signals before the text is read (the detector reads no
    text for a listing they make a suspect already); ``error``: no photo could be read.
    """

    listing_id: str
    label: str
    similarity: float
    verified: bool
    same_package: bool
    risk_signals: tuple[Signal, ...]
    title_signals: tuple[Signal, ...]
    error: bool = False
    refuted: bool = False  # local features showed the same design but not a copy
    unconfirmed: bool = False  # local features were tried and could not confirm a copy
    too_plain: bool = False  # the listing photo had too few keypoints for local features to compare
    brand_only: bool = False  # a packaging match that shows the brand, not which product: review, never suspect
    #: a packaging match whose photo looks like the official photo as a whole: brand only (review) from the
    #: engine's ``match`` similarity on (``Detector._looks_alike``)
    look_alike: bool = False
    fallback_tier: str | None = None
    unread_signals: tuple[Signal, ...] | None = None


@dataclass(frozen=True)
class EvidenceRun:
    """The evidence of every listing of a set, from one permissive scan."""

    engine: str
    engine_kind: str
    verifier_on: bool
    evidence: tuple[Evidence, ...]


def permissive_policy(base: Policy, engine_kind: str) -> Policy:
    """``base`` with every threshold of the engine at its ``candidate`` similarity and ``min_risk_to_flag`` 0:
    whatever any stricter setting would match, this one matches too (with the same best candidate)."""
    current = base.thresholds_for(engine_kind)
    low = current.candidate
    loose = EngineThresholds(low, low, low, current.match_needs_verification)
    return replace(base.with_thresholds(engine_kind, loose), min_risk_to_flag=0.0)


def evidence_of(verdict: Verdict, label: str, fallback: Any = tuple, terms: Sequence[str] = ()) -> Evidence:
    """A listing's :class:`Evidence` from its verdict; ``fallback()`` gives the verdict the listing gets with no
    photo match (:meth:`Detector.check_unmatched`), or just the title's signals (needed only when a stricter
    setting would leave a matched listing unmatched); ``terms``: the policy's replica terms."""
    if verdict.verdict == "error":
        return Evidence(verdict.listing_id, label, -math.inf, False, False, (), (), error=True)
    visual = verdict.signal(VISUAL_MATCH)
    others = tuple(s for s in verdict.signals if s.code != VISUAL_MATCH)
    text_tier = TEXT_TIER if verdict.match is not None and verdict.match.tier == TEXT_TIER else None
    details = visual.details if visual is not None else {}
    if verdict.match is None or not details or text_tier:
        similarity = float(details["similarity"]) if details.get("similarity") is not None else -math.inf
        return Evidence(verdict.listing_id, label, similarity, False, False, (), others, fallback_tier=text_tier,
                        refuted=bool(details.get("refuted")), unconfirmed=bool(details.get("unconfirmed")),
                        too_plain=bool(details.get("too_plain")))
    matched = details.get("tier") is not None
    fallback_tier, fallback_signals = _fallback(fallback()) if matched else (None, others)
    return Evidence(
        verdict.listing_id, label, float(details["similarity"]), bool(details.get("verified")),
        bool(details.get("same_package")), others if matched else (), fallback_signals,
        refuted=bool(details.get("refuted")), unconfirmed=bool(details.get("unconfirmed")),
        too_plain=bool(details.get("too_plain")),
        # a scene (not a package) names the brand only whatever the similarity; a look-alike only from ``match`` on
        brand_only=bool(details.get("brand_only")) and (not details.get("look_alike") or bool(details.get("scene"))),
        look_alike=bool(details.get("look_alike")), fallback_tier=fallback_tier,
        unread_signals=_unread(others, verdict, terms) if matched else None,
    )


def _fallback(given: Any) -> tuple[str | None, tuple[Signal, ...]]:
    """(tier, signals) of what :func:`evidence_of`'s ``fallback()`` gave: a verdict or the title's signals."""
    if not isinstance(given, Verdict):
        return None, tuple(given)
    if given.verdict == "error":  # its photos were read by the scan, not now (changed or removed since)
        raise LabeledSetError(f"listing {given.listing_id}: its photos could not be read again for the "
                              f"calibration: {given.error or 'no photo could be read'}")
    tier = given.match.tier if given.match is not None else None
    return tier, tuple(s for s in given.signals if s.code != VISUAL_MATCH)


def _unread(signals: tuple[Signal, ...], verdict: Verdict, terms: Sequence[str]) -> tuple[Signal, ...] | None:
    """The risk signals of a matched listing as the detector has them before it reads the photos' text (the
    photo-text signals left out, the replica terms of the title alone); None when no text was read."""
    if not any(s.code in TEXT_RISK_CODES for s in signals):
        return None
    title = verdict.listing.title if verdict.listing is not None else ""
    kept = tuple(s for s in signals if s.code not in TEXT_RISK_CODES and s.code != REPLICA_TERMS)
    return (*kept, replica_terms(title, terms))


def collect_evidence(set_dir: str | Path, index: Any, base: Policy, *, workers: int = 0) -> EvidenceRun:
    """Scan a labeled set once with :func:`permissive_policy` and keep each listing's :class:`Evidence` (with
    text reading on, every listing's text is read, and a matched listing is checked once more as unmatched)."""
    from knockoff.decide.detector import Detector

    detector = Detector(index, permissive_policy(base, index.embedder.kind), read_all_text=True)
    run = scan_labeled_set(set_dir, detector, workers=workers)
    evidence = []
    for item in run.labeled:
        verdict = run.verdicts[item.listing.listing_id]
        fallback = (lambda: detector.check_unmatched(item.listing)) if base.text.enabled else (
            lambda: detector.title_signals(item.listing))
        evidence.append(evidence_of(verdict, item.label, fallback, base.replica_terms))
    return EvidenceRun(run.engine, run.engine_kind, run.verifier_on, tuple(evidence))


def simulate(evidence: Sequence[Evidence], policy: Policy, engine_kind: str, verifier_on: bool) -> list[tuple[str, float]]:
    """The (verdict, risk) the detector gives each listing under ``policy`` (whose ``candidate`` threshold and
    other settings than the engine's thresholds, ``min_risk_to_flag``, weights and risk are the evidence's)."""
    thresholds = policy.thresholds_for(engine_kind)
    floor = thresholds.match_floor(verifier_on)
    out = []
    for e in evidence:
        if e.error:
            out.append(("error", 0.0))
            continue
        tier = match_tier(e.similarity, verified=e.verified, same_package=e.same_package,
                          near_copy=thresholds.near_copy, match=floor, refuted=e.refuted, unconfirmed=e.unconfirmed,
                          too_plain=e.too_plain)
        if tier is None:
            out.append(rule.decide(e.fallback_tier, e.title_signals, policy))
            continue
        brand_only = e.brand_only or (e.look_alike and e.similarity >= thresholds.match)
        guessed = bool(guessed_copy(tier, e.unconfirmed, near_copy=thresholds.near_copy, match=floor)) or (
            brand_only and tier == "same-package")
        if policy.text.enabled and e.unread_signals is not None:  # the detector's shortcut: a suspect unread
            unread = rule.decide(tier, e.unread_signals, policy, guessed=guessed)
            if unread[0] == "suspect":
                out.append(unread)
                continue
        out.append(rule.decide(tier, e.risk_signals, policy, guessed=guessed))
    return out


# -- the search -----------------------------------------------------------------------------------------------


def _cuts(values: np.ndarray, low: float, limit: int = 80) -> np.ndarray:
    """Thresholds that separate the distinct values at or above ``low``: ``low``, midpoints, one above the top."""
    u = np.unique(values[np.isfinite(values) & (values >= low)])
    if u.size > limit:
        u = np.unique(np.quantile(u, np.linspace(0, 1, limit)))
    mids = (u[:-1] + u[1:]) / 2 if u.size > 1 else np.array([])
    top = min(1.0, float(u[-1]) + 1e-4) if u.size else min(1.0, low + 1e-4)
    return np.unique(np.clip(np.r_[low, mids, top], low, 1.0))


def _split(labels: Sequence[str], holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (fit, held out), stratified by label."""
    if holdout <= 0:
        return list(range(len(labels))), []
    rng = np.random.default_rng(seed)
    fit, held = [], []
    for label in sorted(set(labels)):
        idx = [i for i, other in enumerate(labels) if other == label]
        rng.shuffle(idx)
        n_held = int(round(holdout * len(idx)))
        held += idx[:n_held]
        fit += idx[n_held:]
    return sorted(fit), sorted(held)


@dataclass(frozen=True)
class _Grid:
    """The evidence as arrays, with each listing's risk under each tier (by the rule, with the base policy)."""

    positive: np.ndarray
    similarity: np.ndarray
    verified: np.ndarray
    same_package: np.ndarray
    refuted: np.ndarray
    unconfirmed: np.ndarray
    too_plain: np.ndarray
    brand_only: np.ndarray
    look_alike: np.ndarray
    has_hit: np.ndarray
    risk: np.ndarray  # (n, len(TIERS))
    #: the text tier a listing falls back to with no photo match (its photos' text names a brand): hit, risk
    text_hit: np.ndarray
    text_risk: np.ndarray


def _grid(evidence: Sequence[Evidence], base: Policy) -> _Grid:
    assessed = [[rule.assess(tier, e.risk_signals, base) for tier in TIERS] for e in evidence]
    text = [rule.assess(TEXT_TIER, e.title_signals, base) if e.fallback_tier == TEXT_TIER else None
            for e in evidence]
    return _Grid(
        positive=np.array([e.label == "counterfeit" for e in evidence], dtype=bool),
        similarity=np.array([e.similarity for e in evidence], dtype=np.float64),
        verified=np.array([e.verified for e in evidence], dtype=bool),
        same_package=np.array([e.same_package for e in evidence], dtype=bool),
        refuted=np.array([e.refuted for e in evidence], dtype=bool),
        unconfirmed=np.array([e.unconfirmed for e in evidence], dtype=bool),
        too_plain=np.array([e.too_plain for e in evidence], dtype=bool),
        brand_only=np.array([e.brand_only for e in evidence], dtype=bool),
        look_alike=np.array([e.look_alike for e in evidence], dtype=bool),
        has_hit=np.array([bool(row[0].hits) for row in assessed], dtype=bool),
        risk=np.array([[a.risk for a in row] for row in assessed], dtype=np.float64).reshape(len(evidence), len(TIERS)),
        text_hit=np.array([a is not None and bool(a.hits) for a in text], dtype=bool),
        text_risk=np.array([a.risk if a is not None else 0.0 for a in text], dtype=np.float64),
    )


def _flags(g: _Grid, near_copy: float, floor: float, risk_cuts: np.ndarray, match: float) -> np.ndarray:
    """``suspect`` flags (len(risk_cuts), n) under these thresholds, as :func:`simulate` decides them."""
    tier = tier_index(g.similarity, g.verified, g.same_package, near_copy=near_copy, match=floor, refuted=g.refuted,
                      unconfirmed=g.unconfirmed, too_plain=g.too_plain)
    matched = tier < len(TIERS)
    risk = g.risk[np.arange(len(tier)), np.minimum(tier, len(TIERS) - 1)]
    brand_only = g.brand_only | (g.look_alike & (g.similarity >= match))
    checked = ~guessed_copy(tier, g.unconfirmed, near_copy=near_copy, match=floor) & ~(
        brand_only & (tier == TIERS.index("same-package")))
    by_photo = (matched & checked)[None, :] & rule.flagged(g.has_hit[None, :], risk[None, :], risk_cuts[:, None])
    by_text = (~matched & g.text_hit)[None, :] & rule.flagged(True, g.text_risk[None, :], risk_cuts[:, None])
    return by_photo | by_text


def _search(g: _Grid, base: Policy, current: EngineThresholds, floor_is_near_copy: bool,
            target: float, low: float) -> tuple[tuple[float, float, float], bool]:
    """The (near_copy, match, min_risk_to_flag) with the highest recall at precision >= target (ties: higher
    precision, then closest to the base policy); else the most precise. Also whether the target was met.
    Similarity thresholds are searched at or above ``low``."""
    risk_cuts = np.unique(np.r_[0.0, g.risk.ravel(), g.text_risk[g.text_hit], base.min_risk_to_flag])
    near_cuts = np.unique(np.r_[_cuts(g.similarity, low), current.near_copy])
    all_match_cuts = np.unique(np.r_[_cuts(g.similarity, low), current.match])
    n_pos = max(int(g.positive.sum()), 1)
    best_key: tuple[float, ...] = (-math.inf,)
    best = (current.near_copy, current.match, base.min_risk_to_flag)
    for near_copy in near_cuts:
        for match in ([min(current.match, near_copy)] if floor_is_near_copy else all_match_cuts):
            if match > near_copy:
                continue
            flags = _flags(g, float(near_copy), float(near_copy if floor_is_near_copy else match), risk_cuts,
                           float(match))
            tp = (flags & g.positive).sum(axis=1)
            n_flagged = flags.sum(axis=1)
            for j, r in enumerate(risk_cuts):
                p = tp[j] / n_flagged[j] if n_flagged[j] else -1.0
                feasible = p >= target - 1e-12
                distance = abs(near_copy - current.near_copy) + abs(match - current.match) + abs(
                    r - base.min_risk_to_flag)
                recall = tp[j] / n_pos
                key = (float(feasible), recall if feasible else p, p, recall, -distance)
                if key > best_key:
                    best_key, best = key, (float(near_copy), float(match), float(r))
    return best, bool(best_key[0] > 0)


def _measure(evidence: Sequence[Evidence], policy: Policy, kind: str, verifier_on: bool) -> tuple[float | None, float | None]:
    if not evidence:
        return None, None
    verdicts = [v for v, _ in simulate(evidence, policy, kind, verifier_on)]
    flagged = [v == "suspect" for v in verdicts]
    positive = [e.label == "counterfeit" for e in evidence]
    tp = sum(f and p for f, p in zip(flagged, positive))
    fp = sum(f and not p for f, p in zip(flagged, positive))
    fn = sum(p and not f for f, p in zip(flagged, positive))
    precision, recall, _ = precision_recall_f1(tp, fp, fn)
    return precision, recall


def calibrate(
    set_dir: str | Path,
    engine: str = "auto",
    target_precision: float = 0.99,
    *,
    holdout: float = 0.0,
    seed: int = 0,
    base_policy: Policy | None = None,
    workers: int = 0,
) -> CalibrationResult:
    """Choose the engine's ``near_copy`` and ``match`` thresholds and ``min_risk_to_flag`` on a labeled set
    (see the module docstring). The ``candidate`` threshold (which hits are verified), the weights and every
    other setting are kept from ``base_policy``. When no setting reaches the target, the most precise one is
    returned with ``met_target=False``.

    Caution: precision and recall measured on the listings the thresholds were chosen on are optimistic. Pass
    ``holdout=0.3`` to keep 30 % of the listings (stratified by label, drawn with ``seed``) aside and measure
    there, or better, calibrate on one set and evaluate on another.
    """
    check_arguments(target_precision, holdout)
    base = base_policy or Policy()
    index, _ = build_set_index(set_dir, engine)
    run = collect_evidence(set_dir, index, base, workers=workers)
    low = base.thresholds_for(run.engine_kind).candidate
    return fit_thresholds(run, base, target_precision, low=low, holdout=holdout, seed=seed, where=str(set_dir))


def check_arguments(target_precision: float, holdout: float) -> None:
    """A :class:`~knockoff.errors.ConfigError` unless ``0 < target_precision <= 1`` and ``0 <= holdout < 1``."""
    if not 0.0 < target_precision <= 1.0:
        raise ConfigError(f"target_precision must be in (0, 1], got {target_precision}")
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"holdout must be in [0, 1), got {holdout}")


def fit_thresholds(run: EvidenceRun, base: Policy, target_precision: float, *, low: float, holdout: float = 0.0,
                   seed: int = 0, where: str = "", notes: Sequence[str] = ()) -> CalibrationResult:
    """The search of :func:`calibrate` over collected evidence: similarity thresholds at or above ``low``
    (the ``candidate`` similarity for a permissive scan), ``min_risk_to_flag`` anywhere."""
    kind = run.engine_kind
    fit_idx, held_idx = _split([e.label for e in run.evidence], holdout, seed)
    fit = [run.evidence[i] for i in fit_idx]
    held = [run.evidence[i] for i in held_idx]
    grid = _grid(fit, base)
    if not grid.positive.any():
        raise LabeledSetError(f"{where}: no counterfeit listing to calibrate on")
    current = base.thresholds_for(kind)
    floor_is_near_copy = current.match_needs_verification and run.verifier_on
    chosen, met = _search(grid, base, current, floor_is_near_copy, target_precision, low)
    near_copy, match, min_risk = (round(v, 5) for v in chosen)
    match = min(max(match, current.candidate), near_copy)
    thresholds = EngineThresholds(near_copy, match, current.candidate, current.match_needs_verification)
    policy = replace(base.with_thresholds(kind, thresholds), min_risk_to_flag=min_risk)
    expected = _measure(fit, policy, kind, run.verifier_on)
    held_out = _measure(held, policy, kind, run.verifier_on)
    default = _measure(fit, base, kind, run.verifier_on)
    return CalibrationResult(
        policy=policy, engine=run.engine, engine_kind=kind, target_precision=target_precision, met_target=met,
        expected_precision=expected[0], expected_recall=expected[1], n_fit=len(fit),
        holdout_precision=held_out[0], holdout_recall=held_out[1], n_holdout=len(held),
        default_precision=default[0], default_recall=default[1],
        thresholds={"near_copy": near_copy, "match": match, "candidate": current.candidate,
                    "min_risk_to_flag": min_risk},
        notes=tuple(notes),
    )
