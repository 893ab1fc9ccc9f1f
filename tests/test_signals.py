import numpy as np
import pytest

from knockoff.catalog.readers import Brand
from knockoff.decide import signals as sig
from knockoff.errors import ResultError

ACME = Brand("Acme", aliases=("Akme",), authorized_sellers=("acme_store", "BestBags"))
GOD_MORGON = Brand("God Morgon", authorized_sellers=("shop1",))
OPEN = Brand("Globex")
ANYONE = Brand("Initech", authorized_sellers=(sig.ANY_SELLER,))


@pytest.mark.parametrize(
    "similarity, verified, package, tier, state",
    [(0.97, None, None, "near-copy", "hit"), (0.85, None, None, "same-product", "hit"),
     (0.5, None, None, None, "clear"), (0.6, "300 matching keypoints", None, "near-copy", "hit"),
     (0.5, None, "40 keypoints on the package", "same-package", "hit"),
     (0.97, None, "40 keypoints on the package", "near-copy", "hit")],
)
def test_visual_match_tiers(similarity, verified, package, tier, state):
    s = sig.visual_match(similarity, "acme/tote.jpg", near_copy=0.95, match=0.8, verified_copy=verified,
                         same_package=package)
    assert (s.details["tier"], s.state) == (tier, state)
    assert s.details["verified"] is bool(verified) and s.details["same_package"] is bool(package)
    assert "acme/tote.jpg" in s.message and f"{similarity:.2f}" in s.message


@pytest.mark.parametrize(
    "similarity, package, match, tier",
    [(0.97, None, 0.8, "same-product"),  # an engine that sees products: a refuted copy may be the same product
     (0.97, None, 0.95, None),  # an engine that sees copies (match floor = near_copy): no match at all
     (0.97, "40 keypoints on the package", 0.95, "same-package"),
     (0.5, None, 0.8, None)],
)
def test_a_refuted_copy_is_never_a_near_copy(similarity, package, match, tier):
    s = sig.visual_match(similarity, "acme/tote.jpg", near_copy=0.95, match=match, same_package=package,
                         refuted="the colours do not agree under one colour change")
    assert s.details["tier"] == tier and s.details["refuted"] is True
    assert "copy of the official photo" not in s.message and "global similarity" in s.message


def test_an_unconfirmed_copy_is_a_look_alike_not_a_near_copy():
    s = sig.visual_match(0.97, "acme/tote.jpg", near_copy=0.95, match=0.95, unconfirmed="too few inliers (4 < 15)")
    assert s.details["tier"] == "same-product" and s.details["unconfirmed"] is True
    assert "looks like" in s.message and "too few inliers" in s.message and "copy of the official" not in s.message


@pytest.mark.parametrize(
    "similarity, match, verified, package, tier, state",
    [(0.97, 0.95, None, None, None, "unknown"),  # an engine that sees copies: a plain photo names no brand
     (0.93, 0.80, None, None, "same-product", "hit"),  # an engine that sees products still matches it
     (0.50, 0.95, None, None, None, "clear"),  # not close anyway: nothing left unchecked
     (0.97, 0.95, "300 matching keypoints", None, "near-copy", "hit"),  # a proof wins (never with too_plain)
     (0.40, 0.95, None, "40 keypoints on the package", "same-package", "hit")],
)
def test_a_photo_too_plain_to_compare_is_not_checked(similarity, match, verified, package, tier, state):
    s = sig.visual_match(similarity, "oatly/carton.jpg", near_copy=0.95, match=match, verified_copy=verified,
                         same_package=package, unconfirmed="too few keypoints in one of the photos",
                         too_plain="0 keypoints in it, a copy's proof needs 15 matching")
    assert (s.details["tier"], s.state, s.details["too_plain"]) == (tier, state, True)
    if state == "unknown":
        assert s.message.startswith("not checked: the photo has too little detail to compare")
        assert "oatly/carton.jpg" in s.message and f"{similarity:.2f}" in s.message


def test_without_local_features_a_near_copy_says_it_rests_on_the_global_descriptor():
    s = sig.visual_match(0.97, "acme/tote.jpg", near_copy=0.95, match=0.8)
    assert s.details["tier"] == "near-copy" and "global descriptor alone" in s.message


