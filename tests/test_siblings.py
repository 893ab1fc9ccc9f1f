"""Which of a brand's alike products a new photo of its package shows, by its small print (knockoff.match.siblings)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knockoff.match.siblings import DETAIL_LEAD, pick_by_print, product_check
from knockoff.match.verify import GeometricMatch, PackagingSettings


def match(inliers: int, detail: float | None, passes: bool = True) -> GeometricMatch:
    """A listing photo's match with one official photo; ``passes=False``: the package fills too little of the
    listing photo (a neighbour on the shelf)."""
    return GeometricMatch(inliers=inliers, matches=inliers * 2, inlier_ratio=0.5, reference_coverage=0.6,
                          listing_coverage=0.5 if passes else 0.1, mirrored=False, rotation_deg=0.0, scale=1.0,
                          verified=False, failed_check="inlier ratio", reference_box=((0, 0), (1, 0), (1, 1), (0, 1)),
                          anisotropy=1.2, inlier_spread=0.2, detail_agreement=detail)


@pytest.mark.parametrize(("items", "chosen"), [
    # alike by keypoints (within the margin), the second reproduces its print by far the best
    ([("a", match(40, 0.45)), ("b", match(36, 0.62))], 1),
    ([("a", match(40, 0.52)), ("b", match(36, 0.62))], None),  # a lead below DETAIL_LEAD: no product
    ([("a", match(40, 0.45)), ("b", match(36, 0.62)), ("c", match(38, 0.55))], None),  # c is close behind b
    ([("a", match(40, 0.45)), ("b", match(20, 0.62))], None),  # b is not alike: a won by keypoints, not b
    ([("a", match(40, 0.45))], None),  # one product: nothing to tell apart
    ([("a", match(40, 0.45)), ("b", match(36, None))], None),  # b's print could not be compared
    ([("a", match(40, 0.45)), ("b", match(36, 0.62)), ("c", match(60, 0.3, passes=False))], None),  # a stronger
    # package that fails the checks: the photo's subject is not clear
    ([("a", match(40, 0.45)), ("b", match(36, 0.62)), ("b", match(12, 0.2))], 1),  # b's best photo counts
    ([("a", match(40, 0.45)), ("b", match(36, 0.62, passes=False))], None),  # b's package fails the checks
    ([], None),
])
def test_the_small_print_tells_alike_products_apart(items, chosen):
    assert pick_by_print(items, PackagingSettings()) == chosen


def test_the_lead_is_the_callers_to_choose():
    items = [("a", match(40, 0.45)), ("b", match(36, 0.52))]
    assert pick_by_print(items, PackagingSettings()) is None
    assert pick_by_print(items, PackagingSettings(), lead=0.05) == 1
    assert 0 < DETAIL_LEAD < 1


def _printed(seed: int):
    """A package design (``textured_image(3)``) with a product's own small print: a patch of fine texture."""
    import numpy as np
    from PIL import Image

    from conftest import textured_image

    image = np.asarray(textured_image(3)).copy()
    rng = np.random.default_rng(seed)
    image[150:250, 40:216] = rng.integers(0, 255, (100, 176, 1), dtype=np.uint8).repeat(3, axis=2)
    return Image.fromarray(image)


def test_a_match_passing_the_packaging_checks_has_its_print_measured_on_demand():
    from knockoff.match import verify

    if not verify.opencv_available():
        pytest.skip("OpenCV with SIFT is not installed")
    from knockoff.match.verify import GeometricVerifier, VerifierSettings
    from test_packaging import rephotograph

    photo = rephotograph(_printed(1), seed=2)
    never_a_copy = VerifierSettings(min_inliers=100_000)
    with_packaging = GeometricVerifier(never_a_copy, packaging=PackagingSettings())
    references = [with_packaging.features(_printed(s)) for s in (1, 2)]
    first = [with_packaging.verify(photo, reference) for reference in references]
    assert all(m.detail_agreement is None for m in first)  # not measured until asked for (it costs)
    own, sibling = (with_packaging.with_print(photo, r, m) for r, m in zip(references, first))
    assert not own.verified and own.detail_agreement is not None and sibling.detail_agreement is not None
    assert own.detail_agreement - sibling.detail_agreement >= DETAIL_LEAD  # its own print, not the sibling's
    # here the keypoints alone tell them apart (not alike); had the sibling matched about as well, the print would
    assert pick_by_print([("own", own), ("sibling", sibling)], PackagingSettings()) is None
    alike = replace(sibling, inliers=own.inliers - 2)
    assert pick_by_print([("sibling", alike), ("own", own)], PackagingSettings()) == 1
    # without the packaging match nothing beyond the copy check is measured
    plain = GeometricVerifier(never_a_copy)
    assert plain.with_print(photo, references[0], first[0]).detail_agreement is None


def printed_match(detail: float | None, verified: bool = False) -> GeometricMatch:
    return replace(match(40, detail), verified=verified)


@pytest.mark.parametrize(("item", "settings", "why"), [
    (printed_match(0.75), PackagingSettings(), None),  # the whole face's print agrees: the product
    (printed_match(0.6), PackagingSettings(min_product_detail=0.6), None),  # at the minimum
    (printed_match(0.45), PackagingSettings(), "only 45 % of the official photo's small print agrees"),
    (printed_match(None), PackagingSettings(), "could not be compared"),  # not measured: no evidence
    (printed_match(0.45, verified=True), PackagingSettings(), None),  # a proven copy needs no more
    (printed_match(0.45), PackagingSettings(min_product_detail=0.0), None),  # the rule turned off
    (printed_match(None), PackagingSettings(min_product_detail=0.0), None),
    (printed_match(0.7), PackagingSettings(min_product_detail=0.8), "below 80 %"),
])
def test_a_product_is_named_only_on_print_a_sibling_would_not_reproduce(item, settings, why):
    found = product_check(item, settings)
    assert (found is None) is (why is None)
    if why is not None:
        assert why in found


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_min_product_detail_is_validated(value):
    from knockoff.errors import PolicyError

    with pytest.raises(PolicyError, match="min_product_detail"):
        PackagingSettings(min_product_detail=value)
    assert 0 < PackagingSettings().min_product_detail < 1


