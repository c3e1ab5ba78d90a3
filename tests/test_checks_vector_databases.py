"""The checks of 08_vector_databases pass correct answers and catch the stub and plausible bugs."""
import re

import numpy as np
import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import vector_databases as check


def stub(*args, **kwargs):
    raise NotImplementedError


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------ knn_search
def knn(xb, xq, k):
    scores = unit(xq) @ unit(xb).T  # (nq, N) cosines
    return np.argsort(-scores, axis=1)[:, :k]


def knn_ascending(xb, xq, k):
    return np.argsort(unit(xq) @ unit(xb).T, axis=1)[:, :k]


def knn_no_normalization(xb, xq, k):
    return np.argsort(-(xq @ xb.T), axis=1)[:, :k]


def knn_off_by_one(xb, xq, k):
    return np.argsort(-(unit(xq) @ unit(xb).T), axis=1)[:, :k + 1]


def knn_off_by_one_short(xb, xq, k):
    return np.argsort(-(unit(xq) @ unit(xb).T), axis=1)[:, :k - 1]


def knn_scores(xb, xq, k):
    return -np.sort(-(unit(xq) @ unit(xb).T), axis=1)[:, :k]


def knn_unsorted(xb, xq, k):
    scores = unit(xq) @ unit(xb).T
    return np.argpartition(-scores, k, axis=1)[:, :k][:, ::-1]


# ------------------------------------------------------------------ recall_at_k
def recall(retrieved, truth, k):
    hits = [len({i for i in r[:k] if i >= 0} & set(t[:k])) for r, t in zip(np.asarray(retrieved).tolist(),
                                                                             np.asarray(truth).tolist())]
    return sum(hits) / (k * len(hits))


def recall_by_retrieved(retrieved, truth, k):
    out = []
    for r, t in zip(np.asarray(retrieved).tolist(), np.asarray(truth).tolist()):
        found = [i for i in r[:k] if i >= 0]
        out.append(len(set(found) & set(t[:k])) / max(len(found), 1))
    return float(np.mean(out))


def recall_duplicates(retrieved, truth, k):
    out = []
    for r, t in zip(np.asarray(retrieved).tolist(), np.asarray(truth).tolist()):
        out.append(sum(i in set(t[:k]) for i in r[:k]) / k)
    return float(np.mean(out))


def recall_positional(retrieved, truth, k):
    r, t = np.asarray(retrieved)[:, :k], np.asarray(truth)[:, :k]
    return float((r == t).mean())


def recall_no_truncation(retrieved, truth, k):
    out = []
    for r, t in zip(np.asarray(retrieved).tolist(), np.asarray(truth).tolist()):
        out.append(len({i for i in r if i >= 0} & set(t[:k])) / k)
    return float(np.mean(out))


# ------------------------------------------------------------------ ivf_search
def make_ivf(nprobe_fixed=None, farthest=False, exhaustive=False, descending=False):
    def ivf(xb, xq, centroids, k, nprobe):
        def l2(a, b):
            return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

        assign = l2(xb, centroids).argmin(1)
        dc = l2(xq, centroids)
        p = nprobe if nprobe_fixed is None else nprobe_fixed
        probe = np.argsort(-dc if farthest else dc, axis=1)[:, :p]
        out = np.full((len(xq), k), -1)
        for i in range(len(xq)):
            cand = np.arange(len(xb)) if exhaustive else np.flatnonzero(np.isin(assign, probe[i]))
            d = l2(xq[i:i + 1], xb[cand])[0]
            best = cand[np.argsort(-d if descending else d)[:k]]
            out[i, :len(best)] = best
        return out
    return ivf


# ------------------------------------------------------------------ the tests
CASES = {
    "knn_search": (knn, {
        "ascending": (knn_ascending, r"ascending"),
        "no normalization": (knn_no_normalization, r"[Nn]ormalise"),
        "off by one (k+1)": (knn_off_by_one, r"off by one"),
        "off by one (k-1)": (knn_off_by_one_short, r"off by one"),
        "scores instead of ids": (knn_scores, r"instead of the ids"),
        "unsorted": (knn_unsorted, r"wrong order|ascending|differ"),
    }),
    "recall_at_k": (recall, {
        "divided by retrieved count": (recall_by_retrieved, r"instead of by k"),
        "counts duplicates": (recall_duplicates, r"duplicates"),
        "order-sensitive": (recall_positional, r"position by position"),
        "no truncation to k": (recall_no_truncation, r"first k"),
    }),
    "ivf_search": (make_ivf(), {
        "probes only 1 list": (make_ivf(nprobe_fixed=1), r"only 1 list"),
        "probes the farthest lists": (make_ivf(farthest=True), r"farthest"),
        "exhaustive": (make_ivf(exhaustive=True), r"other list|exhaustive"),
        "farthest candidates first": (make_ivf(descending=True), r"expected \[1, 0\]|wrong order"),
    }),
}


@pytest.mark.parametrize("name", list(CASES))
def test_correct_passes(name, capsys):
    getattr(check, name)(CASES[name][0])
    assert capsys.readouterr().out.startswith(f"✓ {name} passed")


@pytest.mark.parametrize("name", list(CASES))
def test_stub_fails(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        getattr(check, name)(stub)


@pytest.mark.parametrize("name,bug", [(n, b) for n, (_, bugs) in CASES.items() for b in bugs])
def test_bug_fails_and_is_named(name, bug):
    fn, pattern = CASES[name][1][bug]
    with pytest.raises(CheckFailed) as info:
        getattr(check, name)(fn)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_knn_accepts_a_torch_tensor():
    import torch

    check.knn_search(lambda xb, xq, k: torch.as_tensor(knn(xb, xq, k)))


def test_recall_rejects_a_list():
    with pytest.raises(CheckFailed, match="one number"):
        check.recall_at_k(lambda r, t, k: [0.5])
