"""The calibration decides with the detector's own rule: its simulated verdicts are the Detector's."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from knockoff import Catalog, Detector, Policy, build_index, read_listings
from knockoff.decide.policy import EngineThresholds
from knockoff.evaluate.calibrate import collect_evidence, permissive_policy, simulate
from knockoff.match import verify


def _extra_rows(root: Path) -> None:
    """Listings that exercise every verdict: a copy with no seller or no price, a title that names a brand with
    replica terms on an unrelated photo, a listing with an unreadable photo."""
    with (root / "listings.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with (root / "brands.csv").open(encoding="utf-8") as handle:
        brand = next(csv.DictReader(handle))["brand"]
    genuine = next(r for r in rows if r["label"] == "genuine")
    unrelated = next(r for r in rows if r["label"] == "unrelated")
    (root / "listings" / "broken.jpg").write_bytes(b"not an image")
    extra = [
        {**genuine, "listing_id": "X-no-seller", "seller": ""},
        {**genuine, "listing_id": "X-no-price", "price": "", "currency": ""},
        {**unrelated, "listing_id": "X-title", "title": f"{brand} replica, 1:1", "price": "3"},
        {**unrelated, "listing_id": "X-broken", "image": "listings/broken.jpg"},
    ]
    with (root / "listings.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + extra)


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    from knockoff.evaluate.synthetic import make_labeled_set

    root = tmp_path_factory.mktemp("calib") / "set"
    make_labeled_set(root, n_brands=2, products_per_brand=2, listings_per_product=3, n_unrelated=3, seed=5,
                     image_size=160, edit_kinds=("crop", "border", "rotate-small", "perspective", "caption-bar"))
    _extra_rows(root)
    return root, build_index(Catalog.from_dir(root), "perceptual")


def _variants(base: Policy) -> list[Policy]:
    """The base policy, and thresholds and a flag floor that move listings across tiers and verdicts."""
    t = base.thresholds_for("perceptual")
    tight = base.with_thresholds("perceptual", EngineThresholds(0.97, 0.9, t.candidate, True))
    loose = base.with_thresholds("perceptual", EngineThresholds(0.8, 0.7, t.candidate, False))
    return [base, replace(tight, min_risk_to_flag=0.7), loose, replace(base, min_risk_to_flag=0.9)]


@pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")
@pytest.mark.parametrize("packaging", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_simulated_verdicts_equal_detector_verdicts(labeled, packaging):
    root, index = labeled
    base = Policy(packaging_match=packaging)
    run = collect_evidence(root, index, base)
    listings = [item.listing for item in read_listings(root / "listings.csv")]
    assert [e.listing_id for e in run.evidence] == [listing.listing_id for listing in listings]
    seen = set()
    for policy in _variants(base):
        simulated = simulate(run.evidence, policy, "perceptual", run.verifier_on)
        detector = Detector(index, policy)
        actual = [(v.verdict, v.risk) for v in map(detector.check, listings)]
        assert simulated == actual
        seen |= {verdict for verdict, _ in actual}
    assert {"suspect", "review", "authorized", "no_match", "error"} <= seen  # every branch of the rule was used


def test_permissive_policy_matches_whatever_a_stricter_one_would():
    base = Policy(min_risk_to_flag=0.5)
    loose = permissive_policy(base, "perceptual")
    t = loose.thresholds_for("perceptual")
    assert t.near_copy == t.match == t.candidate == base.thresholds_for("perceptual").candidate
    assert loose.min_risk_to_flag == 0.0 and loose.thresholds_for("clip") == base.thresholds_for("clip")


@pytest.mark.parametrize("similarity, same_package, unconfirmed, too_plain, brand_only, verdict, look_alike", [
    (0.3, True, True, False, False, "suspect", False),  # a product's package, a seller not on the list
    (0.3, True, True, False, True, "review", False),  # the brand's package only: a person tells which product
    (0.95, False, True, False, False, "review", False),  # a global guess
    (0.95, False, True, True, False, "no_match", False),  # a photo too plain to compare names no brand
    # a package whose photo looks like the official one without being it: brand only from the engine's match
    # similarity (0.80) on; below it (marked so under the permissive policy only) the product is named
    (0.85, True, True, False, False, "review", True),
    (0.6, True, True, False, False, "suspect", True),
])
def test_simulate_decides_brand_only_and_too_plain_as_the_detector(similarity, same_package, unconfirmed, too_plain,
                                                                   brand_only, verdict, look_alike):
    from knockoff.decide.signals import Signal
    from knockoff.evaluate.calibrate import Evidence

    risk = (Signal("UNAUTHORIZED_SELLER", "hit", "seller x is not authorized"),
            Signal("PRICE_IMPLAUSIBLE", "clear", "fair"), Signal("BRAND_MISUSE", "clear", "no title words"),
            Signal("REPLICA_TERMS", "clear", "none"))
    evidence = Evidence("L1", "counterfeit", similarity, False, same_package, risk, (), unconfirmed=unconfirmed,
                        too_plain=too_plain, brand_only=brand_only, look_alike=look_alike)
    assert simulate([evidence], Policy(packaging_match=True), "perceptual", True)[0][0] == verdict


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """Printed-brand listings (only their photos' text names a brand) and two copies of an official photo, one
    sold by an unknown shop (a suspect before any text is read), one by the official store."""
    from knockoff.evaluate.printed import make_printed_set

    root = make_printed_set(tmp_path_factory.mktemp("printed") / "set", n_listings=10, seed=3, image_size=160,
                            brands=("Acme", "Norda")).root
    with (root / "listings.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with (root / "references.csv").open(encoding="utf-8") as handle:
        reference = next(csv.DictReader(handle))
    official = next(r["seller"] for r in rows if r["label"] == "genuine")
    copies = [{**rows[0], "listing_id": f"X-copy-{n}", "image": reference["image"], "seller": seller, "label": label,
               "product_id": reference["product_id"]} for n, (seller, label) in
              enumerate([("shop99", "counterfeit"), (official, "genuine")])]
    with (root / "listings.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + copies)
    return root, build_index(Catalog.from_dir(root), "perceptual")


@pytest.mark.slow
@pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")
def test_simulated_verdicts_equal_detector_verdicts_with_text(printed):
    """With text reading on: a listing left without a photo match by a stricter threshold falls back to the
    brand its photo's text names (tier ``text``), and a copy that is a suspect before its text is read is
    decided without it, as the detector does."""
    from knockoff.decide.policy import TextSettings

    root, index = printed
    base = Policy(text=TextSettings(enabled=True))
    run = collect_evidence(root, index, base)
    assert any(e.fallback_tier == "text" for e in run.evidence)  # the text tier is simulated, not dropped
    assert any(e.unread_signals is not None for e in run.evidence)
    listings = [item.listing for item in read_listings(root / "listings.csv")]
    strict = base.with_thresholds("perceptual", EngineThresholds(1.0, 1.0, 0.55, True))
    for policy in [*_variants(base), strict]:
        simulated = simulate(run.evidence, policy, "perceptual", run.verifier_on)
        detector = Detector(index, policy)
        assert simulated == [(v.verdict, v.risk) for v in map(detector.check, listings)]


@pytest.mark.parametrize("details, brand_only, look_alike", [
    ({"brand_only": True, "look_alike": True}, False, True),  # brand only from the engine's match similarity on
    ({"brand_only": True, "scene": "a re-shot scene"}, True, False),  # a scene: brand only whatever the similarity
    ({"brand_only": True, "look_alike": True, "scene": "a re-shot scene"}, True, True),  # both: still brand only
    ({"brand_only": True}, True, False),  # siblings alike
])
def test_evidence_keeps_a_scene_brand_only_whatever_the_similarity(details, brand_only, look_alike):
    from knockoff.decide.signals import Signal
    from knockoff.decide.verdict import Match, Verdict
    from knockoff.evaluate.calibrate import evidence_of

    visual = Signal("VISUAL_MATCH", "hit", "photo shows ...", {"tier": "same-package", "similarity": 0.6,
                                                               "same_package": True, **details})
    match = Match("Roomy", "", "", "room.png", "room.png", 0.6, "same-package", "again.jpg")
    evidence = evidence_of(Verdict("L1", "review", 0.5, match, (), (visual,)), "unrelated")
    assert (evidence.brand_only, evidence.look_alike, evidence.same_package) == (brand_only, look_alike, True)


def test_a_listing_whose_photos_cannot_be_read_again_stops_the_calibration():
    """Calibration with text on checks a matched listing once more as unmatched: a photo changed or removed since
    the scan is an error naming the listing, never a silent 'no match' in the search."""
    from knockoff.decide.signals import Signal
    from knockoff.decide.verdict import Match, Verdict
    from knockoff.errors import LabeledSetError
    from knockoff.evaluate.calibrate import evidence_of

    visual = Signal("VISUAL_MATCH", "hit", "copy", {"tier": "near-copy", "similarity": 0.97, "verified": True})
    match = Match("Acme", "p", "P", "p.png", "p.png", 0.97, "near-copy", "l.png")
    matched = Verdict("L7", "suspect", 0.9, match, (), (visual,))
    gone = Verdict("L7", "error", 0.0, None, (), (), error="photo l.png: no such file")
    with pytest.raises(LabeledSetError, match="L7.*no such file"):
        evidence_of(matched, "counterfeit", lambda: gone)
