"""A local-feature shortlist: RootSIFT keypoints of every reference photo in one FAISS index, voted on.

The global descriptor (:mod:`knockoff.embedders.perceptual`) ranks a copy that is rotated by a few degrees,
warped in perspective or pasted small into a collage too low to be verified. Local features do not care: each
RootSIFT descriptor of the listing photo looks up its nearest reference descriptor, and a match counts as a
vote for that reference photo when it passes Lowe's ratio test against the nearest descriptor of *another*
reference photo (a keypoint that looks like keypoints of many references says nothing). The references with
the most votes are the shortlist that :class:`knockoff.match.verify.GeometricVerifier` then checks strictly; votes
never decide on their own.

Cost: one search of the listing's strongest ``query_features`` descriptors (computed anyway for the
geometric check) against ``per_reference`` descriptors of each reference. The index is chosen by size
(:func:`plan`): exact (flat) up to ``flat_limit`` descriptors, IVF (exact vectors) up to ``compress_above``,
and above it IVF with product quantization (``pq_bytes`` bytes a descriptor plus an 8-byte id), trained on the
first descriptors added and then filled as references come, so that memory stays about
``per_reference * (pq_bytes + 8)`` bytes a reference photo (20 KB at the defaults) with no size cap. Descriptors
waiting for an index are held as uint8 (RootSIFT times 512, as the index folder stores them).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from knockoff.match.verify import LocalFeatures

__all__ = ["IndexPlan", "KeypointShortlist", "plan", "strongest"]


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


#: RootSIFT components are at most sqrt(0.2), so RootSIFT * 512 fits in uint8 (the index folder's format)
_SCALE = 512.0


@dataclass(frozen=True)
class IndexPlan:
    """The vote's FAISS index for ``descriptors`` vectors: ``kind`` flat, ivf or ivfpq, with its parameters."""

    kind: str
    descriptors: int
    nlist: int = 0
    nprobe: int = 0
    pq_bytes: int = 0
    train_size: int = 0

    @property
    def dim(self) -> int:
        """The indexed vectors' length: 128, zero-padded to a multiple of ``pq_bytes`` for product quantization
        (zeros add nothing to a distance)."""
        return -(-128 // self.pq_bytes) * self.pq_bytes if self.kind == "ivfpq" else 128

    def bytes_per_descriptor(self) -> int:
        """Memory a descriptor takes in the shortlist: the index's vector (float32) or code, its id (IVF), the
        uint8 copy the exact kinds keep to rebuild, and the owner number."""
        if self.kind == "ivfpq":
            return self.pq_bytes + 8 + 8
        return 128 * 4 + 128 + 8 + (8 if self.kind == "ivf" else 0)


def plan(descriptors: int, *, flat_limit: int = 400_000, compress_above: int = 4_000_000,
         pq_bytes: int = 32, nprobe: int = 16) -> IndexPlan:
    """The index for ``descriptors`` vectors: exact up to ``flat_limit``; above it IVF with about
    4 * sqrt(n) lists (a power of two, 256 to 16,384), trained on 40 vectors a list; product-quantized above
    ``compress_above``."""
    if descriptors <= flat_limit:
        return IndexPlan("flat", descriptors)
    nlist = 2 ** int(round(math.log2(4 * math.sqrt(descriptors))))
    nlist = min(max(nlist, 256), 16_384)
    kind = "ivfpq" if descriptors > compress_above else "ivf"
    return IndexPlan(kind, descriptors, nlist=nlist, nprobe=min(nprobe, nlist),
                     pq_bytes=pq_bytes if kind == "ivfpq" else 0, train_size=min(descriptors, 40 * nlist))


def _to_uint8(desc: np.ndarray) -> np.ndarray:
    if desc.dtype == np.uint8:
        return np.ascontiguousarray(desc)
    return np.clip(np.rint(np.asarray(desc, np.float32) * _SCALE), 0, 255).astype(np.uint8)


def _to_float(desc: np.ndarray, dim: int = 128, scale: float = _SCALE) -> np.ndarray:
    out = np.zeros((len(desc), dim), np.float32)
    out[:, :128] = np.asarray(desc, np.float32) / np.float32(scale)
    return out


def _faiss_index(p: IndexPlan, sample: np.ndarray) -> Any:
    """An empty FAISS index for plan ``p``, trained on ``sample`` (float32) when it needs training."""
    import faiss

    if p.kind == "flat":
        return faiss.IndexFlatL2(128)
    quantizer = faiss.IndexFlatL2(p.dim)
    if p.kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, 128, p.nlist)
    else:
        index = faiss.IndexIVFPQ(quantizer, p.dim, p.nlist, p.pq_bytes, 8)
    index.train(sample)  # (faiss keeps the quantizer alive: index.referenced_objects)
    index.nprobe = p.nprobe
    return index


