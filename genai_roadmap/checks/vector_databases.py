"""Checks for phase2_tooling/08_vector_databases.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with faiss (the trusted
reference: IndexFlatIP for exact search, IndexIVFFlat for the inverted file) or a short reference below, and
with one hand-worked case; when the answer is wrong it compares it with the usual wrong answers to name the
likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, passed

# ----------------------------------------------------------------------------------------- helpers


def _rng(seed: int):
    import numpy as np

    return np.random.default_rng(seed)


def _normalize(x):
    import numpy as np

    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _ids(name: str, got, nq: int, k: int):
    """The learner's output as an (nq, k) int array, with a clear message for the usual shape/type slips."""
    import numpy as np

    try:
        got = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got)
    except Exception as e:  # a ragged list, ...
        raise CheckFailed(f"{name}: return an (nq, k) array of ids, could not read yours ({e})") from None
    expect(got.ndim == 2 and got.shape[0] == nq, name, f"expected shape ({nq}, {k}), got {got.shape}")
    if got.shape[1] in (k - 1, k + 1):
        raise CheckFailed(f"{name}: expected {k} ids per query, got {got.shape[1]}: off by one in the slice? "
                          "`order[:, :k]` keeps exactly k")
    expect(got.shape == (nq, k), name, f"expected shape ({nq}, {k}), got {got.shape}")
    if not np.issubdtype(got.dtype, np.integer):
        frac = np.abs(got - np.round(got)).max() if got.size and np.issubdtype(got.dtype, np.number) else 1
        if frac > 0:
            raise CheckFailed(f"{name}: your output holds floats such as {got.flat[0]:.3f}: returned the scores "
                              "(or distances) instead of the ids? Return the column indices (argsort), not the values")
        got = got.astype(np.int64)
    return got


def _topk(scores, k: int, descending: bool = True):
    import numpy as np

    order = np.argsort(-scores if descending else scores, axis=1, kind="stable")
    return order[:, :k]


# ------------------------------------------------------------------------------- exercise 1


def knn_search(fn: Callable) -> None:
    """Exercise 1: `fn(xb, xq, k)` -> (nq, k) ids of the k most cosine-similar rows of xb, best first."""
    import faiss
    import numpy as np

    name = "knn_search"
    # hand-worked: cosine of q=(1, 0) with (1, 1), (3, 0), (0, 2), (-1, 0) is 0.707, 1, 0, -1 -> ids 1, 0, 2
    xb = np.array([[1, 1], [3, 0], [0, 2], [-1, 0]], dtype=np.float32)
    xq = np.array([[1, 0]], dtype=np.float32)
    got = _ids(name, call(name, fn, xb, xq, 3), 1, 3)
    if got.tolist() == [[1, 0, 2]]:
        pass
    elif got.tolist() == [[1, 2, 0]]:  # raw inner products 1, 3, 0, -1: (3, 0) first, then (1, 1), then (0, 2)
        raise CheckFailed(f"{name}: hand-worked case: expected ids [1, 0, 2], got [1, 2, 0]: ranked by raw inner "
                          "product? Normalise xb and xq to unit length first, so the score is the cosine")
    elif got.tolist() in ([[3, 2, 0]], [[3, 0, 2]]):
        raise CheckFailed(f"{name}: hand-worked case: expected ids [1, 0, 2], got {got.tolist()[0]}: sorted in "
                          "ascending order? The most similar (largest cosine) must come first")
    elif sorted(got.tolist()[0]) == [0, 1, 2]:
        raise CheckFailed(f"{name}: hand-worked case: the right ids in the wrong order, {got.tolist()[0]} instead of "
                          "[1, 0, 2]: sort by cosine, best first (argpartition alone does not sort)")
    else:
        raise CheckFailed(f"{name}: hand-worked case q=(1, 0), xb=[(1, 1), (3, 0), (0, 2), (-1, 0)], k=3: expected "
                          f"ids [1, 0, 2] (cosines 1, 0.71, 0), got {got.tolist()[0]}")

    rng = _rng(0)
    nq, k = 12, 5
    xb = rng.normal(size=(300, 16)).astype(np.float32) * rng.uniform(0.2, 5.0, size=(300, 1)).astype(np.float32)
    xq = rng.normal(size=(nq, 16)).astype(np.float32) * rng.uniform(0.2, 5.0, size=(nq, 1)).astype(np.float32)
    got = _ids(name, call(name, fn, xb.copy(), xq.copy(), k), nq, k)
    index = faiss.IndexFlatIP(16)
    index.add(_normalize(xb))
    _, expected = index.search(_normalize(xq), k)
    if np.array_equal(got, expected):
        passed(name, "same ids as faiss.IndexFlatIP on normalised vectors, best first")
        return
    cos = _normalize(xq) @ _normalize(xb).T
    wrong = {
        "ranked by raw inner product? Normalise xb and xq to unit length first (cosine = dot of unit vectors)":
            _topk(xq @ xb.T, k),
        "sorted in ascending order? The most similar (largest cosine) must come first": _topk(cos, k, False),
        "the right ids in the wrong order: sort by similarity, best first": None,
    }
    for bug, ids in wrong.items():
        if ids is None and np.array_equal(np.sort(got, 1), np.sort(expected, 1)):
            raise CheckFailed(f"{name}: {bug}")
        if ids is not None and np.array_equal(got, ids):
            raise CheckFailed(f"{name}: {bug}")
    if np.array_equal(got, _topk(-np.linalg.norm(xq[:, None] - xb[None], axis=-1), k)):
        raise CheckFailed(f"{name}: ranked by L2 distance on the raw vectors? Their lengths differ: normalise first")
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), expected.tolist())])
    raise CheckFailed(f"{name}: ids differ from exact cosine search (only {overlap:.0%} overlap): score = "
                      "normalised xq @ normalised xb.T, then the k largest per row, best first")


