"""Which of a brand's alike products a new photo of its package shows, by its small print (knockoff.match.siblings)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knockoff.match.siblings import DETAIL_LEAD, pick_by_print
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
