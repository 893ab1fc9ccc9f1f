"""The decision rule: a match tier and the signals in, a verdict and a risk out. It exists once: the detector
and the calibration (:mod:`knockoff.evaluate.calibrate`) both call it.

- A visual match (``tier`` one of :data:`knockoff.decide.signals.TIERS`) with a risk signal that hits is
  ``suspect`` when its risk reaches ``Policy.min_risk_to_flag``, else ``review``.
- A visual match with no hit but a risk signal that could not be checked (no seller given, the brand lists no
  sellers, a price that cannot be compared, no title, ...) is ``review``: a person must look.
- A match that is a guess (:func:`knockoff.decide.signals.guessed_copy`: the perceptual engine's global
  similarity alone, local features unable to confirm a copy) is ``review`` even with a risk signal that hits.
- A visual match whose risk signals were all checked and are all clear is ``authorized``. So ``authorized``
  needs the seller known and on the brand's list, or a brand that lets any seller sell (``*`` in its
  ``authorized_sellers``, :data:`knockoff.decide.signals.ANY_SELLER`).
- With text reading on (``Policy.text.enabled``), a listing no photo of which matched but whose photo text names
  a catalog brand (or a near-misspelling) is decided as a match of tier :data:`~knockoff.decide.signals.TEXT_TIER`
  against that brand, with the photo-text signals ``BRAND_IN_PHOTO`` and ``MISSPELLED_BRAND_IN_PHOTO`` among
  its risk signals. Without text reading those two codes are not expected (:func:`risk_codes`).
- No visual match (``tier`` None): ``review`` when the title names a catalog brand (or a near-misspelling) and
  uses replica terms or asks a price implausible for every product of that brand; else ``no_match``.

Risk (constants in :class:`knockoff.decide.policy.RiskSettings` and ``Policy.weights``): a match's risk is
``confidence[tier] * (floor + (1 - floor) * combined)``, with ``combined = 1 - prod(1 - weight)`` over the
risk signals that hit (never below the highest ``authorized`` risk when one hits). A ``review`` without a hit
lies in the band between the highest ``authorized`` risk and the lowest ``suspect`` risk of the policy
(:func:`review_band`), placed by the same formula over the signals that are unknown (or, title-only, that hit)
times the confidence. So: authorized <= review <= suspect, whatever the weights.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from knockoff.decide.policy import Policy
from knockoff.decide.signals import (
    PRICE_IMPLAUSIBLE,
    REPLICA_TERMS,
    RISK_CODES,
    TEXT_RISK_CODES,
    TEXT_TIER,
    TIERS,
    TITLE_NAMES_BRAND,
    Signal,
)
from knockoff.errors import ResultError

__all__ = ["Assessment", "assess", "decide", "flagged", "needs_person", "review_band", "risk_codes", "NEEDS_PERSON"]

NEEDS_PERSON = ("suspect", "review")
"""Verdicts a person must look at (the CLI's exit code 1)."""


@dataclass(frozen=True)
class Assessment:
    """What the rule made of a listing's signals: its risk, the risk codes that hit and those unknown."""

    risk: float
    hits: tuple[str, ...]
    unknown: tuple[str, ...]


def _combined(codes: Iterable[str], policy: Policy) -> float:
    return 1.0 - float(np.prod([1.0 - policy.weights[code] for code in codes]))


def risk_codes(policy: Policy) -> tuple[str, ...]:
    """The risk signals a matched listing is checked for under ``policy``: the photo-text ones only with text
    reading on (a signal that is expected but absent counts as not checked)."""
    if policy.text.enabled:
        return RISK_CODES
    return tuple(code for code in RISK_CODES if code not in TEXT_RISK_CODES)


def _confidences(policy: Policy) -> list[float]:
    found = list(policy.risk.tier_confidence.values())
    return found + [policy.risk.text_confidence] if policy.text.enabled else found


def review_band(policy: Policy) -> tuple[float, float]:
    """(highest ``authorized`` risk, lowest ``suspect`` risk) under ``policy``: a review's risk lies between."""
    risk, confidences = policy.risk, _confidences(policy)
    low = round(max(confidences) * risk.floor, 4)
    lightest = min(policy.weights[code] for code in risk_codes(policy))
    high = round(min(confidences) * (risk.floor + (1.0 - risk.floor) * lightest), 4)
    return low, max(low, high)


def _review_risk(confidence: float, codes: Sequence[str], policy: Policy) -> float:
    low, high = review_band(policy)
    return round(low + (high - low) * confidence * _combined(codes, policy), 4)


def assess(tier: str | None, signals: Sequence[Signal], policy: Policy) -> Assessment:
    """The risk of a listing, the risk codes that hit and those that could not be checked.

    ``signals``: for a match, its risk signals (others, such as ``VISUAL_MATCH``, are ignored); for no match
    (``tier`` None), the title signals (:data:`TITLE_NAMES_BRAND`, replica terms, price for the brand).
    """
    states = {s.code: s.state for s in signals}
    codes = risk_codes(policy)
    hits = tuple(code for code in codes if states.get(code) == "hit")
    if tier is None:
        if states.get(TITLE_NAMES_BRAND) != "hit" or not ({REPLICA_TERMS, PRICE_IMPLAUSIBLE} & set(hits)):
            return Assessment(0.0, (), ())
        return Assessment(_review_risk(policy.risk.title_confidence, hits, policy), hits, ())
    if tier not in TIERS and tier != TEXT_TIER:
        raise ResultError(f"tier must be one of {(*TIERS, TEXT_TIER)} or None, got {tier!r}")
    unknown = tuple(code for code in codes if states.get(code, "unknown") == "unknown")
    confidence = policy.risk.text_confidence if tier == TEXT_TIER else policy.risk.tier_confidence[tier]
    floor = policy.risk.floor
    risk = round(min(1.0, confidence * (floor + (1.0 - floor) * _combined(hits, policy))), 4)
    if hits:  # never below an authorized risk, whatever the weights and tiers
        return Assessment(max(risk, review_band(policy)[0]), hits, unknown)
    if not unknown:
        return Assessment(risk, hits, unknown)
    return Assessment(_review_risk(confidence, unknown, policy), hits, unknown)


def flagged(has_hit: Any, risk: Any, min_risk_to_flag: Any) -> Any:
    """Whether a matched listing is ``suspect``: a risk signal hit and the risk reaches the policy's
    ``min_risk_to_flag``. Works on numpy arrays too (the calibration's sweep)."""
    return np.logical_and(has_hit, np.asarray(risk) >= np.asarray(min_risk_to_flag))


def decide(tier: str | None, signals: Sequence[Signal], policy: Policy, *, guessed: bool = False) -> tuple[str, float]:
    """The verdict (``suspect``, ``review``, ``authorized`` or ``no_match``) and risk of a listing whose best
    candidate has match tier ``tier`` (None: not a match), from its signals; see the module docstring.
    ``guessed`` (:func:`knockoff.decide.signals.guessed_copy`): the match itself could not be checked, so a hit
    makes it ``review`` (risk at most the review band's top), never ``suspect``."""
    assessment = assess(tier, signals, policy)
    if tier is None:
        return ("review" if assessment.hits else "no_match"), assessment.risk
    if assessment.hits and guessed:
        return "review", min(assessment.risk, review_band(policy)[1])
    if assessment.hits:
        suspect = bool(flagged(True, assessment.risk, policy.min_risk_to_flag))
        return ("suspect" if suspect else "review"), assessment.risk
    return ("review" if assessment.unknown else "authorized"), assessment.risk


def needs_person(verdict: Any) -> bool:
    """True for a verdict (a :class:`~knockoff.decide.verdict.Verdict` or its name) a person must look at:
    ``suspect`` or ``review``. The CLI exits with 1 when a scan or check has one."""
    name = verdict if isinstance(verdict, str) else verdict.verdict
    return name in NEEDS_PERSON
