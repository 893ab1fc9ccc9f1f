"""A local-feature shortlist: RootSIFT keypoints of every reference photo in one FAISS index, voted on.

The global descriptor (:mod:`knockoff.embedders.perceptual`) ranks a copy that is rotated by a few degrees,
warped in perspective or pasted small into a collage too low to be verified. Local features do not care: each
RootSIFT descriptor of the listing photo looks up its nearest reference descriptor, and a match counts as a
vote for that reference photo when it passes Lowe's ratio test against the nearest descriptor of *another*
reference photo (a keypoint that looks like keypoints of many references says nothing). The references with
the most votes are the shortlist that :class:`knockoff.match.verify.GeometricVerifier` then checks strictly; votes
never decide on their own.

Cost: one search of the listing's strongest ``query_features`` descriptors (computed anyway for the
geometric check) against ``per_reference`` descriptors of each reference. The FAISS ids are the reference
ids. The index is chosen by size (:func:`plan`): exact (flat, float32) up to ``flat_limit`` descriptors, IVF
over the exact uint8 descriptors (``QT_8bit_direct``: 136 bytes a descriptor with its id) up to
``compress_above``, and above it IVF with product quantization (``pq_bytes`` bytes a descriptor plus an 8-byte
id: 20 KB a reference photo at the defaults), trained on a sample of the first ``train_size`` descriptors and
then filled as references come: no size cap. Every kind works in the units of the stored descriptors
(RootSIFT times 512, as uint8); the exact kinds give their descriptors back when the index outgrows its kind.

The shortlist is part of the reference index (:class:`knockoff.match.index.ReferenceIndex`): built at
``index build``, updated by ``add`` and ``remove``, saved as ``shortlist.faiss`` (``faiss.write_index``) and
``shortlist_refs.npy`` (reference id, descriptors) under the manifest's checksums, and loaded (memory-mapped
with ``mmap=True``) instead of being trained again in every process.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from knockoff.errors import ConfigError, IndexCorruptError
from knockoff.match.refstore import all_distinct
from knockoff.match.verify import LocalFeatures

__all__ = ["SHORTLIST_FILES", "IndexPlan", "KeypointShortlist", "ShortlistParams", "plan", "strongest"]

log = logging.getLogger(__name__)

SHORTLIST_FILE = "shortlist.faiss"
SHORTLIST_REFS = "shortlist_refs.npy"
SHORTLIST_FILES = (SHORTLIST_FILE, SHORTLIST_REFS)
KINDS = ("flat", "ivf", "ivfpq")


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
_ADD_CHUNK = 1 << 18  # descriptors waiting before they go into an index that exists (bounded memory)


@dataclass(frozen=True)
class IndexPlan:
    """The vote's FAISS index for ``descriptors`` vectors: ``kind`` flat, ivf or ivfpq, with its parameters.

    ``quantizer_m``: 0 for an exact (flat) coarse quantizer, else an HNSW graph of that many links a node over
    the lists' centroids (``quantizer_ef``: its search depth when descriptors are added; a vote searches at
    least ``2 * nprobe`` deep), as FAISS's ``IVF65536_HNSW32`` factory strings do: assigning 10^7 descriptors
    to 16,384 lists exactly costs 16,384 distances each. ``train_levels``: 1 for one k-means over the sample, 2
    for two-level k-means (about sqrt(nlist) clusters, then each split in proportion to its size). Plans of
    manifests written before these fields existed read as flat and one level, as they were built."""

    kind: str
    descriptors: int
    nlist: int = 0
    nprobe: int = 0
    pq_bytes: int = 0
    train_size: int = 0
    quantizer_m: int = 0
    quantizer_ef: int = 0
    train_levels: int = 1

    @property
    def dim(self) -> int:
        """The indexed vectors' length: 128, zero-padded to a multiple of ``pq_bytes`` for product quantization
        (zeros add nothing to a distance)."""
        return -(-128 // self.pq_bytes) * self.pq_bytes if self.kind == "ivfpq" else 128

    def bytes_per_descriptor(self) -> int:
        """Memory (and disk) a descriptor takes in the shortlist: its vector (float32), uint8 code or PQ code,
        and its 8-byte id."""
        return {"flat": 128 * 4, "ivf": 128}.get(self.kind, self.pq_bytes) + 8

    @classmethod
    def from_dict(cls, data: Any) -> IndexPlan:
        """From :func:`dataclasses.asdict` output (a manifest's; the fields added since, :data:`_LATER_FIELDS`,
        may be missing: their defaults are how older indexes were built); a :class:`ConfigError` when
        malformed."""
        names = [f.name for f in fields(cls)]
        ok = isinstance(data, dict) and set(names) - set(_LATER_FIELDS) <= set(data) <= set(names) and data.get(
            "kind") in KINDS and all(isinstance(data[n], int) and not isinstance(data[n], bool) and data[n] >= 0
                                     for n in names[1:] if n in data)
        if not ok or (data["kind"] != "flat" and min(data["nlist"], data["nprobe"]) < 1) or (
                data["kind"] == "ivfpq" and not 1 <= data["pq_bytes"] <= 128) or not _quantizer_ok(data):
            raise ConfigError(f"not a shortlist plan: {data!r}")
        return cls(**data)


#: IndexPlan fields added after indexes were first saved with their plan (absent from older manifests)
_LATER_FIELDS = ("quantizer_m", "quantizer_ef", "train_levels")


def _quantizer_ok(data: dict[str, Any]) -> bool:
    m, ef, levels = data.get("quantizer_m", 0), data.get("quantizer_ef", 0), data.get("train_levels", 1)
    return levels in (1, 2) and (m == 0 or (data["kind"] != "flat" and ef >= 1))


def plan(descriptors: int, *, flat_limit: int = 65_536, compress_above: int = 2_500_000,
         pq_bytes: int = 32, nprobe: int = 16, hnsw_from: int = 8192) -> IndexPlan:
    """The index for ``descriptors`` vectors: exact up to ``flat_limit``; above it IVF with about
    4 * sqrt(n) lists (a power of two, 256 to 16,384), trained on 40 vectors a list; product-quantized above
    ``compress_above``. From ``hnsw_from`` lists up, the lists' centroids are found by two-level k-means and
    searched through an HNSW graph (16 links, 16 deep): the exact assignment of every descriptor to every
    centroid is what made the build slow (:class:`IndexPlan`)."""
    if descriptors <= flat_limit:
        return IndexPlan("flat", descriptors)
    nlist = 2 ** int(round(math.log2(4 * math.sqrt(descriptors))))
    nlist = min(max(nlist, 256), 16_384)
    kind = "ivfpq" if descriptors > compress_above else "ivf"
    graph = nlist >= hnsw_from
    return IndexPlan(kind, descriptors, nlist=nlist, nprobe=min(nprobe, nlist),
                     pq_bytes=pq_bytes if kind == "ivfpq" else 0, train_size=min(descriptors, 40 * nlist),
                     quantizer_m=16 if graph else 0, quantizer_ef=16 if graph else 0, train_levels=2 if graph else 1)


@dataclass(frozen=True)
class ShortlistParams:
    """What a built shortlist depends on (kept in the index's manifest): descriptors a reference photo, and
    the sizes that choose its index (:func:`plan`). The vote's own settings (descriptors a query, ratio test,
    neighbours, ``nprobe``) are the caller's, at every vote. ``hnsw_from`` came later: a manifest without it
    reads the default (the plan an index was built with is kept in its own manifest entry)."""

    per_reference: int = 500
    flat_limit: int = 65_536
    compress_above: int = 2_500_000
    pq_bytes: int = 32
    hnsw_from: int = 8192

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"shortlist {f.name} must be an integer >= 1, got {value!r}")
        if self.pq_bytes > 128:
            raise ConfigError(f"shortlist pq_bytes must be at most 128, got {self.pq_bytes}")

    def plan(self, descriptors: int, nprobe: int = 16) -> IndexPlan:
        return plan(descriptors, flat_limit=self.flat_limit, compress_above=self.compress_above,
                    pq_bytes=self.pq_bytes, nprobe=nprobe, hnsw_from=self.hnsw_from)

    @classmethod
    def from_dict(cls, data: Any) -> ShortlistParams:
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not names - {"hnsw_from"} <= set(data) <= names:
            raise ConfigError(f"shortlist parameters must be an object with {', '.join(sorted(names))}")
        return cls(**data)


def _groups_of(ids: np.ndarray, groups: Mapping[int, int] | None) -> np.ndarray:
    """The group of each searched id (``ids``, -1 for none): ``groups``' value, else a group of its own (the id
    itself, below every group of ``groups``)."""
    if groups is None:
        return ids
    lookup = {int(i): groups.get(int(i)) for i in np.unique(ids) if i >= 0}
    base = min((g for g in lookup.values() if g is not None), default=0)
    own = {i: (g if g is not None else base - 2 - i) for i, g in lookup.items()}
    own[-1] = base - 1
    return np.vectorize(own.__getitem__, otypes=[np.int64])(ids)


def _to_uint8(desc: np.ndarray) -> np.ndarray:
    if desc.dtype == np.uint8:
        return np.ascontiguousarray(desc)
    return np.clip(np.rint(np.asarray(desc, np.float32) * _SCALE), 0, 255).astype(np.uint8)


def _as_vectors(desc: np.ndarray, dim: int, scale: float = 1.0) -> np.ndarray:
    """Descriptors as the index's float32 vectors (uint8 units; ``scale`` 512 for RootSIFT floats), zero-padded
    to ``dim``."""
    out = np.zeros((len(desc), dim), np.float32)
    out[:, :128] = np.asarray(desc, np.float32) * np.float32(scale)
    return out


def _faiss_index(p: IndexPlan, sample: np.ndarray) -> Any:
    """An empty FAISS index for plan ``p`` (ids: reference ids), trained on ``sample`` (uint8) when it needs
    training."""
    import faiss

    if p.kind == "flat":
        return faiss.IndexIDMap(faiss.IndexFlatL2(128))
    vectors = _as_vectors(sample, p.dim)
    quantizer = _graph_quantizer(p, vectors) if p.quantizer_m else faiss.IndexFlatL2(p.dim)
    if p.kind == "ivf":
        index = faiss.IndexIVFScalarQuantizer(quantizer, 128, p.nlist, faiss.ScalarQuantizer.QT_8bit_direct,
                                              faiss.METRIC_L2, False)
    else:
        index = faiss.IndexIVFPQ(quantizer, p.dim, p.nlist, p.pq_bytes, 8)
    index.train(vectors)  # (faiss keeps the quantizer alive: index.referenced_objects; a filled one is kept)
    index.nprobe = p.nprobe
    return index


def _graph_quantizer(p: IndexPlan, vectors: np.ndarray) -> Any:
    """An HNSW graph over the ``p.nlist`` centroids of ``vectors`` (two-level or plain k-means), built on one
    thread: the graph, and so the lists, are the same in every build."""
    import faiss

    if p.train_levels == 2:
        centroids = _two_level_kmeans(vectors, p.nlist)
    else:
        kmeans = faiss.Kmeans(p.dim, p.nlist, niter=25, seed=1234)
        kmeans.train(vectors)
        centroids = kmeans.centroids
    quantizer = faiss.IndexHNSWFlat(p.dim, p.quantizer_m)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        quantizer.add(np.ascontiguousarray(centroids, np.float32))
    finally:
        faiss.omp_set_num_threads(threads)
    quantizer.hnsw.efSearch = p.quantizer_ef
    return quantizer


def _two_level_kmeans(vectors: np.ndarray, k: int, iterations: int = 25) -> np.ndarray:
    """``k`` centroids of ``vectors``: k-means into about sqrt(k) clusters, then each cluster into its share of
    ``k`` (in proportion to its size), as ``faiss.contrib.clustering.two_level_clustering`` does: the cost of
    k-means grows with ``len(vectors) * k``, here with ``len(vectors) * sqrt(k)``."""
    import faiss

    top = max(1, min(int(round(math.sqrt(k))), len(vectors)))
    coarse = faiss.Kmeans(vectors.shape[1], top, niter=iterations, seed=1234, max_points_per_centroid=2000)
    coarse.train(vectors)
    assign = coarse.index.search(vectors, 1)[1][:, 0]
    shares = np.diff(np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=top)) * k // len(vectors)]))
    centroids = []
    for cluster, share in enumerate(shares.tolist()):
        members = vectors[assign == cluster]
        if share == 0:
            continue
        if len(members) <= share:  # too few to split: its members are its centroids (repeated to fill)
            centroids.append(np.resize(members, (share, vectors.shape[1])))
            continue
        fine = faiss.Kmeans(vectors.shape[1], share, niter=iterations, seed=1234 + cluster, min_points_per_centroid=1)
        fine.train(members)
        centroids.append(fine.centroids)
    return np.concatenate(centroids).astype(np.float32)


def _contents(index: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Every descriptor (uint8) and id an exact index holds (flat, ivf): they are stored without loss."""
    import faiss

    if kind == "flat":
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, 128), np.float32)
        return np.rint(vectors).astype(np.uint8), faiss.vector_to_array(index.id_map).astype(np.int64)
    lists = index.invlists
    codes, ids = [], []
    for number in range(index.nlist):
        size = lists.list_size(number)
        if size:
            codes.append(np.array(faiss.rev_swig_ptr(lists.get_codes(number), size * 128)).reshape(size, 128))
            ids.append(np.array(faiss.rev_swig_ptr(lists.get_ids(number), size), np.int64))
    if not codes:
        return np.zeros((0, 128), np.uint8), np.zeros(0, np.int64)
    return np.concatenate(codes).astype(np.uint8), np.concatenate(ids)