def test_tier_index_on_arrays_agrees_with_match_tier():
    rng = np.random.default_rng(0)
    sims = np.r_[rng.uniform(0.3, 1.0, 200), -np.inf]
    verified = rng.random(sims.size) < 0.2
    package = rng.random(sims.size) < 0.2
    refuted = rng.random(sims.size) < 0.3
    unconfirmed = rng.random(sims.size) < 0.3
    plain = rng.random(sims.size) < 0.2
    for match in (0.7, 0.9):
        tiers = sig.tier_index(sims, verified, package, near_copy=0.9, match=match, refuted=refuted,
                               unconfirmed=unconfirmed, too_plain=plain)
        for i in range(sims.size):
            one = sig.match_tier(float(sims[i]), verified=bool(verified[i]), same_package=bool(package[i]),
                                 near_copy=0.9, match=match, refuted=bool(refuted[i]),
                                 unconfirmed=bool(unconfirmed[i]), too_plain=bool(plain[i]))
            assert one == (sig.TIERS[tiers[i]] if tiers[i] < len(sig.TIERS) else None)


def test_signal_state_is_checked_and_round_trips():
    with pytest.raises(ResultError):
        sig.Signal("X", "maybe", "m")
    signal = sig.Signal("PRICE_IMPLAUSIBLE", "unknown", "no price", {"a": 1})
    assert sig.Signal.from_dict(signal.to_dict()) == signal


@pytest.mark.parametrize(
    "seller, brand, state",
    [("shop123", ACME, "hit"), ("bestbags", ACME, "clear"), (" BestBags ", ACME, "clear"), (None, ACME, "unknown"),
     ("", ACME, "unknown"), ("anyone", OPEN, "unknown"), ("anyone", ANYONE, "clear"), (None, ANYONE, "clear")],
)
def test_unauthorized_seller(seller, brand, state):
    assert sig.unauthorized_seller(seller, brand).state == state
    expected = {"hit": False, "clear": True, "unknown": None}[state]
    assert sig.seller_authorized(brand, seller) is expected


def test_unauthorized_seller_message():
    assert sig.unauthorized_seller("shop123", ACME).message == "seller shop123 is not an authorized Acme seller"


@pytest.mark.parametrize(
    "price, currency, ref_price, ref_currency, rates, state, share",
    [
        (45, "USD", 399, "USD", {}, "hit", 45 / 399),
        (300, "USD", 399, "USD", {}, "clear", 300 / 399),
        (199, "USD", 400, "USD", {}, "hit", 199 / 400),
        (200, "USD", 400, "USD", {}, "clear", 0.5),
        (100, "EUR", 400, "USD", {}, "unknown", None),
        (100, "EUR", 400, "USD", {"EUR": 1.1, "USD": 1.0}, "hit", 110 / 400),
        (None, "USD", 400, "USD", {}, "unknown", None),
        (10, "USD", None, None, {}, "unknown", None),
        (10, None, 400, "USD", {}, "unknown", None),
    ],
)
def test_price_implausible(price, currency, ref_price, ref_currency, rates, state, share):
    s = sig.price_implausible(price, currency, ref_price, ref_currency, ratio=0.5, rates=rates)
    assert s.state == state
    if share is not None:
        assert s.details["share"] == pytest.approx(share)


def test_price_message_matches_design():
    s = sig.price_implausible(45, "USD", 399, "USD")
    assert s.message == "price 45 USD is 11% of the reference price 399 USD"


