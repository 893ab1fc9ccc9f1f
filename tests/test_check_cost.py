"""The cheaper check (issue 15): verification stops at the first proven copy (the keypoint vote and the other
candidates are skipped), and the faster defaults still find a rotated or cropped copy and still refuse a sibling
product's photo, like the settings they replaced."""

from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import Image, ImageEnhance, ImageFilter

from knockoff import Catalog, Detector, Listing, Policy, build_index
from knockoff.match import keypoints
from knockoff.match.verify import GeometricVerifier, opencv_available

from conftest import textured_image, write_csv
from tests.test_pixels import design

pytestmark = pytest.mark.skipif(not opencv_available(), reason="OpenCV is not installed")

#: the check before issue 15: every candidate verified, the vote always run, 1,000 query keypoints, exact vote
#: up to 400,000 descriptors
BASELINE = replace(Policy(), shortlist=replace(Policy().shortlist, stop_at_copy=False, query_features=1000,
                                                flat_limit=400_000))
POLICIES = {"default": Policy(), "baseline": BASELINE}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """Acme's classic carton, three other products; the sibling (same frame, another panel) is not indexed."""
    root = tmp_path_factory.mktemp("refs")
    design(7, panel_seed=100).save(root / "classic.png")
    for seed in (21, 22, 23):
        textured_image(seed, (320, 240)).save(root / f"other{seed}.png")
    write_csv(root / "brands.csv", ["brand", "aliases", "authorized_sellers"], [["Acme", "", "acme_store"]])
    write_csv(root / "references.csv", ["brand", "product_id", "product_name", "image", "price", "currency"],
              [["Acme", "classic", "Classic", "classic.png", "10", "EUR"],
               *[["Acme", f"other{s}", f"Other {s}", f"other{s}.png", "10", "EUR"] for s in (21, 22, 23)]])
    return build_index(Catalog.from_dir(root), "perceptual")


def _rotated(image: Image.Image) -> Image.Image:
    return image.rotate(12, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(255, 255, 255))


def _cropped(image: Image.Image) -> Image.Image:
    return image.crop((40, 30, 300, 230))


def _sibling(_: Image.Image) -> Image.Image:
    photo = design(7, panel_seed=200).rotate(4, resample=Image.Resampling.BICUBIC, fillcolor=(90, 90, 90))
    return ImageEnhance.Brightness(photo).enhance(1.2).filter(ImageFilter.GaussianBlur(0.8))


def _check(index, policy: Policy, photo: Image.Image, tmp_path, verifier=None):
    path = tmp_path / "listing.png"
    photo.save(path)
    detector = Detector(index, policy, **({"verifier": verifier} if verifier is not None else {}))
    return detector.check(Listing([path], title="carton", price=10, currency="EUR", seller="shop123"))


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("edit, copy", [(_rotated, True), (_cropped, True), (_sibling, False)])
def test_the_faster_check_finds_copies_and_refuses_a_sibling(index, tmp_path, policy, edit, copy):
    verdict = _check(index, POLICIES[policy], edit(design(7, panel_seed=100)), tmp_path)
    if copy:
        assert verdict.verdict == "suspect" and verdict.match.tier == "near-copy"
        assert verdict.match.product_id == "classic" and verdict.match.verification["is_copy"]
    else:  # the sibling is never a copy, nor named as the indexed product: its package shows the brand only
        assert verdict.match is not None and verdict.match.tier == "same-package"
        assert verdict.match.brand == "Acme" and verdict.match.product_id == ""
        assert not verdict.match.verification["is_copy"] and verdict.verdict == "review"
        off = _check(index, replace(POLICIES[policy], packaging_match=False), edit(design(7, panel_seed=100)),
                     tmp_path)  # the perceptual engine alone matches only proven copies: no match at all
        assert (off.match is None or off.match.tier is None) and off.verdict == "no_match"


class _Counting(GeometricVerifier):
    def __init__(self, settings):
        super().__init__(settings)
        self.calls: list[bool] = []  # verified, per call

    def verify(self, listing, reference, **options):
        result = super().verify(listing, reference, **options)
        self.calls.append(result.verified)
        return result