# ------------------------------------------------------------------------------- exercise 2


def _recall(retrieved, truth, k: int) -> float:
    return sum(len({i for i in r[:k] if i >= 0} & set(t[:k])) for r, t in zip(retrieved, truth)) / (k * len(truth))


def recall_at_k(fn: Callable) -> None:
    """Exercise 2: `fn(retrieved, truth, k)` = mean over queries of |top-k retrieved ∩ top-k truth| / k."""
    name = "recall_at_k"

    def ask(retrieved, truth, k):
        got = call(name, fn, retrieved, truth, k)
        try:
            return float(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name}: return one number (a float between 0 and 1), got {type(got).__name__}") \
                from None

    def near(a, b):
        return abs(a - b) < 1e-6

    # hand-worked: query 0 finds 2 of its 4 true neighbours (4 out of place); query 1 finds all 4 -> 0.75
    truth = [[1, 2, 3, 4], [5, 6, 7, 8]]
    got = ask([[1, 9, 4, 10], [8, 7, 6, 5]], truth, 4)
    if not near(got, 0.75):
        if near(got, 0.125):
            raise CheckFailed(f"{name}: hand-worked case gave 0.125, expected 0.75: compared position by position? "
                              "Recall ignores order: count the ids of the retrieved top-k that are in the true top-k "
                              "(a set intersection)")
        raise CheckFailed(f"{name}: hand-worked case truth=[[1, 2, 3, 4], [5, 6, 7, 8]], retrieved=[[1, 9, 4, 10], "
                          f"[8, 7, 6, 5]], k=4: expected (2/4 + 4/4) / 2 = 0.75, got {got:.4g}")

    # a filtered search may return fewer than k results, padded with -1 (faiss' convention)
    got = ask([[1, 2, -1, -1]], [[1, 2, 3, 4]], 4)
    if not near(got, 0.5):
        if near(got, 1.0):
            raise CheckFailed(f"{name}: 2 of 4 true neighbours found (the rest padded with -1) gave 1.0, expected 0.5: "
                              "divided by the number of results returned instead of by k?")
        raise CheckFailed(f"{name}: retrieved=[[1, 2, -1, -1]], truth=[[1, 2, 3, 4]], k=4: expected 0.5 (-1 means "
                          f"'no result', never a match), got {got:.4g}")

    # a buggy merge returns the same id twice: it is still one neighbour found
    got = ask([[7, 7, 7, 1]], [[7, 1, 2, 3]], 4)
    if not near(got, 0.5):
        if near(got, 1.0):
            raise CheckFailed(f"{name}: retrieved=[[7, 7, 7, 1]], truth=[[7, 1, 2, 3]] gave 1.0, expected 0.5: counted "
                              "duplicates? Id 7 found three times is still one neighbour: use set(...)")
        raise CheckFailed(f"{name}: retrieved=[[7, 7, 7, 1]], truth=[[7, 1, 2, 3]], k=4: expected 0.5, got {got:.4g}")

    # more columns than k: only the first k of each count
    got = ask([[9, 8, 1, 2, 3, 4]], [[1, 2, 3, 4, 5, 6]], 2)
    if not near(got, 0.0):
        raise CheckFailed(f"{name}: retrieved=[[9, 8, 1, 2, 3, 4]], truth=[[1, 2, 3, 4, 5, 6]], k=2: expected 0.0 "
                          f"(top-2 are 9, 8 vs 1, 2), got {got:.4g}: did you use only the first k columns of both?")

    import numpy as np

    rng = _rng(1)
    truth = np.stack([rng.permutation(50)[:10] for _ in range(30)])
    retrieved = np.where(rng.random((30, 10)) < 0.6, truth[:, rng.permutation(10)], rng.integers(50, 60, (30, 10)))
    expected = _recall(retrieved.tolist(), truth.tolist(), 10)
    got = ask(retrieved, truth, 10)
    expect(near(got, expected), name, f"on 30 random queries (numpy arrays) expected {expected:.4f}, got {got:.4f}")
    passed(name, "order-blind, duplicates counted once, -1 never matches, divided by k")


