"""The decision rule, as a table: tier and signal states in, verdict and risk out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from knockoff import Policy
from knockoff.decide import rule
from knockoff.decide.policy import RiskSettings, TextSettings
from knockoff.decide.signals import RISK_CODES, TEXT_TIER, TITLE_NAMES_BRAND, Signal
from knockoff.errors import ResultError

SELLER, PRICE, MISUSE, REPLICA, *_ = RISK_CODES


def _signals(**states: str) -> tuple[Signal, ...]:
    """Risk signals, clear unless given (``UNAUTHORIZED_SELLER="hit"``, ...)."""
    return tuple(Signal(code, states.get(code, "clear"), code.lower()) for code in RISK_CODES)


@pytest.mark.parametrize(
    "tier, states, verdict, risk",
    [
        ("near-copy", {}, "authorized", 0.1),
        ("same-product", {}, "authorized", 0.08),
        ("same-package", {}, "authorized", 0.08),
        ("near-copy", {SELLER: "hit"}, "suspect", 0.1 + 0.9 * 0.6),
        ("same-product", {SELLER: "hit", REPLICA: "hit"}, "suspect", 0.8 * (0.1 + 0.9 * (1 - 0.4 * 0.3))),
        ("near-copy", {SELLER: "hit", PRICE: "unknown"}, "suspect", 0.1 + 0.9 * 0.6),  # a hit is enough
        # nothing hit, something unknown: review, between authorized (0.1) and the lowest suspect (0.368)
        ("near-copy", {SELLER: "unknown"}, "review", 0.1 + 0.268 * 0.6),
        ("same-product", {SELLER: "unknown", PRICE: "unknown"}, "review", 0.1 + 0.268 * 0.8 * 0.8),
        ("near-copy", {MISUSE: "unknown", REPLICA: "unknown"}, "review", 0.1 + 0.268 * (1 - 0.6 * 0.3)),
    ],
)
def test_matched_listing(tier, states, verdict, risk):
    assert rule.decide(tier, _signals(**states), Policy()) == (verdict, pytest.approx(risk, abs=1e-4))


def _title(named: str, replica: str, price: str) -> tuple[Signal, ...]:
    return (Signal(TITLE_NAMES_BRAND, named, "t"), Signal(REPLICA, replica, "r"), Signal(PRICE, price, "p"))


@pytest.mark.parametrize(
    "signals, verdict, risk",
    [
        ((), "no_match", 0.0),
        (_title("hit", "hit", "clear"), "review", 0.1 + 0.268 * 0.5 * 0.7),
        (_title("hit", "clear", "hit"), "review", 0.1 + 0.268 * 0.5 * 0.5),
        (_title("hit", "clear", "unknown"), "no_match", 0.0),  # naming a brand alone says nothing
        (_title("clear", "hit", "hit"), "no_match", 0.0),  # replica terms without a catalog brand
    ],
)
def test_no_photo_match(signals, verdict, risk):
    assert rule.decide(None, signals, Policy()) == (verdict, pytest.approx(risk, abs=1e-4))


@pytest.mark.parametrize("weights", [{}, {"BRAND_MISUSE": 0.05}, {"REPLICA_TERMS": 1.0, "PRICE_IMPLAUSIBLE": 0.9}])
@pytest.mark.parametrize("floor", [0.1, 0.3])
@pytest.mark.parametrize("text", [None, TextSettings(enabled=True)])
def test_review_risk_lies_between_authorized_and_suspect(weights, floor, text):
    risk_settings = RiskSettings(floor=floor, text_confidence=0.6)
    policy = Policy(weights=weights, risk=risk_settings, **({"text": text} if text else {}))
    low, high = rule.review_band(policy)
    tiers = ("near-copy", "same-package", "same-product", *((TEXT_TIER,) if text else ()))
    codes = rule.risk_codes(policy)
    states = ["hit", "clear", "unknown"]
    outcomes = {"authorized": [], "review": [], "suspect": []}
    for tier in tiers:
        for combo in np.array(np.meshgrid(*[range(3)] * len(codes))).T.reshape(-1, len(codes)):
            verdict, risk = rule.decide(tier, _signals(**{c: states[i] for c, i in zip(codes, combo)}), policy)
            outcomes[verdict].append(risk)
    assert max(outcomes["authorized"]) <= low <= min(outcomes["review"])
    assert max(outcomes["review"]) <= high <= min(outcomes["suspect"])


def test_min_risk_to_flag_turns_a_weak_suspect_into_review():
    signals = _signals(BRAND_MISUSE="hit")
    assert rule.decide("same-product", signals, Policy())[0] == "suspect"
    verdict, risk = rule.decide("same-product", signals, replace(Policy(), min_risk_to_flag=0.5))
    assert verdict == "review" and risk < 0.5


def test_flagged_works_on_arrays():
    flags = rule.flagged(np.array([True, True, False]), np.array([0.5, 0.2, 0.9]), np.array([[0.0], [0.3]]))
    assert flags.tolist() == [[True, True, False], [True, False, False]]


def test_unknown_tier_is_an_error():
    with pytest.raises(ResultError):
        rule.decide("lookalike", _signals(), Policy())


@pytest.mark.parametrize("tier, unconfirmed, near_copy, match, guessed", [
    ("same-product", True, 0.90, 0.90, True),    # perceptual: global similarity alone, local features failed
    ("same-product", False, 0.90, 0.90, False),  # local features not tried (no verifier): not a guess
    ("same-product", True, 0.95, 0.82, False),   # an engine that sees products (clip): its own evidence
    ("near-copy", True, 0.90, 0.90, False),
    ("same-package", True, 0.90, 0.90, False),   # the packaging checks passed: proof of their own
    (None, True, 0.90, 0.90, False),
])
def test_guessed_copy(tier, unconfirmed, near_copy, match, guessed):
    from knockoff.decide.signals import guessed_copy

    assert bool(guessed_copy(tier, unconfirmed, near_copy=near_copy, match=match)) is guessed


def test_guessed_copy_on_tier_indices():
    from knockoff.decide.signals import TIERS, guessed_copy

    tiers = np.arange(len(TIERS) + 1)
    got = guessed_copy(tiers, np.ones(len(tiers), bool), near_copy=0.9, match=0.9)
    assert got.tolist() == [t == "same-product" for t in (*TIERS, None)]


def test_a_guessed_match_with_a_hit_is_review_never_suspect():
    policy = Policy()
    signals = _signals(UNAUTHORIZED_SELLER="hit", PRICE_IMPLAUSIBLE="hit")
    assert rule.decide("same-product", signals, policy)[0] == "suspect"
    verdict, risk = rule.decide("same-product", signals, policy, guessed=True)
    assert verdict == "review" and risk <= rule.review_band(policy)[1]
    clear = _signals(**{code: "clear" for code in ("UNAUTHORIZED_SELLER", "PRICE_IMPLAUSIBLE")})
    assert rule.decide("same-product", clear, policy, guessed=True)[0] == rule.decide("same-product", clear, policy)[0]