@pytest.mark.parametrize(
    "stop, edit, votes",
    [
        (True, _cropped, 0),  # the most similar candidate is the copy: nothing else verified, no vote
        (False, _cropped, 1),  # before: the other global candidates too, and the vote
        (True, _rotated, 1),  # the global descriptor misses it: the vote finds it, then nothing more
        (False, _rotated, 1),
        (True, _sibling, 1),  # no copy proven: every candidate and the vote, as before
        (False, _sibling, 1),
    ],
)
def test_verification_stops_at_the_first_proven_copy(index, tmp_path, monkeypatch, stop, edit, votes):
    policy = replace(Policy(), shortlist=replace(Policy().shortlist, stop_at_copy=stop))
    voted: list[int] = []
    original = keypoints.KeypointShortlist.vote
    monkeypatch.setattr(keypoints.KeypointShortlist, "vote",
                        lambda self, *a, **k: voted.append(1) or original(self, *a, **k))
    verifier = _Counting(policy.verifier)
    verdict = _check(index, policy, edit(design(7, panel_seed=100)), tmp_path, verifier)
    calls = verifier.calls
    assert len(voted) == votes and calls.count(True) == (0 if edit is _sibling else 1)
    if edit is not _sibling and (stop or edit is _cropped):
        # with stop_at_copy the proven copy is the last one verified, otherwise not (for the rotated copy the vote
        # also nominates the brand's sibling that shares its design, KeypointShortlist.vote's groups, in vote order)
        assert (calls[-1] is True) == stop
    else:
        assert len(calls) >= 2
    assert (verdict.match is not None and verdict.match.tier == "near-copy") == (edit is not _sibling)


def test_stop_at_copy_is_a_policy_setting():
    assert Policy.from_json('{"shortlist": {"stop_at_copy": false}}').shortlist.stop_at_copy is False
    with pytest.raises(ValueError, match="stop_at_copy"):
        Policy.from_json('{"shortlist": {"stop_at_copy": "yes"}}')


@pytest.mark.parametrize(
    "state, price, hit, cheapest",
    [
        ("built", 74.0, True, 150.0),  # Acme's cheapest product: the wallet at 150 USD; floor 75
        ("built", 76.0, False, 150.0),
        ("loaded", 74.0, True, 150.0),  # read from the index folder's columns
        ("loaded", 76.0, False, 150.0),
        ("loaded+added", 49.0, True, 100.0),  # a belt at 100 USD added after the load: floor 50
        ("loaded+added", 51.0, False, 100.0),
    ],
)
def test_a_brands_price_floor_comes_from_the_index_columns_unchanged(catalog_dir, tmp_path, state, price, hit,
                                                                      cheapest):
    from knockoff.catalog.readers import ReferenceImage
    from knockoff.match.index import ReferenceIndex

    index = build_index(Catalog.from_dir(catalog_dir), "perceptual")
    if state != "built":
        index.save(tmp_path / "index")
        index = ReferenceIndex.load(tmp_path / "index")
    if state == "loaded+added":
        textured_image(31).save(tmp_path / "belt.png")
        index.add([ReferenceImage("Acme", "belt", "Acme Belt", tmp_path / "belt.png", price=100.0, currency="USD")])
    signals = {s.code: s for s in Detector(index, verifier=None).title_signals(
        Listing([tmp_path / "x.png"], title="Acme bag", price=price, currency="USD", seller="x"))}
    signal = signals["PRICE_IMPLAUSIBLE"]
    assert signal.hit == hit and signal.details["reference_price"] == cheapest


@pytest.mark.parametrize(
    "edit, sift_runs",
    [
        (_cropped, 1),  # verified unmirrored: the mirrored photo's SIFT is never computed
        (lambda im: _cropped(im).transpose(Image.Transpose.FLIP_LEFT_RIGHT), 2),  # a mirrored copy needs it
        (_sibling, 2),  # not a copy: the mirror is tried, as before
    ],
)
def test_a_listing_photos_mirror_is_computed_at_first_need_with_the_same_result(edit, sift_runs):
    reference_photo = design(7, panel_seed=100)
    listing = edit(reference_photo)
    eager = GeometricVerifier()
    expected = eager.verify(eager.features(listing, with_mirror=True), eager.features(reference_photo))
    lazy = GeometricVerifier()
    reference = lazy.features(reference_photo)
    runs: list[int] = []
    compute = lazy._compute
    lazy._compute = lambda *a: runs.append(1) or compute(*a)  # type: ignore[method-assign]
    assert lazy.verify(listing, reference) == expected
    assert len(runs) == sift_runs
    assert lazy.verify(listing, reference) == expected and len(runs) == sift_runs  # kept for the next reference
