from dataclasses import replace

import pytest
from PIL import ImageOps

from knockoff import Catalog, Detector, Listing, Policy, build_index
from knockoff.decide.policy import EngineThresholds, ShortlistSettings

from conftest import textured_image


@pytest.fixture
def detector(catalog_dir):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    return Detector(index, verifier=None)


def _copy_of(catalog_dir, tmp_path, name="acme/tote_front.png", out="copy.jpg", edit=None):
    from PIL import Image

    with Image.open(catalog_dir / name) as image:
        image = image.convert("RGB")
        if edit:
            image = edit(image)
        image.save(tmp_path / out, quality=80)
    return tmp_path / out


def test_copy_by_unauthorized_seller_is_suspect_with_reasons(detector, catalog_dir, tmp_path):
    photo = _copy_of(catalog_dir, tmp_path, edit=ImageOps.mirror)
    verdict = detector.check(Listing([photo], title="Acme tote 1:1", price=45, currency="USD", seller="shop123"))
    assert verdict.verdict == "suspect"
    assert verdict.match.product_id == "tote" and verdict.match.tier == "near-copy"
    codes = [r.code for r in verdict.reasons]
    assert codes[0] == "VISUAL_MATCH"
    assert {"UNAUTHORIZED_SELLER", "PRICE_IMPLAUSIBLE", "REPLICA_TERMS", "BRAND_MISUSE"} <= set(codes)
    messages = " | ".join(r.message for r in verdict.reasons)
    assert "seller shop123 is not an authorized Acme seller" in messages
    assert "price 45 USD is 11% of the reference price 399 USD" in messages
    assert 0.9 < verdict.risk <= 1.0
    data = verdict.to_dict()
    assert data["verdict"] == "suspect" and data["match"]["brand"] == "Acme"


def test_authorized_seller_at_fair_price_is_authorized(detector, catalog_dir, tmp_path):
    photo = _copy_of(catalog_dir, tmp_path, name="acme/wallet.png")
    verdict = detector.check(Listing([photo], title="Acme wallet", price=140, currency="USD", seller="acme_store"))
    assert verdict.verdict == "authorized"
    assert verdict.match.product_id == "wallet"
    assert [r.code for r in verdict.reasons] == ["VISUAL_MATCH"]
    assert verdict.risk < 0.2


def test_unrelated_photo_is_no_match(detector, tmp_path):
    textured_image(99).save(tmp_path / "other.png")
    verdict = detector.check(Listing([tmp_path / "other.png"], title="Oak bookshelf", price=45, currency="USD",
                                     seller="x"))
    assert verdict.verdict == "no_match" and verdict.risk == 0.0


@pytest.mark.parametrize(
    "title, price, verdict, codes",
    [
        ("Acme tote replica", None, "review", {"TITLE_NAMES_BRAND", "REPLICA_TERMS"}),
        ("Akme tote, mirror quality", 300.0, "review", {"TITLE_NAMES_BRAND", "REPLICA_TERMS"}),  # an alias
        ("Acmee tote", 20.0, "review", {"TITLE_NAMES_BRAND", "PRICE_IMPLAUSIBLE"}),  # misspelled, 20 < 0.5 * 150
        ("Acme tote", 100.0, "no_match", set()),  # names the brand at a plausible price: nothing to say
        ("Acme tote", None, "no_match", set()),
        ("Tote bag replica", 5.0, "no_match", set()),  # replica terms but no brand
    ],
)
def test_title_naming_a_brand_without_a_photo_match(detector, tmp_path, title, price, verdict, codes):
    textured_image(99).save(tmp_path / "other.png")
    result = detector.check(Listing([tmp_path / "other.png"], title=title, price=price, currency="USD", seller="x"))
    assert result.verdict == verdict
    assert {r.code for r in result.reasons} - {"VISUAL_MATCH"} == codes
    if verdict == "review":
        authorized = detector.check(Listing([_copy_of(detector_catalog(detector), tmp_path, name="acme/wallet.png")],
                                            title="Acme wallet", price=140, currency="USD", seller="acme_store"))
        assert authorized.verdict == "authorized" and authorized.risk < result.risk


def detector_catalog(detector):
    """The catalog folder a test detector's index was built from."""
    return detector.index.references[0].image.parents[1]


