"""Keypoint-vote shortlist (knockoff.match.keypoints): a rotated copy votes for its source, not for others."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from knockoff.match import verify
from knockoff.match.verify import GeometricVerifier

pytestmark = pytest.mark.skipif(not verify.opencv_available(), reason="OpenCV with SIFT is not installed")

from tests.test_verify import textured  # noqa: E402


def _shortlist(n: int = 6):
    from knockoff.match.keypoints import KeypointShortlist

    verifier = GeometricVerifier()
    sources = [textured(seed) for seed in range(n)]
    shortlist = KeypointShortlist(per_reference=300, query_features=600)
    for i, image in enumerate(sources):
        shortlist.add(f"ref{i}", verifier.features(image))
    return verifier, sources, shortlist


def test_rotated_copy_votes_for_its_source_first():
    verifier, sources, shortlist = _shortlist()
    for i in (0, 3):
        rotated = sources[i].rotate(15, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
        votes = shortlist.vote(verifier.features(rotated), top=3)
        assert votes and votes[0][0] == f"ref{i}"
        assert votes[0][1] > 3 * (votes[1][1] if len(votes) > 1 else 1)


def test_unrelated_photo_gets_few_votes_and_empty_index_is_harmless():
    from knockoff.match.keypoints import KeypointShortlist, strongest

    verifier, sources, shortlist = _shortlist(4)
    other = verifier.features(textured(99))
    votes = shortlist.vote(other, top=4)
    # the synthetic photos share the glyphs of one font, so an unrelated one gets some votes, but far fewer
    # than a copy of a source does
    copy_votes = shortlist.vote(verifier.features(sources[1]), top=1)[0][1]
    assert copy_votes > 100 and all(v < copy_votes / 4 for _, v in votes)
    assert KeypointShortlist().vote(other) == []
    assert len(shortlist) == 4 and shortlist.descriptor_count <= 4 * 300
    kept = strongest(other, 10)
    assert kept.shape == (10, 128)
    assert np.allclose(np.linalg.norm(kept, axis=1), 1.0, atol=1e-3)