class KeypointShortlist:
    """Votes of a listing photo's keypoints for reference photos (keys of any hashable type).

    ``expected_references``: how many reference photos will be added (a hint for :func:`plan`); when their
    descriptors go over ``compress_above``, the product-quantized index is trained on the first
    ``plan.train_size`` descriptors and every later reference goes straight into it."""

    def __init__(self, *, per_reference: int = 500, query_features: int = 1000, ratio: float = 0.85,
                 neighbours: int = 8, flat_limit: int = 400_000, compress_above: int = 4_000_000,
                 pq_bytes: int = 32, nprobe: int = 16, expected_references: int = 0):
        self.per_reference = per_reference
        self.query_features = query_features
        self.ratio = ratio
        self.neighbours = neighbours
        self.flat_limit = flat_limit
        self.compress_above = compress_above
        self.pq_bytes = pq_bytes
        self.nprobe = nprobe
        self._keys: list[Hashable] = []
        self._blocks: list[np.ndarray] = []  # uint8: all of them (exact kinds), else those not yet indexed
        self._owners: list[np.ndarray] = []
        self._count = 0
        self._index: Any = None
        self._owner: np.ndarray | None = None
        self._streaming: IndexPlan | None = None
        expected = self._plan(expected_references * per_reference)
        if expected.kind == "ivfpq":
            self._streaming = expected

    def _plan(self, descriptors: int) -> IndexPlan:
        return plan(descriptors, flat_limit=self.flat_limit, compress_above=self.compress_above,
                    pq_bytes=self.pq_bytes, nprobe=self.nprobe)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def descriptor_count(self) -> int:
        return self._count

    @property
    def index_plan(self) -> IndexPlan:
        """The index that holds (or will hold) the descriptors added so far."""
        return self._streaming if self._streaming is not None else self._plan(self._count)

    def add(self, key: Hashable, features: LocalFeatures) -> None:
        """Index the strongest ``per_reference`` keypoints of one reference photo."""
        desc = _to_uint8(strongest(features, self.per_reference))
        if len(desc) == 0:
            return
        self._blocks.append(desc)
        self._owners.append(np.full(len(desc), len(self._keys), dtype=np.int64))
        self._keys.append(key)
        self._count += len(desc)
        streaming = self._streaming
        if streaming is None:
            self._index = None
        elif self._index is not None or self._count - self._indexed() >= streaming.train_size:
            self._flush()

    def _indexed(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    def _flush(self) -> None:
        """Move the waiting descriptors into the index, trained on them first when it is new (streaming)."""
        if not self._blocks:
            return
        data = np.concatenate(self._blocks)
        owners = np.concatenate(self._owners)
        self._blocks, self._owners = [], []
        if self._index is None:  # trained on what is there when fewer came than the plan expected
            p = self._streaming if self._streaming and len(data) >= self._streaming.train_size else None
            self._index = self._new_index(p or self._plan(len(data)), data)
        self._owner = owners if self._owner is None else np.concatenate([self._owner, owners])
        self._add_vectors(data)

    def _new_index(self, p: IndexPlan, data: np.ndarray) -> Any:
        sample = data
        if len(data) > p.train_size > 0:
            sample = data[np.random.default_rng(0).choice(len(data), p.train_size, replace=False)]
        return _faiss_index(p, _to_float(sample, p.dim))

    def _add_vectors(self, data: np.ndarray) -> None:
        for start in range(0, len(data), 1 << 20):
            self._index.add(_to_float(data[start:start + (1 << 20)], self._index.d))

    def _ready(self) -> None:
        """Make the index hold every descriptor added: streaming, add the waiting ones; otherwise (exact
        kinds, which keep the uint8 descriptors) rebuild it from all of them when one was added since."""
        if self._streaming is not None:
            self._flush()
        elif self._index is None and self._blocks:
            data = np.concatenate(self._blocks)
            self._owner = np.concatenate(self._owners)
            self._index = self._new_index(self._plan(len(data)), data)
            self._add_vectors(data)

    def vote(self, features: LocalFeatures, top: int = 3, *, min_votes: int = 4) -> list[tuple[Hashable, int]]:
        """The ``top`` references with the most votes (at least ``min_votes``), most votes first."""
        if not self._keys or len(features) == 0:
            return []
        self._ready()
        query = _to_float(strongest(features, self.query_features), self._index.d, 1.0)
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
