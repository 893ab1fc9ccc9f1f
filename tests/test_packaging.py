"""The same-packaging match (Policy.packaging_match): a new photo of the same printed package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from knockoff import Catalog, Detector, Listing, Policy, build_index
from knockoff.decide import signals as sig
from knockoff.match import verify
from knockoff.match.verify import GeometricMatch, GeometricVerifier, PackagingSettings, VerifierSettings, packaging_check

from conftest import textured_image

pytestmark = pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")


def rephotograph(package: Image.Image, seed: int = 0) -> Image.Image:
    """The package photographed anew: seen at an angle (homography), under uneven light, small on a
    cluttered background, slightly blurred and noisy."""
    import cv2

    rng = np.random.default_rng(seed)
    w, h = package.size
    canvas = (520, 440)
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[120, 70], [400, 100], [390, 360], [110, 380]])
    matrix = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(np.asarray(package.convert("RGB")), matrix, canvas, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), matrix, canvas) > 0
    background = rng.integers(60, 200, (canvas[1] // 20, canvas[0] // 20, 3), dtype=np.uint8)
    background = np.asarray(Image.fromarray(background).resize(canvas, Image.Resampling.BICUBIC))
    photo = np.where(mask[..., None], warped, background).astype(np.float64)
    light = np.linspace(0.6, 1.15, canvas[0])[None, :, None]  # light falling off across the shelf
    photo = photo * light * 0.9 + 20 + rng.normal(0, 6, photo.shape)
    image = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.8))


@pytest.fixture
def index(catalog_dir):
    return build_index(Catalog.from_dir(catalog_dir), "perceptual")


def no_copy_verifier() -> GeometricVerifier:
    """A verifier whose copy check cannot pass, so that only the packaging path can match."""
    return GeometricVerifier(VerifierSettings(min_inliers=100_000), packaging=PackagingSettings())


def test_new_photo_of_the_package_is_a_same_package_match(index, catalog_dir, tmp_path):
    photo = tmp_path / "shelf.jpg"
    rephotograph(Image.open(catalog_dir / "acme" / "wallet.png")).save(photo, quality=85)
    verdict = Detector(index, Policy(packaging_match=True), verifier=no_copy_verifier()).check(
        Listing([photo], seller="x"))
    assert verdict.match is not None and verdict.match.product_id == "wallet"
    assert verdict.match.tier == "same-package"
    message = verdict.reasons[0].message
    assert "keypoints on the listing's packaging match official photo" in message
    assert "a new photo of the same package" in message
    assert message.count("wallet.png") == 1  # the official photo is named once


def test_new_photo_of_the_package_is_found_with_the_default_verifier(index, catalog_dir, tmp_path):
    photo = tmp_path / "shelf.jpg"
    rephotograph(Image.open(catalog_dir / "acme" / "wallet.png"), seed=1).save(photo, quality=85)
    verdict = Detector(index, Policy(packaging_match=True)).check(Listing([photo], seller="x"))
    assert verdict.match is not None and verdict.match.product_id == "wallet"
    assert verdict.match.tier in ("same-package", "near-copy")


def test_packaging_match_is_on_by_default_and_can_be_turned_off(index, catalog_dir, tmp_path):
    assert Policy().packaging_match is True
    photo = tmp_path / "shelf.jpg"
    rephotograph(Image.open(catalog_dir / "acme" / "wallet.png")).save(photo, quality=85)
    verdict = Detector(index, verifier=no_copy_verifier()).check(Listing([photo], seller="x"))
    assert verdict.match is not None and verdict.match.tier == "same-package"
    assert verdict.match.product_id == "wallet" and verdict.verdict == "suspect"
    off = Policy.from_json('{"packaging_match": false}')
    assert Detector(index, off, verifier=no_copy_verifier()).check(Listing([photo], seller="x")).verdict == "no_match"


@pytest.mark.parametrize("seed", [50, 51, 52, 53])
def test_unrelated_packages_do_not_match(index, tmp_path, seed):
    photo = tmp_path / f"other{seed}.jpg"
    rephotograph(textured_image(seed), seed=seed).save(photo, quality=85)
    for verifier in (no_copy_verifier(), "auto"):
        verdict = Detector(index, Policy(packaging_match=True), verifier=verifier).check(Listing([photo]))
        assert verdict.verdict == "no_match", verdict.reasons


def _match(**changes: object) -> GeometricMatch:
    values: dict = dict(inliers=30, matches=60, inlier_ratio=0.5, reference_coverage=0.8, listing_coverage=0.3,
                        mirrored=False, rotation_deg=0.0, scale=1.0, verified=False, failed_check="x",
                        reference_box=((0, 0), (1, 0), (1, 1), (0, 1)), anisotropy=1.3, inlier_spread=0.3)
    values.update(changes)
    return GeometricMatch(**values)


@pytest.mark.parametrize("changes, failed", [
    ({}, None),
    ({"inliers": 8}, "too few inliers"),
    ({"inlier_ratio": 0.1}, "inlier ratio"),
    ({"mirrored": True}, "mirrored"),
    ({"reference_box": ()}, "implausible"),
    ({"anisotropy": 9.0}, "implausible"),
    ({"reference_coverage": 0.02}, "covered area"),
    ({"inlier_spread": 0.01}, "clustered"),
    # a carton on the shelf behind the photo's subject
    ({"listing_coverage": 0.15}, "fills only 15 %"),
])
def test_packaging_check(changes, failed):
    outcome = packaging_check(_match(**changes))
    assert (outcome is None) if failed is None else (outcome is not None and failed in outcome)


def test_settings_and_policy_round_trip():
    with pytest.raises(ValueError):
        PackagingSettings(min_inliers=3)
    with pytest.raises(ValueError):
        PackagingSettings(min_margin=0.5)
    with pytest.raises(ValueError, match="min_listing_coverage"):
        PackagingSettings(min_listing_coverage=1.5)
    policy = Policy(packaging_match=True)
    assert Policy.from_dict(policy.to_dict()).packaging_match is True


def test_visual_match_same_package_tier():
    signal = sig.visual_match(0.3, "acme/x.png", near_copy=0.9, match=0.9, same_package="42 keypoints ...")
    assert signal.hit and signal.details["tier"] == "same-package" and signal.details["same_package"] is True
    copy = sig.visual_match(0.3, "acme/x.png", near_copy=0.9, match=0.9, verified_copy="412 ...",
                            same_package="42 ...")
    assert copy.details["tier"] == "near-copy"


@pytest.mark.parametrize("items, chosen", [
    # two products of one brand alike (a shared package design), every other brand far behind: the brand
    ([("acme", "a", 30), ("acme", "b", 28), ("globex", "w", 10)], 0),
    ([("acme", "a", 28), ("acme", "b", 30), ("globex", "w", 10)], 1),
    # another brand close behind: no brand either
    ([("acme", "a", 30), ("acme", "b", 28), ("globex", "w", 25)], None),
    # no sibling alike (one product alone, or the sibling far behind): the product match's business, not this
    ([("acme", "a", 30), ("globex", "w", 10)], None),
    ([("acme", "a", 30), ("acme", "b", 12), ("globex", "w", 10)], None),
    # the sibling alike fails the packaging checks (too few inliers here): not alike packages shown
    ([("acme", "a", 30), ("acme", "b", 28, {"inlier_ratio": 0.1}), ("globex", "w", 10)], None),
    # a package of the brand with more inliers fails the checks (on the shelf behind the subject): no brand
    ([("acme", "a", 17), ("acme", "b", 16), ("acme", "c", 34, {"listing_coverage": 0.15}), ("globex", "w", 6)],
     None),
    # a mirrored match counts for nothing, as sibling or as rival
    ([("acme", "a", 30), ("acme", "b", 29, {"mirrored": True}), ("globex", "w", 10)], None),
    ([("acme", "a", 30), ("acme", "b", 28), ("globex", "w", 29, {"mirrored": True})], 0),
    # the best fails the packaging checks: nothing passes
    ([("acme", "a", 8), ("acme", "b", 8), ("globex", "w", 2)], None),
])
def test_pick_same_brand(items, chosen):
    from knockoff.match.verify import pick_same_brand

    pairs = [((brand, product), _match(inliers=n, **(rest[0] if rest else {}))) for brand, product, n, *rest in items]
    assert pick_same_brand(pairs) == chosen


def _siblings_catalog(root):
    """One brand whose two products share a package design and differ in the colour of a flavour patch (of one
    brightness: alike for grayscale keypoints), and an unrelated brand."""
    from PIL import ImageDraw

    from conftest import write_csv

    root.mkdir(parents=True)
    for name, colour in (("apple", (180, 80, 80)), ("pear", (80, 130, 70))):
        image = textured_image(3)
        ImageDraw.Draw(image).rectangle((96, 200, 160, 240), fill=colour)
        image.save(root / f"{name}.png")
    textured_image(9).save(root / "watch.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"],
              [["Juicy", "", "juicy_store"], ["Globex", "", ""]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"], [
        ["Juicy", "apple", "Juicy Apple", "apple.png", "3", "EUR"],
        ["Juicy", "pear", "Juicy Pear", "pear.png", "3", "EUR"],
        ["Globex", "watch", "Globex Watch", "watch.png", "1200", "EUR"],
    ])
    return root


def test_siblings_alike_name_the_brand_only_for_review(tmp_path):
    root = _siblings_catalog(tmp_path / "refs")
    index = build_index(Catalog.from_dir(root), "perceptual")
    photo = tmp_path / "shelf.jpg"
    rephotograph(Image.open(root / "apple.png"), seed=3).save(photo, quality=85)
    verdict = Detector(index, Policy(packaging_match=True), verifier=no_copy_verifier()).check(
        Listing([photo], seller="shop123", price=2.5, currency="EUR"))
    assert verdict.match is not None and verdict.match.brand == "Juicy"
    assert (verdict.match.product_id, verdict.match.tier, verdict.verdict) == ("", "same-package", "review")
    visual = verdict.signal("VISUAL_MATCH")
    assert visual.details["brand_only"] is True and visual.details["same_package"] is True
    assert "photo shows the packaging of Juicy, not which of its products" in visual.message
    assert "which of the brand's products it is, a person must tell (review, not a suspect)" in visual.message
    assert visual.message.count("a person") == 1  # said once
    assert verdict.signal("UNAUTHORIZED_SELLER").hit  # the seller is still checked against the brand
    # the price is compared with every product of the brand (none named): 2.5 EUR is not implausible for it
    assert verdict.signal("PRICE_IMPLAUSIBLE").state == "clear"


def _recoloured(image: Image.Image) -> Image.Image:
    """Another colour scheme of the same design (a sibling product's official photo): the hues rotated, the
    brightness kept, so the grayscale keypoints match alike but no single colour change explains the colours."""
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 85) % 256
    rgb = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB")).copy()
    rgb[:128] = np.asarray(image.convert("RGB"))[:128]  # half of it unchanged: one global map cannot fit both
    return Image.fromarray(rgb)


@pytest.mark.parametrize("listed, product, verdict, look_alike", [
    ("sibling", "", "review", True),  # the official photo of a product missing from the catalog: brand only
    # a seller's own photo of the catalog's product (globally far less similar): the product named; its copy check
    # turned off, which this synthetic photo would pass
    ("shelf", "apple", "suspect", False),
])
def test_a_photo_like_the_official_one_but_not_it_names_the_brand_only(tmp_path, listed, product, verdict,
                                                                       look_alike):
    root = _siblings_catalog(tmp_path / "refs")
    (root / "references.csv").write_text("\n".join(
        line for line in (root / "references.csv").read_text().splitlines() if "pear" not in line) + "\n")
    index = build_index(Catalog.from_dir(root), "perceptual")
    photo = tmp_path / "listed.jpg"
    apple = Image.open(root / "apple.png")
    (_recoloured(apple) if listed == "sibling" else rephotograph(apple, seed=3)).save(photo, quality=90)
    verifier = "auto" if listed == "sibling" else no_copy_verifier()
    verdict_ = Detector(index, Policy(packaging_match=True), verifier=verifier).check(Listing([photo], seller="shop123"))
    assert verdict_.match is not None and verdict_.match.tier == "same-package", verdict_.reasons
    assert (verdict_.match.brand, verdict_.match.product_id, verdict_.verdict) == ("Juicy", product, verdict)
    visual = verdict_.signal("VISUAL_MATCH")
    assert bool(visual.details.get("look_alike")) is look_alike
    assert bool(visual.details.get("brand_only")) is look_alike
    assert ("looks like that photo as a whole" in visual.message) is look_alike
    if look_alike:
        assert "which of the brand's products it is" in visual.message
        assert "a person must tell (review, not a suspect)" in visual.message
        assert visual.message.count("a person") == 1  # said once
        assert verdict_.match.similarity >= Policy().thresholds_for("perceptual").match
        assert "without being that photo (the pixels do not agree once aligned" in visual.message  # why not a copy


@pytest.mark.parametrize("changes, why", [
    ({}, None),  # a package: its keypoints on part of the official photo, its matches on the plane
    ({"inlier_spread": 0.5}, None),  # at the bound: still a package
    ({"inlier_spread": 0.61}, "whole view"),  # a re-shot room: the official photo's whole view matches
    ({"off_plane": 15}, None),  # 15 just off the plane for 30 on it: a curved carton can do that
    ({"off_plane": 16}, "parallax"),  # more: objects at several depths seen from another spot
    ({"off_plane": 16, "inliers": 40}, None),
    ({"inlier_spread": 0.9, "off_plane": 30}, "whole view"),  # the first reason found is given
])
def test_scene_check(changes, why):
    outcome = verify.scene_check(_match(**changes))
    assert (outcome is None) if why is None else (outcome is not None and why in outcome)


@pytest.mark.parametrize("settings, why", [
    (PackagingSettings(max_inlier_spread=0.2), "whole view"),
    (PackagingSettings(max_off_plane=0.1), "parallax"),
    (PackagingSettings(max_inlier_spread=1.0, max_off_plane=10.0), None),
])
def test_scene_check_follows_its_settings(settings, why):
    outcome = verify.scene_check(_match(inlier_spread=0.3, off_plane=6), settings)
    assert (outcome is None) if why is None else (outcome is not None and why in outcome)


@pytest.mark.parametrize("changes", [{"max_inlier_spread": 0.0}, {"max_inlier_spread": 1.5}, {"max_off_plane": 0.0}])
def test_scene_settings_are_validated(changes):
    from knockoff.errors import PolicyError

    with pytest.raises(PolicyError, match="max_inlier_spread|max_off_plane"):
        PackagingSettings(**changes)


def _layers(offsets: list[int], seed: int = 40) -> Image.Image:
    """A scene of horizontal bands at several depths: each band a textured strip shifted by its own offset (the
    parallax of a camera moved sideways; offset 0 everywhere: the original view)."""
    bands = [textured_image(seed + i, (420, 80)) for i in range(len(offsets))]
    scene = Image.new("RGB", (360, 80 * len(offsets)))
    for i, (band, dx) in enumerate(zip(bands, offsets)):
        scene.paste(band.crop((30 + dx, 0, 390 + dx, 80)), (0, 80 * i))
    return scene


@pytest.mark.parametrize("offsets, scene", [
    ([0, 0, 0, 0], False),  # the same view: every match on one plane
    ([0, 9, 0, 9], True),  # near and far bands alternating: half the matches 9 px off the plane of the others
    ([0, 30, 0, 30], False),  # 30 px off: far, as a wrong match or a second package beside the first lands
])
def test_off_plane_counts_the_matches_just_off_the_fitted_plane(offsets, scene):
    verifier = GeometricVerifier(packaging=PackagingSettings())
    match = verifier.verify(_layers(offsets), _layers([0] * len(offsets)))
    assert match.inliers >= 12
    if scene:
        assert match.off_plane > match.inliers / 2, (match.off_plane, match.inliers)
    else:
        assert match.off_plane <= 2, match.off_plane


def _room_catalog(root):
    from conftest import write_csv

    root.mkdir()
    _layers([0, 0, 0, 0]).save(root / "room.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"], [["Roomy", "", "roomy_store"]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Roomy", "sofa", "Roomy Sofa", "room.png", "900", "EUR"]])
    return root


@pytest.mark.parametrize("offsets, product, tier, verdict", [
    # the room photographed again from another spot, with more around it: no package, so no product
    ([0, 9, 0, 9], "", "same-package", "review"),
    # the official photo itself pasted into a bigger picture: a copy, which the scene rule leaves alone
    ([0, 0, 0, 0], "sofa", "near-copy", "suspect"),
])
def test_a_reshot_scene_names_the_brand_only_with_the_reason(tmp_path, offsets, product, tier, verdict):
    index = build_index(Catalog.from_dir(_room_catalog(tmp_path / "refs")), "perceptual")
    photo = tmp_path / "again.jpg"
    picture = textured_image(91, (520, 440))
    picture.paste(_layers(offsets), (20, 30))
    picture.save(photo, quality=90)
    verdict_ = Detector(index, Policy(packaging_match=True)).check(Listing([photo], seller="shop123"))
    assert verdict_.match is not None, verdict_.reasons
    assert (verdict_.match.brand, verdict_.match.product_id, verdict_.match.tier, verdict_.verdict) == (
        "Roomy", product, tier, verdict)
    visual = verdict_.signal("VISUAL_MATCH")
    if product:
        assert "scene" not in visual.details and not visual.details.get("brand_only")
        return
    assert verdict_.match.similarity < Policy().thresholds_for("perceptual").match  # not a look-alike
    assert visual.details["brand_only"] is True and "re-shot scene" in visual.details["scene"]
    assert not visual.details.get("look_alike")
    assert "but not as a package: its matching keypoints span" in visual.message
    assert "which of the brand's products it is, if any, a person must tell" in visual.message
    assert visual.message.count("a person") == 1  # said once


def test_a_look_alike_that_is_also_a_scene_keeps_both_reasons(tmp_path):
    """The room photographed again, globally as similar as a copy: the look-alike's words, the scene's reason
    kept in the details (calibration keeps it brand only whatever ``match`` it tries)."""
    index = build_index(Catalog.from_dir(_room_catalog(tmp_path / "refs")), "perceptual")
    photo = tmp_path / "again.jpg"
    _layers([0, 9, 0, 9]).save(photo, quality=90)
    verdict = Detector(index, Policy(packaging_match=True)).check(Listing([photo], seller="shop123"))
    assert verdict.match is not None and (verdict.match.product_id, verdict.verdict) == ("", "review")
    visual = verdict.signal("VISUAL_MATCH")
    assert visual.details["look_alike"] is True and visual.details["scene"]
    assert "looks like that photo as a whole" in visual.message


_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
_OFFICE = "jenssegers-imagehash/tests/images/office"
_EXIF = "threatexchange-pdq/pdq/data/reg-test-input/exif-rotn"


@pytest.mark.skipif(not (_REAL / "jenssegers-imagehash").is_dir() or not (_REAL / "threatexchange-pdq").is_dir(),
                    reason="real data not present at ../shared/data/real")
def test_real_reshot_scenes_name_no_product_and_a_reshot_coaster_keeps_it(tmp_path):
    """shared/data/real: the second photo of jenssegers' office (a hard negative) and two of the re-shot desk
    photos of threatexchange are scenes (brand only, review); the coaster photographed anew with another pen is
    a flat printed object and keeps its product."""
    import shutil

    from conftest import write_csv

    root = tmp_path / "refs"
    root.mkdir()
    refs = {"office": f"{_OFFICE}/tumblr_ndyfnr7lk21tubinno1_1280.jpg", "desk": f"{_EXIF}/exif-rotn-1.jpg",
            "coaster": "threatexchange-pdq/pdq/data/misc-images/c.png"}
    for name, path in refs.items():
        shutil.copy(_REAL / path, root / f"{name}{Path(path).suffix}")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"], [[n, "", "official"] for n in refs])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [[n, n, n, f"{n}{Path(p).suffix}", "", ""] for n, p in refs.items()])
    detector = Detector(build_index(Catalog.from_dir(root), "perceptual"), Policy(packaging_match=True))
    listed = {f"{_OFFICE}/tumblr_ndyfq386o41tubinno1_1280.jpg": ("office", ""), f"{_EXIF}/exif-rotn-3.jpg": ("desk", ""),
              f"{_EXIF}/exif-rotn-6.jpg": ("desk", ""),
              "threatexchange-pdq/pdq/data/reg-test-input/pen-and-coaster.png": ("coaster", "coaster")}
    for path, (brand, product) in listed.items():
        verdict = detector.check(Listing([_REAL / path], seller="shop123"))
        assert verdict.match is not None and verdict.match.tier == "same-package", (path, verdict.reasons)
        assert (verdict.match.brand, verdict.match.product_id) == (brand, product), (path, verdict.reasons)
        visual = verdict.signal("VISUAL_MATCH")
        assert bool(visual.details.get("scene")) is (not product), (path, visual.message)
        assert verdict.verdict == ("suspect" if product else "review")
