"""A local-feature shortlist: RootSIFT keypoints of every reference photo in one FAISS index, voted on.

The global descriptor (:mod:`knockoff.embedders.perceptual`) ranks a copy that is rotated by a few degrees,
warped in perspective or pasted small into a collage too low to be verified. Local features do not care: each
RootSIFT descriptor of the listing photo looks up its nearest reference descriptor, and a match counts as a
vote for that reference photo when it passes Lowe's ratio test against the nearest descriptor of *another*
reference photo (a keypoint that looks like keypoints of many references says nothing). The references with
the most votes are the shortlist that :class:`knockoff.match.verify.GeometricVerifier` then checks strictly; votes
never decide on their own.

Cost: one search of the listing's strongest ``query_features`` descriptors (computed anyway for the
geometric check) against ``per_reference`` descriptors of each reference: exact (flat) up to
``flat_limit`` descriptors, an IVF index above it.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from knockoff.match.verify import LocalFeatures

__all__ = ["KeypointShortlist", "strongest"]


def strongest(features: LocalFeatures, n: int) -> np.ndarray:
    """The descriptors of the ``n`` strongest keypoints (largest SIFT response, else the first ``n``)."""
    desc = features.descriptors
    if len(desc) <= n:
        return desc
    responses = getattr(features, "responses", None)
    if responses is None or len(responses) != len(desc):
        return desc[:n]
    keep = np.argpartition(-responses, n - 1)[:n]
    return desc[np.sort(keep)]


class KeypointShortlist:
    """Votes of a listing photo's keypoints for reference photos (keys of any hashable type)."""

    def __init__(self, *, per_reference: int = 500, query_features: int = 1000, ratio: float = 0.85,
                 neighbours: int = 8, flat_limit: int = 400_000):
        self.per_reference = per_reference
        self.query_features = query_features
        self.ratio = ratio
        self.neighbours = neighbours
        self.flat_limit = flat_limit
        self._keys: list[Hashable] = []
        self._blocks: list[np.ndarray] = []
        self._owners: list[np.ndarray] = []
        self._index: Any = None
        self._owner: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def descriptor_count(self) -> int:
        return sum(len(b) for b in self._blocks)

    def add(self, key: Hashable, features: LocalFeatures) -> None:
        """Index the strongest ``per_reference`` keypoints of one reference photo."""
        desc = np.ascontiguousarray(strongest(features, self.per_reference), dtype=np.float32)
        if len(desc) == 0:
            return
        self._blocks.append(desc)
        self._owners.append(np.full(len(desc), len(self._keys), dtype=np.int64))
        self._keys.append(key)
        self._index = None

    def _build(self) -> None:
        import faiss

        data = np.ascontiguousarray(np.concatenate(self._blocks))
        self._owner = np.concatenate(self._owners)
        dim = data.shape[1]
        if len(data) <= self.flat_limit:
            index = faiss.IndexFlatL2(dim)
        else:
            nlist = int(4 * math.sqrt(len(data)))
            quantizer = faiss.IndexFlatL2(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist)
            rng = np.random.default_rng(0)
            index.train(data[rng.choice(len(data), min(len(data), 64 * nlist), replace=False)])
            index.nprobe = 16
            index._quantizer = quantizer  # keep it alive
        index.add(data)
        self._index = index

    def vote(self, features: LocalFeatures, top: int = 3, *, min_votes: int = 4) -> list[tuple[Hashable, int]]:
        """The ``top`` references with the most votes (at least ``min_votes``), most votes first."""
        if not self._keys or len(features) == 0:
            return []
        if self._index is None:
            self._build()
        query = np.ascontiguousarray(strongest(features, self.query_features), dtype=np.float32)
        k = min(self.neighbours, self._index.ntotal)
        dist, ids = self._index.search(query, k)  # squared L2 distances, ascending
        owner = self._owner
        votes = np.zeros(len(self._keys), dtype=np.int64)
        ratio2 = self.ratio * self.ratio
        valid = ids >= 0
        owners = np.where(valid, owner[np.maximum(ids, 0)], -1)
        first = owners[:, 0]
        # the nearest descriptor of another reference photo (or the last neighbour when all k are the same)
        other = (owners != first[:, None]) & valid
        has_other = other.any(axis=1)
        other_pos = np.where(has_other, other.argmax(axis=1), k - 1)
        d_other = dist[np.arange(len(query)), other_pos]
        ok = (first >= 0) & (dist[:, 0] < ratio2 * d_other)
        # when every neighbour belongs to one reference, the test is against the k-th neighbour: still a vote
        np.add.at(votes, first[ok], 1)
        order = np.argsort(-votes, kind="stable")[:top]
        return [(self._keys[i], int(votes[i])) for i in order if votes[i] >= min_votes]

    def keys(self) -> Sequence[Hashable]:
        return tuple(self._keys)