def _one_product_catalog(root):
    """Brand Juicy with one product in the catalog, "apple" (its design with its own small print), and an
    unrelated brand; Juicy's "pear" (the same design, another print) is missing from the catalog."""
    from conftest import textured_image, write_csv

    root.mkdir(parents=True)
    _printed(2).save(root / "apple.png")
    textured_image(9).save(root / "watch.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"],
              [["Juicy", "", "juicy_store"], ["Globex", "", ""]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"], [
        ["Juicy", "apple", "Juicy Apple", "apple.png", "3", "EUR"],
        ["Globex", "watch", "Globex Watch", "watch.png", "1200", "EUR"],
    ])
    return root


@pytest.mark.parametrize(("listed", "minimum", "product", "verdict"), [
    ("pear", None, "", "review"),  # a sibling missing from the catalog: its package shows the brand, not apple
    ("pear", 0.0, "apple", "suspect"),  # without the rule the sibling is named as apple (the wrong product)
    ("apple", None, "apple", "suspect"),  # the product's own package, photographed anew: named
])
def test_a_siblings_new_photo_names_the_brand_only(tmp_path, listed, minimum, product, verdict):
    from knockoff.match import verify

    if not verify.opencv_available():
        pytest.skip("OpenCV with SIFT is not installed")
    from knockoff import Catalog, Detector, Listing, Policy, build_index
    from test_packaging import no_copy_verifier, rephotograph

    root = _one_product_catalog(tmp_path / "refs")
    photo = tmp_path / "shelf.jpg"
    rephotograph(_printed(1 if listed == "pear" else 2), seed=3).save(photo, quality=90)
    policy = Policy(packaging_match=True)
    if minimum is not None:
        policy = replace(policy, packaging=replace(policy.packaging, min_product_detail=minimum))
    result = Detector(build_index(Catalog.from_dir(root), "perceptual"), policy, verifier=no_copy_verifier()).check(
        Listing([photo], seller="shop123"))
    assert result.match is not None and result.match.tier == "same-package", result.reasons
    assert (result.match.brand, result.match.product_id, result.verdict) == ("Juicy", product, verdict)
    visual = result.signal("VISUAL_MATCH")
    assert bool(visual.details.get("unproven")) is (product == "")
    if product == "":
        assert visual.details["brand_only"] is True
        assert "photo shows the packaging design of Juicy" in visual.message
        assert "official photo apple.png of Juicy Apple" in visual.message
        assert "but not that it is that product: only" in visual.message and "small print agrees" in visual.message
        assert "least in its" in visual.message  # where the print differs
        assert "which of the brand's products it is, a person must tell (review, not a suspect)" in visual.message
        assert visual.message.count("a person") == 1  # said once


@pytest.mark.parametrize(("words_name", "product", "tier", "verdict"), [
    ("apple", "apple", "text", "suspect"),  # the package won without singling out its product; the words do
    (None, "", "same-package", "review"),  # no words: the brand only
])
def test_the_words_may_name_the_product_a_package_did_not_single_out(tmp_path, monkeypatch, words_name, product,
                                                                     tier, verdict):
    from knockoff.match import verify

    if not verify.opencv_available():
        pytest.skip("OpenCV with SIFT is not installed")
    from knockoff import Catalog, Detector, Listing, Policy, build_index
    from knockoff.decide import detector as detector_module
    from knockoff.decide.policy import TextSettings
    from knockoff.decide.text_evidence import PhotoEvidence, TextMatcher
    from knockoff.match.text_index import product_key
    from test_packaging import no_copy_verifier, rephotograph
    from test_text_fusion import photo

    root = _one_product_catalog(tmp_path / "refs")
    shot = tmp_path / "shelf.jpg"
    rephotograph(_printed(1), seed=3).save(shot, quality=90)  # too little of apple's print to name it alone

    def no_brand_read(self, images, paths, reading=None):
        return PhotoEvidence((photo("FRESH"),), (str(shot),), ((100, 100),), ())

    def words(self, evidence, brand, product=None):
        return ((product_key("Juicy", words_name), (words_name.upper(),)) if words_name and product is None
                else (None, ()))

    monkeypatch.setattr(detector_module, "reader_status", lambda settings=None: None)  # no OCR engine needed
    monkeypatch.setattr(TextMatcher, "read", no_brand_read)
    monkeypatch.setattr(TextMatcher, "product_words", words)
    policy = Policy(packaging_match=True, text=TextSettings(enabled=True))
    result = Detector(build_index(Catalog.from_dir(root), "perceptual"), policy, verifier=no_copy_verifier()).check(
        Listing([shot], seller="shop123"))
    assert result.match is not None and result.match.brand == "Juicy"
    assert (result.match.product_id, result.match.tier, result.verdict) == (product, tier, verdict)
    visual = result.signal("VISUAL_MATCH")
    assert visual.details["unproven"] and visual.details["brand_only"] is True
    assert ("the photo's words" in visual.message) is bool(product)
