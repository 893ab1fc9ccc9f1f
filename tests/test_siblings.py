"""Which of a brand's alike products a new photo of its package shows, by its small print (knockoff.match.siblings)."""

from __future__ import annotations

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
    ([("a", match(40, 0.55)), ("b", match(36, 0.62))], None),  # a lead below DETAIL_LEAD: no product
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