def test_bare_photo_match_is_review_with_what_was_not_checked(detector, catalog_dir, tmp_path):
    verdict = detector.check(Listing([_copy_of(catalog_dir, tmp_path, name="acme/wallet.png")]))
    assert verdict.verdict == "review"
    states = {s.code: s.state for s in verdict.signals}
    assert states == {"VISUAL_MATCH": "hit", "UNAUTHORIZED_SELLER": "unknown", "PRICE_IMPLAUSIBLE": "unknown",
                      "BRAND_MISUSE": "unknown", "REPLICA_TERMS": "unknown",  # the text in the photo is read:
                      "BRAND_IN_PHOTO": "clear", "MISSPELLED_BRAND_IN_PHOTO": "clear"}  # no brand name printed
    messages = [r.message for r in verdict.reasons]
    assert "not checked: the listing names no seller" in messages
    assert "not checked: the listing gives no price" in messages


@pytest.mark.parametrize(
    "listing_kwargs, verdict",
    [
        ({"title": "Acme wallet", "price": 140, "currency": "USD", "seller": "acme_store"}, "authorized"),
        ({"title": "Acme wallet", "price": 140, "currency": "USD", "seller": ""}, "review"),  # empty seller
        ({"title": "Acme wallet", "price": 140, "currency": "EUR", "seller": "acme_store"}, "review"),  # no rate
        ({"title": "Acme wallet", "price": 140, "currency": "USD", "seller": "shop123"}, "suspect"),
        ({"title": "Acme wallet", "price": 20, "currency": "USD", "seller": "acme_store"}, "suspect"),
    ],
)
def test_authorized_needs_every_signal_checked(detector, catalog_dir, tmp_path, listing_kwargs, verdict):
    photo = _copy_of(catalog_dir, tmp_path, name="acme/wallet.png")
    assert detector.check(Listing([photo], **listing_kwargs)).verdict == verdict


def test_review_risk_lies_between_authorized_and_suspect(detector, catalog_dir, tmp_path):
    photo = _copy_of(catalog_dir, tmp_path, name="acme/wallet.png")
    authorized = detector.check(Listing([photo], title="Acme wallet", price=140, currency="USD", seller="acme_store"))
    review = detector.check(Listing([photo], title="Acme wallet", price=140, currency="USD"))
    bare = detector.check(Listing([photo]))
    suspect = detector.check(Listing([photo], title="Acme wallet", price=140, currency="USD", seller="shop123"))
    assert (authorized.verdict, review.verdict, bare.verdict, suspect.verdict) == (
        "authorized", "review", "review", "suspect")
    assert authorized.risk < review.risk <= bare.risk < suspect.risk


def test_a_brand_that_lets_anyone_sell_can_be_authorized_without_a_seller(catalog_dir, tmp_path):
    from conftest import write_csv

    write_csv(catalog_dir / "brands.csv", ["brand", "aliases", "authorized_sellers"],
              [["Acme", "", "*"], ["Globex", "", ""]])
    detector = Detector(build_index(Catalog.from_dir(catalog_dir), "perceptual"), verifier=None)
    photo = _copy_of(catalog_dir, tmp_path, name="acme/wallet.png")
    verdict = detector.check(Listing([photo], title="Wallet", price=140, currency="USD"))
    assert verdict.verdict == "authorized"
    assert verdict.signal("UNAUTHORIZED_SELLER").message == "Acme lets any seller sell its products"


