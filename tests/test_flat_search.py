"""The flat index's exact search in numpy (knockoff.match.flat_search) against FAISS's own flat search."""

import numpy as np
import pytest

from knockoff.match import flat_search
from knockoff.match.flat_search import flat_contents, top_k


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32) + 0.5  # not centred, like embeddings
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def faiss_flat(vectors: np.ndarray, ids: np.ndarray):
    import faiss

    index = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    if len(vectors):
        index.add_with_ids(vectors, ids)
    return index


@pytest.mark.parametrize(("n", "queries", "k", "block"), [
    (500, 7, 10, 1 << 16),    # one block
    (5000, 30, 150, 1024),    # many blocks, k larger than most rows' candidates in later blocks
    (3000, 1, 1, 1024),       # a single query, the best one
    (40, 5, 100, 1024),       # fewer vectors than k: the rest is FAISS's "nothing"
    (1500, 9, 1500, 1024),    # k = every vector
])
def test_same_as_faiss(monkeypatch, n, queries, k, block):
    monkeypatch.setattr(flat_search, "_MAX_BLOCK", block)
    monkeypatch.setattr(flat_search, "_SCORES_AT_ONCE", block)  # a block of queries x stored vectors: small
    vectors, q = unit(n, 48, 1), unit(queries, 48, 2)
    ids = np.arange(n, dtype=np.int64) * 7 + 3
    index = faiss_flat(vectors, ids)
    expected_scores, expected_ids = index.search(q, k)
    scores, found = top_k(q, *flat_contents(index), k)
    assert scores.shape == found.shape == (queries, k) and scores.dtype == np.float32 and found.dtype == np.int64
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    # the same ids in the same order, except where two scores are equal to float precision (summation order)
    apart = np.ones_like(expected_scores, bool)
    apart[:, 1:] &= np.abs(np.diff(expected_scores, axis=1)) > 1e-5
    apart[:, :-1] &= np.abs(np.diff(expected_scores, axis=1)) > 1e-5
    np.testing.assert_array_equal(found[apart], expected_ids[apart])
    assert all(set(a) == set(b) for a, b in zip(found.tolist(), expected_ids.tolist())) or k < n


@pytest.mark.parametrize("fraction", [1, 10**9])  # always gather the new candidates / always sort whole blocks
def test_both_ways_of_taking_a_block(monkeypatch, fraction):
    monkeypatch.setattr(flat_search, "_MAX_BLOCK", 1024)
    monkeypatch.setattr(flat_search, "_SPARSE_FRACTION", fraction)
    vectors, q = unit(6000, 32, 8), unit(13, 32, 9)
    index = faiss_flat(vectors, np.arange(6000, dtype=np.int64))
    expected_scores, expected_ids = index.search(q, 40)
    scores, found = top_k(q, *flat_contents(index), 40)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(found, expected_ids)


def test_query_blocks(monkeypatch):
    monkeypatch.setattr(flat_search, "_MAX_QUERIES", 4)
    vectors, q = unit(800, 16, 3), unit(11, 16, 4)
    index = faiss_flat(vectors, np.arange(800, dtype=np.int64))
    expected = index.search(q, 12)[1]
    np.testing.assert_array_equal(top_k(q, *flat_contents(index), 12)[1], expected)


def test_ties_all_returned_once():
    vectors = np.repeat(unit(3, 8, 5), 4, axis=0)  # every vector four times
    index = faiss_flat(vectors, np.arange(12, dtype=np.int64))
    scores, found = top_k(vectors[:1], *flat_contents(index), 6)
    assert set(found[0, :4].tolist()) == {0, 1, 2, 3} and len(set(found[0].tolist())) == 6
    assert np.all(np.diff(scores[0]) <= 1e-6)


@pytest.mark.parametrize("k", [0, 5])
def test_empty(k):
    index = faiss_flat(np.zeros((0, 8), np.float32), np.zeros(0, np.int64))
    vectors, ids = flat_contents(index)
    assert vectors.shape == (0, 8) and ids.shape == (0,)
    scores, found = top_k(unit(2, 8, 6), vectors, ids, k)
    assert found.shape == (2, k) and (found == -1).all() and (scores < -1e38).all()


def test_views_follow_the_index():
    """flat_contents is a view of FAISS's memory: what was added is there, with its ids."""
    vectors = unit(20, 8, 7)
    index = faiss_flat(vectors, np.arange(100, 120, dtype=np.int64))
    stored, ids = flat_contents(index)
    np.testing.assert_array_equal(stored, vectors)
    assert ids.tolist() == list(range(100, 120))


def misaligned(vectors: np.ndarray, offset: int) -> np.ndarray:
    """The same vectors at an address ``offset`` bytes past a 64-byte boundary, as a memory-mapped index file
    leaves them (FAISS's header puts them at any offset)."""
    raw = np.empty(vectors.nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    out = raw[start : start + vectors.nbytes].view(np.float32).reshape(vectors.shape)
    out[:] = vectors
    return out


@pytest.mark.parametrize("queries", [1, 2, 3, 4, 15])
@pytest.mark.parametrize("offset", [2, 16, 36])
def test_scores_do_not_depend_on_where_the_vectors_lie(queries, offset):
    vectors = unit(20_000, 227, 5)
    rng = np.random.default_rng(queries)
    q = (vectors[rng.integers(0, len(vectors), queries)] + rng.normal(0, 0.01, (queries, 227))).astype(np.float32)
    ids = np.arange(len(vectors), dtype=np.int64)
    aligned = misaligned(vectors, 0)
    assert aligned.ctypes.data % 64 == 0 and misaligned(vectors, offset).ctypes.data % 64 == offset
    expected = top_k(q, aligned, ids, 10)
    found = top_k(q, misaligned(vectors, offset), ids, 10)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