@pytest.mark.parametrize(
    "title, brand, authorized, state, how",
    [
        ("Acme tote bag", ACME, True, "clear", "named"),
        ("Acme tote bag", ACME, False, "hit", "unauthorized-name"),
        ("Akme tote", ACME, None, "clear", "named"),
        ("Acmee tote bag", ACME, True, "hit", "misspelled"),
        ("A-c-m-e tote", ACME, None, "hit", "misspelled"),  # spelled apart to dodge filters
        ("Nice tote bag", ACME, False, "hit", "hidden"),
        ("Nice tote bag", ACME, True, "clear", None),
        ("", ACME, False, "unknown", None),
        ("godmorgon juice", GOD_MORGON, None, "clear", "named"),
        ("God Morgn apple juice", GOD_MORGON, None, "hit", "misspelled"),
        ("Good morning juice", GOD_MORGON, None, "hit", "hidden"),
    ],
)
def test_brand_misuse(title, brand, authorized, state, how):
    s = sig.brand_misuse(title, brand, seller_authorized=authorized)
    assert s.state == state
    assert s.details.get("how") == how


@pytest.mark.parametrize(
    "title, state, found",
    [
        ("Acme tote 1:1 mirror quality", "hit", ["1:1", "mirror quality"]),
        ("AAA+ grade replica", "hit", ["replica", "aaa+"]),
        ("Acme tote dupe!", "hit", ["dupe"]),
        ("Acme tote, genuine leather", "clear", []),
        ("Battery AAAA pack", "clear", []),
        ("Size 11:15", "clear", []),
        ("", "unknown", []),
    ],
)
def test_replica_terms(title, state, found):
    s = sig.replica_terms(title, ("replica", "1:1", "aaa", "aaa+", "mirror quality", "dupe"))
    assert s.state == state
    assert sorted(s.details.get("terms", [])) == sorted(found)


@pytest.mark.parametrize("a, b, d", [("acme", "acme", 0), ("acme", "acmee", 1), ("acme", "amce", 1),
                                     ("kitten", "sitting", 3), ("", "abc", 3), ("abc", "", 3)])
def test_edit_distance(a, b, d):
    assert sig.edit_distance(a, b, limit=3) == d


def test_convert_price_uses_given_rates_only():
    assert sig.convert_price(10, "USD", "USD", {}) == 10
    assert sig.convert_price(10, "EUR", "USD", {"EUR": 1.1}) is None
    assert sig.convert_price(10, "EUR", "USD", {"EUR": 1.1, "USD": 1.0}) == pytest.approx(11.0)


@pytest.mark.parametrize(
    "title, state, brand, how",
    [
        ("Acme tote replica", "hit", "Acme", "exact"),
        ("akme tote", "hit", "Acme", "exact"),  # an alias
        ("Acmee tote", "hit", "Acme", "misspelled"),
        ("God Morgon juice, Acme tote", "hit", "Acme", "exact"),  # first by name
        ("Godmorgon juice", "hit", "God Morgon", "exact"),
        ("Garden chair", "clear", None, None),
        ("", "unknown", None, None),
    ],
)
def test_title_names_brand(title, state, brand, how):
    s = sig.title_names_brand(title, [GOD_MORGON, ACME, OPEN])
    assert s.code == sig.TITLE_NAMES_BRAND and s.state == state
    assert s.details.get("brand") == brand and s.details.get("how") == how


@pytest.mark.parametrize(
    "price, currency, prices, rates, state, share",
    [
        (20, "USD", [(150, "USD"), (399, "USD")], {}, "hit", 20 / 150),  # below half of the cheapest product
        (100, "USD", [(150, "USD"), (399, "USD")], {}, "clear", 100 / 150),  # plausible for the cheaper one
        (20, "EUR", [(150, "USD")], {}, "unknown", None),  # no rate
        (20, "EUR", [(150, "USD")], {"EUR": 1.1, "USD": 1.0}, "hit", 22 / 150),
        (20, "USD", [(150, "USD"), (100, "EUR")], {}, "hit", 20 / 150),  # only the comparable one counts
        (None, "USD", [(150, "USD")], {}, "unknown", None),
        (20, "USD", [], {}, "unknown", None),
    ],
)
def test_price_implausible_for_brand(price, currency, prices, rates, state, share):
    s = sig.price_implausible_for_brand(price, currency, "Acme", prices, ratio=0.5, rates=rates)
    assert s.code == sig.PRICE_IMPLAUSIBLE and s.state == state
    if share is not None:
        assert s.details["share"] == pytest.approx(share)
        assert "of the cheapest Acme reference price" in s.message
