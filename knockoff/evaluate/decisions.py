"""Reviewers' decisions as labels: results of a scan + ``decisions.csv`` -> labeled outcomes.

A listing marked *counterfeit* must be flagged (label ``counterfeit``); one marked *not counterfeit* must not
be (``genuine`` when knockoff matched it to a brand, ``unrelated`` otherwise); *unsure* and undecided
listings are left out. The outcomes feed :func:`knockoff.evaluate.metrics.summarize` like a labeled set's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from knockoff.evaluate.metrics import ListingOutcome
from knockoff.report.decisions import Decision, Decisions
from knockoff.report.results import MATCHED_VERDICTS

RISK_STATES_HIT = "hit"
_RISK_CODES = ("UNAUTHORIZED_SELLER", "PRICE_IMPLAUSIBLE", "BRAND_MISUSE", "REPLICA_TERMS")


@dataclass(frozen=True)
class DecisionLabels:
    """Outcomes for the decided listings, and what could not be used."""

    outcomes: tuple[ListingOutcome, ...]
    unsure: int  # decided as unsure: no label
    unknown_listings: tuple[str, ...]  # decided, but not in the results (another scan?)


def label_of(decision: Decision, result: Mapping[str, Any]) -> str | None:
    """The labeled-set label a decision gives a result (None for unsure)."""
    if decision.decision == "counterfeit":
        return "counterfeit"
    if decision.decision == "not_counterfeit":
        return "genuine" if result.get("verdict") in MATCHED_VERDICTS and result.get("match") else "unrelated"
    return None


def outcome_of(result: Mapping[str, Any], label: str) -> ListingOutcome:
    """A :class:`ListingOutcome` from one results line and its label."""
    match = result.get("match") or {}
    verification = match.get("verification") or {}
    codes = tuple(s["code"] for s in result.get("signals") or () if isinstance(s, dict)
                  and s.get("state") == RISK_STATES_HIT and s.get("code") in _RISK_CODES)
    return ListingOutcome(
        listing_id=str(result["listing_id"]), label=label, kind="reviewed", product_id=None,
        verdict=str(result.get("verdict")), risk=float(result.get("risk") or 0.0),
        similarity=match.get("similarity"), matched_product=match.get("product_id"),
        verified=bool(verification.get("verified")), risk_codes=codes,
    )


def labeled_outcomes(results: Iterable[Mapping[str, Any]], decisions: Decisions) -> DecisionLabels:
    """Join a scan's results (``read_results``) with reviewers' decisions (``read_decisions``)."""
    by_id = {str(r.get("listing_id")): r for r in results}
    outcomes, unsure, unknown = [], 0, []
    for listing_id, decision in decisions.by_listing.items():
        result = by_id.get(listing_id)
        if result is None:
            unknown.append(listing_id)
            continue
        label = label_of(decision, result)
        if label is None:
            unsure += 1
            continue
        outcomes.append(outcome_of(result, label))
    return DecisionLabels(tuple(outcomes), unsure, tuple(unknown))