# ------------------------------------------------------------------------------- exercise 3


def _ivf_reference(xb, xq, centroids, k: int, nprobe: int, farthest: bool = False, exhaustive: bool = False):
    import numpy as np

    def l2(a, b):
        return (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None]

    assign = l2(xb, centroids).argmin(1)
    d_centroids = l2(xq, centroids)
    probe = np.argsort(-d_centroids if farthest else d_centroids, axis=1)[:, :nprobe]
    out = np.full((len(xq), k), -1, dtype=np.int64)
    for i, lists in enumerate(probe):
        cand = np.arange(len(xb)) if exhaustive else np.flatnonzero(np.isin(assign, lists))
        d = l2(xq[i:i + 1], xb[cand])[0]
        best = cand[np.argsort(d, kind="stable")[:k]]
        out[i, :len(best)] = best
    return out


def ivf_search(fn: Callable) -> None:
    """Exercise 3: `fn(xb, xq, centroids, k, nprobe)` equals faiss.IndexIVFFlat (L2 quantizer) with that nprobe."""
    import faiss
    import numpy as np

    name = "ivf_search"
    # hand-worked: centroids at x = 0 and x = 10; xb rows 0, 1 near 0 and rows 2, 3 near 10.
    xb = np.array([[0.0, 0.0], [1.0, 0.0], [9.0, 0.0], [10.0, 1.0]], dtype=np.float32)
    centroids = np.array([[0.0, 0.0], [10.0, 0.0]], dtype=np.float32)
    xq = np.array([[4.8, 0.0]], dtype=np.float32)  # nearest list: centroid 0 (4.8 vs 5.2); nearest rows: 1 then 2 (x=9)
    got = _ids(name, call(name, fn, xb, xq, centroids, 2, 1), 1, 2)
    if got.tolist() != [[1, 0]]:
        if got.tolist() in ([[2, 3]], [[3, 2]]):
            raise CheckFailed(f"{name}: hand-worked case (query x=4.8, centroids x=0 and x=10, nprobe=1): expected "
                              f"[1, 0] from the nearest list, got {got.tolist()[0]}: probed the farthest list? "
                              "Probe the nprobe centroids with the *smallest* distance to the query")
        if got.tolist() == [[1, 2]]:
            raise CheckFailed(f"{name}: hand-worked case: expected [1, 0], got [1, 2]: row 2 sits in the other list, "
                              "which nprobe=1 does not visit; search only the vectors of the probed lists")
        raise CheckFailed(f"{name}: hand-worked case xb=[(0,0), (1,0), (9,0), (10,1)], centroids x=0 and x=10, "
                          f"query (4.8, 0), k=2, nprobe=1: expected [1, 0], got {got.tolist()[0]}")

    rng = _rng(2)
    d, nlist, nq, k, nprobe = 16, 16, 25, 5, 4
    xb = _normalize(rng.normal(size=(2000, d)))
    xq = _normalize(rng.normal(size=(nq, d)))
    km = faiss.Kmeans(d, nlist, niter=10, seed=0)
    km.train(xb)
    centroids = km.centroids.copy()
    quantizer = faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)
    quantizer.add(centroids)
    index.is_trained = True
    index.add(xb)
    index.nprobe = nprobe
    _, expected = index.search(xq, k)
    got = _ids(name, call(name, fn, xb.copy(), xq.copy(), centroids.copy(), k, nprobe), nq, k)
    if np.array_equal(got, expected):
        passed(name, f"same ids as faiss.IndexIVFFlat with the same centroids (nlist={nlist}, nprobe={nprobe})")
        return
    wrong = {
        "probed only 1 list? Visit the nprobe nearest centroids' lists": _ivf_reference(xb, xq, centroids, k, 1),
        "probed the farthest lists? Sort the centroid distances ascending and take the first nprobe":
            _ivf_reference(xb, xq, centroids, k, nprobe, farthest=True),
        "searched every vector (exhaustive)? IVF searches only the vectors assigned to the probed lists":
            _ivf_reference(xb, xq, centroids, k, nprobe, exhaustive=True),
    }
    for bug, ids in wrong.items():
        if np.array_equal(got, ids):
            raise CheckFailed(f"{name}: {bug}")
    if np.array_equal(np.sort(got, 1), np.sort(expected, 1)):
        raise CheckFailed(f"{name}: the right ids in the wrong order: sort the candidates by distance, nearest first")
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), expected.tolist())])
    raise CheckFailed(f"{name}: ids differ from faiss.IndexIVFFlat (only {overlap:.0%} overlap): assign each xb row to "
                      "its nearest centroid, probe the nprobe nearest centroids to the query, exact search among "
                      "their rows only")
