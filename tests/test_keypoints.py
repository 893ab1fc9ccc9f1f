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
        shortlist.add(i, verifier.features(image))
    return verifier, sources, shortlist


def test_rotated_copy_votes_for_its_source_first():
    verifier, sources, shortlist = _shortlist()
    for i in (0, 3):
        rotated = sources[i].rotate(15, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
        votes = shortlist.vote(verifier.features(rotated), top=3)
        assert votes and votes[0][0] == i
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


@pytest.mark.parametrize(
    "descriptors, kind, nlist",
    [(1_000, "flat", 0), (400_000, "flat", 0), (400_001, "ivf", 2048), (2_500_000, "ivf", 8192),
     (2_500_001, "ivfpq", 8192), (50_000_000, "ivfpq", 16_384), (10**9, "ivfpq", 16_384)],
)
def test_plan_is_chosen_by_size(descriptors, kind, nlist):
    from knockoff.match.keypoints import plan

    p = plan(descriptors, flat_limit=400_000, compress_above=2_500_000)
    assert (p.kind, p.nlist) == (kind, nlist)
    assert p.train_size <= descriptors and (p.train_size == 40 * nlist or p.train_size == descriptors or not nlist)
    assert p.bytes_per_descriptor() == (40 if kind == "ivfpq" else 520 if kind == "flat" else 136)


@pytest.mark.parametrize("pq_bytes", [32, 12])  # 12: the vectors are zero-padded to 132
def test_product_quantized_vote_still_finds_a_rotated_copy(pq_bytes):
    from knockoff.match.keypoints import KeypointShortlist

    verifier = GeometricVerifier()
    sources = [textured(seed) for seed in range(6)]
    shortlist = KeypointShortlist(per_reference=300, query_features=600, flat_limit=100, compress_above=100,
                                  pq_bytes=pq_bytes, expected_references=5)
    assert shortlist.index_plan.kind == "ivfpq"
    for i, image in enumerate(sources[:5]):
        shortlist.add(i, verifier.features(image))
    rotated = sources[2].rotate(15, resample=Image.Resampling.BICUBIC, expand=True, fillcolor="white")
    votes = shortlist.vote(verifier.features(rotated), top=3)
    assert votes and votes[0][0] == 2
    # a reference added after the index was trained goes straight into it and is found
    shortlist.add(99, verifier.features(sources[5]))
    assert shortlist.vote(verifier.features(sources[5]), top=1)[0][0] == 99
    assert len(shortlist) == 6 and shortlist._index.ntotal == shortlist.descriptor_count


class _Desc:
    """Stands for LocalFeatures: RootSIFT-like descriptors with responses."""

    def __init__(self, seed: int, n: int = 100):
        rng = np.random.default_rng(seed)
        d = rng.random((n, 128)).astype(np.float32) ** 4
        self.descriptors = d / np.linalg.norm(d, axis=1, keepdims=True)
        self.responses = rng.random(n).astype(np.float32)

    def __len__(self) -> int:
        return len(self.descriptors)


def test_the_index_changes_kind_as_it_grows_and_keeps_every_descriptor():
    from knockoff.match.keypoints import KeypointShortlist

    shortlist = KeypointShortlist(per_reference=50, flat_limit=250, compress_above=1000)
    kinds = []
    for count in (4, 6, 26):
        while len(shortlist) < count:
            shortlist.add(len(shortlist) * 3, _Desc(len(shortlist), 50))  # ids need not be consecutive
        assert shortlist.vote(_Desc(count - 1, 50), top=1)[0][0] == (count - 1) * 3
        kinds.append(shortlist.index_plan.kind)
        assert shortlist.descriptor_count == 50 * count == shortlist._index.ntotal
    assert kinds == ["flat", "ivf", "ivfpq"]
    shortlist.remove([0, 3])
    assert shortlist.descriptor_count == 1200 and len(shortlist) == 24
    assert all(r not in (0, 3) for r, _ in shortlist.vote(_Desc(0, 50), top=5, min_votes=1))


class _Shared(_Desc):
    """Descriptors of one package design that two sibling products share (``_Desc(seed)``) with a little noise:
    each sibling's own copy."""

    def __init__(self, seed: int, noise_seed: int, n: int = 100):
        super().__init__(seed, n)
        noise = np.random.default_rng(noise_seed).random(self.descriptors.shape).astype(np.float32) * 0.01
        d = self.descriptors + noise
        self.descriptors = d / np.linalg.norm(d, axis=1, keepdims=True)


@pytest.mark.parametrize(("groups", "voted"), [
    (None, set()),  # each sibling's keypoints are as near as the other's: the ratio test says nothing
    ({0: 7, 1: 7, 2: 8}, {0, 1}),  # one brand: the design votes for both of its products
    ({0: 7, 1: 9, 2: 8}, set()),  # two brands that share a design (no group in common): nothing
    ({0: 7, 2: 8}, set()),  # a reference missing from the groups is a group of its own
])
def test_a_design_a_brand_shares_votes_for_each_of_its_products(groups, voted):
    from knockoff.match.keypoints import KeypointShortlist

    shortlist = KeypointShortlist(per_reference=100, neighbours=4)
    shortlist.add(0, _Shared(1, 10))
    shortlist.add(1, _Shared(1, 11))
    shortlist.add(2, _Desc(2))  # another brand's own design
    votes = dict(shortlist.vote(_Shared(1, 12), top=3, groups=groups))
    assert set(votes) == voted
    assert all(v >= 90 for v in votes.values())
    # a keypoint votes once for a reference however many of its neighbours belong to it
    assert all(v <= 100 for v in votes.values())
    # the other brand's own design still wins its own vote, grouped or not
    assert shortlist.vote(_Desc(2), top=1, groups=groups)[0][0] == 2