def _faiss_kind(index: Any) -> str | None:
    import faiss

    if isinstance(index, faiss.IndexIDMap) and isinstance(faiss.downcast_index(index.index), faiss.IndexFlatL2):
        return "flat"
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivf"
    return "ivfpq" if isinstance(index, faiss.IndexIVFPQ) else None


def _quantizer_links(index: Any) -> int:
    """0 for an IVF index's exact (flat) coarse quantizer, its links a node for an HNSW one (-1: neither)."""
    import faiss

    quantizer = faiss.downcast_index(index.quantizer)
    if isinstance(quantizer, faiss.IndexHNSWFlat):
        return int(quantizer.hnsw.nb_neighbors(1))
    return 0 if isinstance(quantizer, faiss.IndexFlatL2) else -1


class KeypointShortlist:
    """Votes of a listing photo's keypoints for reference photos (by reference id, an int).

    ``expected_references``: how many reference photos will be added (a hint for :func:`plan`); when their
    descriptors go over ``compress_above``, the product-quantized index is trained on a sample of the first
    ``plan.train_size`` descriptors and every later reference goes straight into it. ``query_features``,
    ``ratio``, ``neighbours`` and ``nprobe`` are the vote's defaults; :meth:`vote` takes others."""

    def __init__(self, *, per_reference: int = 500, query_features: int = 1000, ratio: float = 0.85,
                 neighbours: int = 8, flat_limit: int = 65_536, compress_above: int = 2_500_000,
                 pq_bytes: int = 32, nprobe: int = 16, expected_references: int = 0, hnsw_from: int = 8192):
        self.params = ShortlistParams(per_reference, flat_limit, compress_above, pq_bytes, hnsw_from)
        self.query_features = query_features
        self.ratio = ratio
        self.neighbours = neighbours
        self.nprobe = nprobe
        self._index: Any = None
        self._built: IndexPlan | None = None  # the plan self._index was made with
        self._waiting: list[tuple[np.ndarray, np.ndarray]] = []  # uint8 descriptors and ids not yet indexed
        self._waiting_count = 0
        self._refs = np.zeros((0, 2), np.int64)  # (reference id, descriptors) of every reference indexed
        self._new_refs: list[tuple[int, int]] = []
        self._source: tuple[Path, str] | None = None  # (file, checksum) a memory-mapped index was read from
        self._streaming: IndexPlan | None = None
        expected = self.params.plan(expected_references * per_reference, nprobe)
        if expected.kind == "ivfpq":
            self._streaming = expected

    @classmethod
    def from_params(cls, params: ShortlistParams, *, expected_references: int = 0) -> KeypointShortlist:
        return cls(**asdict(params), expected_references=expected_references)

    def __len__(self) -> int:
        return len(self.references())

    def references(self) -> np.ndarray:
        """(reference id, descriptors) of every reference photo in the shortlist, one row each."""
        if self._new_refs:
            self._refs = np.concatenate([self._refs, np.asarray(self._new_refs, np.int64).reshape(-1, 2)])
            self._new_refs = []
        return self._refs

    @property
    def descriptor_count(self) -> int:
        return self._waiting_count + (0 if self._index is None else int(self._index.ntotal))

    @property
    def index_plan(self) -> IndexPlan:
        """The index that holds (or will hold) the descriptors added so far."""
        target = self._streaming or self.params.plan(self.descriptor_count, self.nprobe)
        return self._built if self._built is not None and not self._waiting else target

    # -- building ----------------------------------------------------------------------------------------

    def add(self, ref_id: int, features: Any) -> None:
        """Index the strongest ``per_reference`` keypoints of one reference photo (``LocalFeatures`` or the
        index folder's stored features)."""
        desc = _to_uint8(strongest(features, self.params.per_reference))
        if len(desc) == 0:
            return
        self._check_writable()
        self._waiting.append((desc, np.full(len(desc), int(ref_id), np.int64)))
        self._waiting_count += len(desc)
        self._new_refs.append((int(ref_id), len(desc)))
        streaming = self._streaming
        if streaming is not None and self._waiting_count >= (
                _ADD_CHUNK if self._index is not None else streaming.train_size):
            self._ready()

    def remove(self, ref_ids: Iterable[int]) -> None:
        """Take reference photos out of the shortlist: their descriptors never vote again."""
        import faiss

        doomed = np.unique(np.asarray(list(ref_ids), np.int64))
        refs = self.references()
        if not len(doomed) or not np.isin(refs[:, 0], doomed).any():
            return
        self._check_writable()
        self._waiting = [(d[keep], i[keep]) for d, i in self._waiting for keep in [~np.isin(i, doomed)]]
        self._waiting_count = sum(len(i) for _, i in self._waiting)
        if self._index is not None and self._index.ntotal:
            self._index.remove_ids(faiss.IDSelectorBatch(doomed))
        self._refs = refs[~np.isin(refs[:, 0], doomed)]

    def _check_writable(self) -> None:
        if self._source is not None:
            raise ConfigError(f"this keypoint shortlist is memory-mapped from {self._source[0]}: it cannot change")

    def _ready(self) -> None:
        """Put every waiting descriptor into the index: into the one there is while its kind still fits (or it
        is product-quantized), else into a new one of the right kind, made from the old one's descriptors."""
        if not self._waiting:
            return
        target = self._streaming or self.params.plan(self.descriptor_count, self.nprobe)
        data = np.concatenate([d for d, _ in self._waiting])
        ids = np.concatenate([i for _, i in self._waiting])
        self._waiting, self._waiting_count = [], 0
        built = self._built
        if self._index is not None and built is not None and built.kind in (target.kind, "ivfpq"):
            self._add_vectors(data, ids)
            return
        if self._index is not None and built is not None:  # outgrown: the exact kinds give their contents back
            old, old_ids = _contents(self._index, built.kind)
            data, ids = np.concatenate([old, data]), np.concatenate([old_ids, ids])
        p = target if len(data) >= target.train_size else self.params.plan(len(data), self.nprobe)
        sample = data
        if len(data) > p.train_size > 0:
            sample = data[np.random.default_rng(0).choice(len(data), p.train_size, replace=False)]
        started = time.perf_counter()
        self._index, self._built = _faiss_index(p, sample), p
        log.info("keypoint shortlist %s trained on %d descriptors in %.1f s", p, len(sample),
                 time.perf_counter() - started)
        self._add_vectors(data, ids)

    def _add_vectors(self, data: np.ndarray, ids: np.ndarray) -> None:
        for start in range(0, len(data), 1 << 20):
            stop = start + (1 << 20)
            self._index.add_with_ids(_as_vectors(data[start:stop], self._index.d), ids[start:stop])

    # -- voting ------------------------------------------------------------------------------------------

    def vote(self, features: Any, top: int = 3, *, min_votes: int = 4, query_features: int | None = None,
             ratio: float | None = None, neighbours: int | None = None, nprobe: int | None = None,
             groups: Mapping[int, int] | None = None) -> list[tuple[int, int]]:
        """The ``top`` reference ids with the most votes (at least ``min_votes``), most votes first (ties:
        the lower id); the vote's settings default to the shortlist's.

        ``groups`` (reference id -> group, e.g. its brand; ids it lacks are groups of their own): the ratio test
        is taken against the nearest descriptor of another *group*, and a keypoint that passes it votes for
        every reference of its group among its neighbours that passes it too. The products of one brand share
        their package design: a keypoint of it matches each of them about equally, which a ratio test against
        any other reference reads as saying nothing, while it says the brand (and that any of its products may
        be the one: verification tells which). ``None``: each reference is its own group."""
        if self.descriptor_count == 0 or len(features) == 0:
            return []
        self._ready()
        query = _as_vectors(strongest(features, query_features or self.query_features), self._index.d, _SCALE)
        k = min(neighbours or self.neighbours, int(self._index.ntotal))
        dist, ids = self._search(query, k, nprobe or self.nprobe)  # squared L2 distances, ascending
        limit = (ratio or self.ratio) ** 2
        valid = ids >= 0
        group = _groups_of(ids, groups)
        first = group[:, 0]
        # the nearest descriptor of another group (or the last neighbour when all k are of one group)
        other = (group != first[:, None]) & valid
        other_pos = np.where(other.any(axis=1), other.argmax(axis=1), k - 1)
        d_other = dist[np.arange(len(query)), other_pos]
        ok = valid[:, 0] & (dist[:, 0] < limit * d_other)
        voters = ok[:, None] & valid & (group == first[:, None]) & (dist < limit * d_other[:, None])
        voters[:, 0] = ok
        rows, cols = np.nonzero(voters)
        pairs = np.unique(np.stack([rows, ids[rows, cols]], axis=1), axis=0)  # one vote a keypoint and reference
        refs, votes = np.unique(pairs[:, 1], return_counts=True)
        order = np.lexsort((refs, -votes))[:top]
        return [(int(refs[i]), int(votes[i])) for i in order if votes[i] >= min_votes]

    def _search(self, query: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        if self._built is None or self._built.kind == "flat":
            return self._index.search(query, k)
        import faiss

        if not self._built.quantizer_m:
            return self._index.search(query, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        graph = faiss.SearchParametersHNSW(efSearch=max(self._built.quantizer_ef, 2 * nprobe))
        return self._index.search(query, k, params=faiss.SearchParametersIVF(nprobe=nprobe, quantizer_params=graph))

    # -- files and pickling ------------------------------------------------------------------------------

    def save(self, folder: Path) -> dict[str, Any]:
        """Write :data:`SHORTLIST_FILES` into ``folder``; returns the manifest's ``shortlist`` entry."""
        import faiss

        self._ready()
        if self._index is None:  # nothing added yet: an empty exact index, so that the files always exist
            self._built = self.params.plan(0)
            self._index = _faiss_index(self._built, np.zeros((0, 128), np.uint8))
        if self._source is not None:  # a mapped IVF would be written as a pointer to its file: copy the file
            shutil.copyfile(self._mapped_file(), folder / SHORTLIST_FILE)
        else:
            faiss.write_index(self._index, str(folder / SHORTLIST_FILE))
        np.save(folder / SHORTLIST_REFS, self.references(), allow_pickle=False)
        assert self._built is not None
        return {"params": asdict(self.params), "plan": asdict(self._built), "references": len(self),
                "descriptors": int(self._index.ntotal)}

    def _mapped_file(self) -> Path:
        from knockoff.match.manifest import checksum_matches

        assert self._source is not None
        file, checksum = self._source
        if not file.is_file() or not checksum_matches(file, checksum):
            raise IndexCorruptError(f"{file} changed since the shortlist was memory-mapped from it; load it again")
        return file

    @classmethod
    def load(cls, folder: Path, entry: Any, *, mmap: bool = False, checksum: str = "") -> KeypointShortlist:
        """Read the shortlist that :meth:`save` wrote, described by the manifest's ``entry``; ``mmap`` maps
        its inverted lists (IVF kinds) or vectors (flat) read-only. Any inconsistency is an
        :class:`IndexCorruptError`; nothing is trained."""
        import faiss

        try:
            if not isinstance(entry, dict):
                raise ConfigError("'shortlist' must be an object")
            params = ShortlistParams.from_dict(entry.get("params"))
            built = IndexPlan.from_dict(entry.get("plan"))
        except ConfigError as exc:
            raise IndexCorruptError(f"{folder}: manifest.json is damaged: {exc}") from None
        flags = (faiss.IO_FLAG_MMAP_IFC if built.kind == "flat" else faiss.IO_FLAG_MMAP) if mmap else 0
        try:
            index = faiss.read_index(str(folder / SHORTLIST_FILE), flags)
            refs = np.load(folder / SHORTLIST_REFS, allow_pickle=False)
        except (OSError, RuntimeError, ValueError, EOFError) as exc:
            raise IndexCorruptError(f"{folder}: cannot read the keypoint shortlist ({exc})") from exc
        shortlist = cls.from_params(params)
        shortlist._index, shortlist._built, shortlist._refs = index, built, refs
        problem = shortlist._problem(entry)
        if problem:
            raise IndexCorruptError(f"{folder}: the keypoint shortlist is damaged ({problem})")
        if mmap:
            shortlist._source = (folder / SHORTLIST_FILE, checksum)
        return shortlist

    def _problem(self, entry: dict[str, Any]) -> str | None:
        index, refs, built = self._index, self._refs, self._built
        assert built is not None
        if _faiss_kind(index) != built.kind or index.d != built.dim:
            return f"{SHORTLIST_FILE} is not the {built.kind} index of {built.dim} dimensions the manifest says"
        if built.kind != "flat" and _quantizer_links(index) != built.quantizer_m:
            return f"{SHORTLIST_FILE}'s coarse quantizer is not the one the manifest's plan says"
        if not (refs.dtype == np.int64 and refs.ndim == 2 and refs.shape[1] == 2):
            return f"{SHORTLIST_REFS} must hold (reference id, descriptors) int64 rows"
        if int(index.ntotal) != entry.get("descriptors") or len(refs) != entry.get("references"):
            return (f"{index.ntotal} descriptors of {len(refs)} references, the manifest says "
                    f"{entry.get('descriptors')} of {entry.get('references')}")
        if int(refs[:, 1].sum()) != index.ntotal or not all_distinct(refs[:, 0]) or (refs < 0).any():
            return f"{SHORTLIST_REFS} disagrees with {SHORTLIST_FILE}"
        return None

    def __getstate__(self) -> dict[str, Any]:
        import faiss

        self._ready()
        state = dict(self.__dict__)
        if self._index is not None:
            state["_index"] = (np.fromfile(self._mapped_file(), np.uint8) if self._source is not None
                               else faiss.serialize_index(self._index))
        state["_source"] = None  # shipped in memory: the receiver holds its own copy
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import faiss

        self.__dict__.update(state)
        if state["_index"] is not None:
            self._index = faiss.deserialize_index(state["_index"])
