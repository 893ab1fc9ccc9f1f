"""Reviewers' decisions as labels: results of a scan + ``decisions.csv`` -> labeled outcomes.

A listing marked *counterfeit* must be flagged (label ``counterfeit``); one marked *not counterfeit* must not
be (``genuine`` when knockoff matched it to a brand, ``unrelated`` otherwise); *unsure* and undecided
listings are left out. The outcomes feed :func:`knockoff.evaluate.metrics.summarize` like a labeled set's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from knockoff.decide.signals import RISK_CODES, VISUAL_MATCH
from knockoff.decide.verdict import Verdict
from knockoff.evaluate.metrics import ListingOutcome
from knockoff.report.decisions import Decision, Decisions
from knockoff.report.results import MATCHED_VERDICTS

@dataclass(frozen=True)
class DecisionLabels:
    """Outcomes for the decided listings, and what could not be used."""

    outcomes: tuple[ListingOutcome, ...]
    unsure: int  # decided as unsure: no label
    unknown_listings: tuple[str, ...]  # decided, but not in the results (another scan?)


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
    return DecisionLabels(tuple(outcomes), unsure, unknown)
