"""What the packaging match costs: the second, enlarged match of a listing's candidates
(``GeometricVerifier.second_look``) runs only when it can matter, unmirrored, and the copy check stays as it was."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image, ImageOps

from knockoff import Catalog, Detector, Listing, Policy, build_index
from knockoff.match import verify
from knockoff.match.verify import GeometricVerifier, PackagingSettings

from conftest import textured_image
from test_packaging import rephotograph

pytestmark = pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")


class _Looking(GeometricVerifier):
    """Counts the second looks the detector asks for; ``copies=False``: a copy check that cannot pass (a new photo
    of a synthetic package can pass it, so only the packaging path is left)."""

    def __init__(self, policy: Policy, copies: bool = True):
        settings = policy.verifier if copies else replace(policy.verifier, min_inliers=100_000)
        super().__init__(settings, packaging=policy.packaging)
        self.looks = 0

    def second_look(self, listing, reference, first):
        self.looks += 1
        return super().second_look(listing, reference, first)


@pytest.fixture
def index(catalog_dir):
    return build_index(Catalog.from_dir(catalog_dir), "perceptual")


def _check(index, tmp_path, photo: Image.Image, policy: Policy, copies: bool = True) -> tuple[object, int]:
    path = tmp_path / "listing.jpg"
    photo.convert("RGB").save(path, quality=90)
    verifier = _Looking(policy, copies)
    verdict = Detector(index, policy, verifier=verifier).check(Listing([path], seller="x"))
    return verdict, verifier.looks


def _policy(stop_at_copy: bool = True, **packaging: object) -> Policy:
    policy = Policy(packaging_match=True)
    return replace(policy, shortlist=replace(policy.shortlist, stop_at_copy=stop_at_copy),
                   packaging=replace(policy.packaging, **packaging))


@pytest.mark.parametrize("stop_at_copy", [True, False])
def test_no_second_look_once_a_copy_is_proven(index, catalog_dir, tmp_path, stop_at_copy):
    copy = Image.open(catalog_dir / "acme" / "wallet.png").convert("RGB")
    framed = ImageOps.expand(copy, border=30, fill=(250, 250, 250))  # a copy on a white frame
    verdict, looks = _check(index, tmp_path, framed, _policy(stop_at_copy))
    assert verdict.match is not None and verdict.match.tier == "near-copy" and verdict.match.product_id == "wallet"
    assert looks == 0


def test_a_new_photo_of_the_package_gets_its_second_look(index, catalog_dir, tmp_path):
    shelf = rephotograph(Image.open(catalog_dir / "acme" / "wallet.png"))
    verdict, looks = _check(index, tmp_path, shelf, _policy(), copies=False)
    assert looks >= 1
    assert verdict.match is not None and verdict.match.product_id == "wallet"
    assert verdict.match.tier == "same-package"


@pytest.mark.parametrize("minimum, looked", [(0, True), (10_000, False)])
def test_no_second_look_when_no_candidate_found_enough_matches(index, catalog_dir, tmp_path, minimum, looked):
    shelf = rephotograph(Image.open(catalog_dir / "acme" / "wallet.png"))
    verdict, looks = _check(index, tmp_path, shelf, _policy(second_look_min_matches=minimum), copies=False)
    assert (looks > 0) is looked
    # with or without the second look, the package found is the wallet's (here the first match suffices)
    assert verdict.match is not None and verdict.match.product_id == "wallet"


@pytest.mark.parametrize("seed", [61, 62])
@pytest.mark.parametrize("minimum", [0, 6])
def test_an_unrelated_photo_gets_no_second_look_and_no_match(index, tmp_path, seed, minimum):
    photo = rephotograph(textured_image(seed), seed=seed)
    verdict, looks = _check(index, tmp_path, photo, _policy(second_look_min_matches=minimum), copies=False)
    assert verdict.verdict == "no_match"
    assert (looks > 0) is (minimum == 0)  # it has candidates, but none with 6 ratio-test matches


def _pair() -> tuple[Image.Image, Image.Image]:
    """A small official photo and a new, mirrored photo of it (no copy: the second look has work to do)."""
    official = textured_image(5, (240, 240))
    return ImageOps.mirror(rephotograph(official, seed=3)).resize((300, 254)), official


@pytest.mark.parametrize("allow_mirrored", [False, True])
def test_the_second_look_is_unmirrored_unless_a_mirrored_package_counts(monkeypatch, allow_mirrored):
    verifier = GeometricVerifier(packaging=PackagingSettings(allow_mirrored=allow_mirrored))
    listing, official = _pair()
    reference = verifier.features(official)
    first = verifier.verify(listing, reference, second_look=False)
    seen: list[bool] = []
    original = GeometricVerifier._match
    monkeypatch.setattr(GeometricVerifier, "_match",
                        lambda self, a, b, *, mirrored: seen.append(mirrored) or original(self, a, b, mirrored=mirrored))
    second = verifier.second_look(listing, reference, first)
    assert seen and (True in seen) is allow_mirrored
    assert second.inliers >= first.inliers  # the better of the two


def test_verify_is_the_first_match_then_the_second_look():
    verifier = GeometricVerifier(packaging=PackagingSettings())
    listing, official = _pair()
    reference = verifier.features(official)
    first = verifier.verify(listing, reference, second_look=False)
    assert verifier.verify(listing, reference) == verifier.second_look(listing, reference, first)
    # photos at least enlarge_small_to wide: nothing to enlarge
    big_listing, big_reference = listing.resize((600, 508)), verifier.features(official.resize((480, 480)))
    big_first = verifier.verify(big_listing, big_reference, second_look=False)
    assert verifier.second_look(big_listing, big_reference, big_first) is big_first
    # nothing to add without packaging settings, or to a proven copy
    assert GeometricVerifier().second_look(listing, reference, first) is first
    copy = replace(first, verified=True)
    assert verifier.second_look(listing, reference, copy) is copy


@pytest.mark.parametrize("value", [-1, 2.5, "6", True])
def test_second_look_min_matches_is_validated(value):
    with pytest.raises(ValueError, match="second_look_min_matches"):
        PackagingSettings(second_look_min_matches=value)  # type: ignore[arg-type]


def test_second_look_min_matches_is_a_policy_setting():
    policy = Policy.from_json('{"packaging": {"second_look_min_matches": 0}}')
    assert policy.packaging.second_look_min_matches == 0
    assert Policy.from_dict(policy.to_dict()).packaging.second_look_min_matches == 0