def test_a_risk_below_min_risk_to_flag_is_review_not_authorized(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    photo = _copy_of(catalog_dir, tmp_path, name="acme/wallet.png")
    listing = Listing([photo], title="Acme wallet", price=140, currency="USD", seller="shop123")
    assert Detector(index, verifier=None).check(listing).verdict == "suspect"
    high = Detector(index, Policy(min_risk_to_flag=0.99), verifier=None).check(listing)
    assert high.verdict == "review" and "UNAUTHORIZED_SELLER" in {r.code for r in high.reasons}


def test_unreadable_listing_is_an_error_verdict(detector, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    verdict = detector.check(Listing([bad]))
    assert verdict.verdict == "error" and "bad.jpg" in verdict.error and "not an image" in verdict.error


def test_one_bad_photo_of_several_is_skipped(detector, catalog_dir, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    good = _copy_of(catalog_dir, tmp_path)
    verdict = detector.check(Listing([bad, good], seller="shop123"))
    assert verdict.verdict == "suspect" and verdict.skipped_images == (str(bad),)


def test_stricter_policy_changes_the_tier(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    strict = Policy().with_thresholds("perceptual", EngineThresholds(near_copy=1.0, match=1.0, candidate=1.0))
    photo = _copy_of(catalog_dir, tmp_path, edit=lambda im: im.resize((200, 200)))
    assert Detector(index, strict, verifier=None).check(Listing([photo], seller="x")).verdict == "no_match"


def test_currency_rates_enable_the_price_signal(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    photo = _copy_of(catalog_dir, tmp_path, name="globex/watch.png")
    listing = Listing([photo], price=200, currency="USD")
    plain = Detector(index, verifier=None).check(listing)
    assert {s.code: s.state for s in plain.signals}["PRICE_IMPLAUSIBLE"] == "unknown"
    rated = Detector(index, Policy(currency_rates={"USD": 1.0, "EUR": 1.1}), verifier=None).check(listing)
    assert rated.verdict == "suspect"
    assert any("price 200 USD (= 181.82 EUR) is 15% of the reference price 1,200 EUR" == r.message for r in rated.reasons)


def test_product_price_comes_from_another_image_of_the_product(catalog_dir, tmp_path):
    from conftest import write_csv

    write_csv(catalog_dir / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"], [
        ["Acme", "tote", "Acme Tote", "acme/tote_front.png", "", ""],
        ["Acme", "tote", "Acme Tote", "acme/tote_side.png", "399", "USD"],
    ])
    detector = Detector(build_index(Catalog.from_dir(catalog_dir), "perceptual"), verifier=None)
    verdict = detector.check(Listing([_copy_of(catalog_dir, tmp_path)], price=45, currency="USD"))
    assert verdict.match.reference_price == 399 and verdict.verdict == "suspect"


def test_keypoint_shortlist_auto_depends_on_the_engine(catalog_dir):
    catalog = Catalog.from_dir(catalog_dir)
    assert Detector(build_index(catalog, "perceptual")).keypoint_shortlist == 3
    assert Detector(build_index(catalog, "test-pixels")).keypoint_shortlist == 0
    two = Policy(shortlist=ShortlistSettings(size=2))
    assert Detector(build_index(catalog, "test-pixels"), two).keypoint_shortlist == 2
    assert Detector(build_index(catalog, "perceptual"), two, verifier=None).keypoint_shortlist == 0


def test_a_cause_that_leaves_several_signals_unchecked_is_one_reason(catalog_dir, tmp_path):
    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    text_off = Policy(text=replace(Policy().text, enabled=False))  # one cause, one message (else the photo's part)
    verdict = Detector(index, text_off).check(Listing([_copy_of(catalog_dir, tmp_path)]))  # no seller, title, price
    assert verdict.verdict == "review"
    unchecked = [r.message for r in verdict.reasons if r.message.startswith("not checked")]
    assert unchecked.count("not checked: the listing has no title") == 1
    assert sum(s.message == "the listing has no title" for s in verdict.signals) >= 2  # the signals keep both


def _plain_sky(size=(256, 256)):
    """A near-uniform photo (a clear sky): a faint gradient, no keypoints."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 12, size[0])[None, :, None]
    sky = np.array([110, 160, 225], dtype=np.float64)[None, None, :] + ramp
    return Image.fromarray(np.clip(np.broadcast_to(sky, (size[1], size[0], 3)), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("photo, verdict, state, tier", [
    ("sky", "no_match", "unknown", None),  # too plain to compare: names no brand, says it was not checked
    ("copy", "suspect", "hit", "near-copy"),  # a true copy keeps its original's detail: still found
    ("other", "review", "hit", "same-product"),  # detail enough, not confirmed: the global guess stays a review
])
def test_a_photo_too_plain_to_compare_names_no_brand(catalog_dir, tmp_path, photo, verdict, state, tier):
    # every photo is globally "close" to an official photo under these thresholds, as the sky once was (0.93)
    policy = Policy().with_thresholds("perceptual", EngineThresholds(-1.0, -1.0, -1.0, True))
    detector = Detector(build_index(Catalog.from_dir(catalog_dir), "perceptual"), policy)
    path = tmp_path / f"{photo}.jpg"
    image = {"sky": _plain_sky(), "other": textured_image(77)}.get(photo)
    if image is None:
        path = _copy_of(catalog_dir, tmp_path)
    else:
        image.save(path, quality=90)
    result = detector.check(Listing([path], seller="shop123"))
    visual = result.signal("VISUAL_MATCH")
    assert (result.verdict, visual.state, result.match.tier if result.match else None) == (verdict, state, tier)
    assert bool(visual.details.get("too_plain")) is (photo == "sky")
    if photo == "sky":
        assert result.reasons[0].message.startswith("not checked: the photo has too little detail to compare")
