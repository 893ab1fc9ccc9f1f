"""Reviewers' decisions as labels: results of a scan + ``decisions.csv`` -> labeled outcomes.

A listing marked *counterfeit* must be flagged (label ``counterfeit``); one marked *not counterfeit* must not
be (``genuine`` when knockoff matched it to a brand, ``unrelated`` otherwise); *unsure* and undecided
listings are left out. The outcomes feed :func:`knockoff.evaluate.metrics.summarize` like a labeled set's
(``knockoff evaluate RESULTS_DIR --decisions``), and the decided verdicts' evidence feeds the calibration's
search (:func:`calibrate_on_decisions`, ``knockoff calibrate RESULTS_DIR --decisions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from knockoff.decide.policy import Policy
from knockoff.decide.signals import RISK_CODES, VISUAL_MATCH, match_tier
from knockoff.decide.verdict import Verdict
from knockoff.errors import ConfigError, LabeledSetError
from knockoff.evaluate.calibrate import (CalibrationResult, EvidenceRun, check_arguments, evidence_of,
                                         fit_thresholds)
from knockoff.evaluate.metrics import ListingOutcome
from knockoff.report.decisions import Decision, Decisions
from knockoff.report.results import MATCHED_VERDICTS

@dataclass(frozen=True)
class DecisionLabels:
    """Outcomes for the decided listings, and what could not be used."""

    outcomes: tuple[ListingOutcome, ...]
    unsure: int  # decided as unsure: no label
    unknown_listings: tuple[str, ...]  # decided, but not in the results (another scan?)
    engines: tuple[str, ...] = ()  # the engines of the decided verdicts


def label_of(decision: Decision, verdict: Verdict) -> str | None:
    """The labeled-set label a decision gives a verdict (None for unsure)."""
    if decision.decision == "counterfeit":
        return "counterfeit"
    if decision.decision == "not_counterfeit":
        return "genuine" if verdict.verdict in MATCHED_VERDICTS and verdict.match else "unrelated"
    return None


def outcome_of(verdict: Verdict, label: str) -> ListingOutcome:
    """A :class:`ListingOutcome` from one verdict and its label."""
    match = verdict.match
    visual = verdict.signal(VISUAL_MATCH)
    return ListingOutcome(
        listing_id=verdict.listing_id, label=label, kind="reviewed", product_id=None, verdict=verdict.verdict,
        risk=verdict.risk, similarity=match.similarity if match else None,
        matched_product=match.product_id if match else None,
        verified=bool(visual.details.get("verified")) if visual is not None else False,
        risk_codes=tuple(s.code for s in verdict.signals if s.hit and s.code in RISK_CODES),
        tier=match.tier if match else None,
    )


def decided(verdicts: Iterable[Verdict], decisions: Decisions) -> Iterator[tuple[Verdict, Decision]]:
    """The (verdict, decision) pairs of the decided listings, read as the verdicts stream by (only the decided
    ones are kept)."""
    for verdict in verdicts:
        decision = decisions.by_listing.get(verdict.listing_id)
        if decision is not None:
            yield verdict, decision


def labeled_outcomes(verdicts: Iterable[Verdict], decisions: Decisions) -> DecisionLabels:
    """Join a scan's verdicts (``iter_results``; a listing's last line wins) with reviewers' decisions
    (``read_decisions``)."""
    by_id = dict((v.listing_id, (v, d)) for v, d in decided(verdicts, decisions))
    outcomes, unsure = [], 0
    for verdict, decision in by_id.values():
        label = label_of(decision, verdict)
        if label is None:
            unsure += 1
            continue
        outcomes.append(outcome_of(verdict, label))
    unknown = tuple(i for i in decisions.by_listing if i not in by_id)
    engines = tuple(sorted({v.engine for v, _ in by_id.values() if v.engine}))
    return DecisionLabels(tuple(outcomes), unsure, unknown, engines)


# -- calibration on reviewers' decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class DecidedEvidence:
    """The evidence of the decided listings of a scan, and the floor below which it cannot tell."""

    run: EvidenceRun
    low: float  # the scan's match floor: below it, the scan computed no risk signals
    notes: tuple[str, ...]


def _engine(verdicts: Sequence[Verdict], where: str) -> str:
    engines = sorted({v.engine for v in verdicts if v.engine})
    if len(engines) != 1:
        found = ", ".join(engines) or "none"
        raise LabeledSetError(f"{where}: the decided listings must come from one engine's scan (found: {found})")
    return engines[0]


def _check_scan_policy(verdicts: Sequence[Verdict], base: Policy, kind: str, verifier_on: bool, where: str) -> None:
    """Each decided verdict's tier must be what ``base`` gives its stored similarity: else the scan was decided
    with another policy, and the thresholds found here would be fitted to the wrong evidence."""
    thresholds = base.thresholds_for(kind)
    for verdict in verdicts:
        visual = verdict.signal(VISUAL_MATCH)
        if verdict.verdict == "error" or visual is None or not visual.details or verdict.match is None:
            continue
        details = visual.details
        tier = match_tier(float(details["similarity"]), verified=bool(details.get("verified")),
                          same_package=bool(details.get("same_package")), refuted=bool(details.get("refuted")),
                          unconfirmed=bool(details.get("unconfirmed")), too_plain=bool(details.get("too_plain")),
                          near_copy=thresholds.near_copy,
                          match=thresholds.match_floor(verifier_on))
        if tier != details.get("tier"):
            raise ConfigError(
                f"{where}: listing {verdict.listing_id} was decided with other thresholds than this policy's "
                f"(tier {details.get('tier')!r}, the policy gives {tier!r}): pass the policy the scan used "
                "with --policy")


def decided_evidence(results_dir: str | Path, decisions: Decisions, base: Policy) -> DecidedEvidence:
    """The :class:`~knockoff.evaluate.calibrate.Evidence` of a scan's decided listings, labeled by the decisions
    (*counterfeit*: positive; *not counterfeit*: negative; *unsure* and undecided: left out).

    A stored verdict carries the similarity, the geometric proof and the risk signals of its match, so the
    calibration's simulation runs on it without scanning again, but only at or above the scan's own match
    floor: a listing the scan did not match carries no risk signals for its nearest product. The engine is the
    verdicts'; the verifier counts as on when any decided match carries a verification.
    """
    from knockoff.report.results import iter_results

    where = str(results_dir)
    pairs = dict((v.listing_id, (v, d)) for v, d in decided(iter_results(results_dir), decisions))
    labeled = [(v, label_of(d, v)) for v, d in pairs.values()]
    used = [(v, label) for v, label in labeled if label is not None]
    verdicts = [v for v, _ in used]
    if not verdicts:
        raise LabeledSetError(f"{where}: no listing of these results is marked counterfeit or not counterfeit")
    engine = _engine(verdicts, where)
    kind = engine.split(":", 1)[0]
    verifier_on = any(v.match is not None and v.match.verification is not None for v in verdicts)
    _check_scan_policy(verdicts, base, kind, verifier_on, where)
    low = base.thresholds_for(kind).match_floor(verifier_on)
    evidence = tuple(evidence_of(v, label) for v, label in used)
    notes = [f"similarity thresholds searched at or above the scan's match floor {low:.4f} (below it the scan "
             "computed no risk signals)", f"{len(used)} decided listings used as labels, "
             f"{len(labeled) - len(used)} marked unsure left out"]
    unknown = len(decisions.by_listing) - len(pairs)
    if unknown:
        notes.append(f"{unknown} decided listings are not in these results (decisions of another scan?)")
    return DecidedEvidence(EvidenceRun(engine, kind, verifier_on, evidence), low, tuple(notes))


def calibrate_on_decisions(results_dir: str | Path, decisions: Decisions, target_precision: float = 0.99, *,
                           holdout: float = 0.0, seed: int = 0, base_policy: Policy | None = None
                           ) -> CalibrationResult:
    """:func:`~knockoff.evaluate.calibrate.calibrate` with reviewers' decisions on an existing scan as the
    labels (:func:`decided_evidence`); ``base_policy`` must be the policy the scan used (checked)."""
    check_arguments(target_precision, holdout)
    base = base_policy or Policy()
    found = decided_evidence(results_dir, decisions, base)
    return fit_thresholds(found.run, base, target_precision, low=found.low, holdout=holdout, seed=seed,
                          where=str(results_dir), notes=found.notes)
