"""The checks of 03_tokenization_and_embeddings pass correct answers and catch the stub and plausible bugs."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import tokenization as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ merge
def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == pair:
            return ids[:i] + [new_id] + ids[i + 2:]
    return ids


def merge_no_skip(ids, pair, new_id):
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        else:
            out.append(ids[i])
    return out


def merge_overlapping_twice(ids, pair, new_id):
    out = []
    for i, x in enumerate(ids):
        if i + 1 < len(ids) and (x, ids[i + 1]) == pair:
            out.append(new_id)
        elif i > 0 and (ids[i - 1], x) == pair:
            continue
        else:
            out.append(x)
    return out


def merge_drops_last(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def merge_in_place(ids, pair, new_id):
    i = 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            ids[i:i + 2] = [new_id]
        i += 1
    return ids


def merge_string_replace(ids, pair, new_id):  # through a string: breaks when ids have several digits
    s = " ".join(map(str, ids)).replace(f"{pair[0]} {pair[1]}", str(new_id))
    return [int(x) for x in s.split()]


# ------------------------------------------------------------------ bpe_encode
def bpe_encode(ids, merges):
    ids = list(ids)
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, math.inf))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


def bpe_encode_sorted_loop(ids, merges):  # also correct: every merge once, by rank
    for pair, new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = merge(ids, pair, new_id)
    return ids


def bpe_encode_dict_order(ids, merges):
    for pair, new_id in merges.items():
        ids = merge(ids, pair, new_id)
    return ids


def bpe_encode_reversed(ids, merges):
    for pair, new_id in sorted(merges.items(), key=lambda kv: -kv[1]):
        ids = merge(ids, pair, new_id)
    return ids


def bpe_encode_greedy(ids, merges):
    spelled = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        spelled[new_id] = spelled[a] + spelled[b]
    vocab = {v: k for k, v in spelled.items()}
    data, out, i = bytes(ids), [], 0
    while i < len(data):
        j = max(j for j in range(i + 1, len(data) + 1) if data[i:j] in vocab)
        out.append(vocab[data[i:j]])
        i = j
    return out


def bpe_encode_most_frequent(ids, merges):
    ids = list(ids)
    while True:
        pairs = [p for p in zip(ids, ids[1:]) if p in merges]
        if not pairs:
            return ids
        pair = max(sorted(set(pairs), key=lambda p: merges[p]), key=pairs.count)
        ids = merge(ids, pair, merges[pair])


def bpe_encode_one_sweep(ids, merges):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) in merges:
            out.append(merges[ids[i], ids[i + 1]])
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def bpe_encode_with_first_only_merge(ids, merges):  # a buggy exercise 1 shows up here too
    for pair, new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = merge_first_only(ids, pair, new_id)
    return ids


# ------------------------------------------------------------------ sgns_loss
def sgns(center, context, negatives):
    pos = (center * context).sum(-1)  # (B,)
    neg = (negatives @ center.unsqueeze(-1)).squeeze(-1)  # (B, K)
    return -(F.logsigmoid(pos) + F.logsigmoid(-neg).sum(-1)).mean()


def make_sgns(pos_sign=1, neg_sign=-1, neg_reduce="sum", batch_reduce="mean", log_of_sigmoid=False, softmax=False,
              negate=True, detach=False):
    def loss_fn(center, context, negatives):
        pos = (center * context).sum(-1)
        neg = torch.einsum("bkd,bd->bk", negatives, center)
        if softmax:
            per = -torch.log_softmax(torch.cat([pos[:, None], neg], -1), -1)[:, 0]
        else:
            logsig = (lambda x: torch.log(torch.sigmoid(x))) if log_of_sigmoid else F.logsigmoid
            negs = logsig(neg_sign * neg)
            per = -(logsig(pos_sign * pos) + (negs.sum(-1) if neg_reduce == "sum" else negs.mean(-1)))
        out = per.mean() if batch_reduce == "mean" else per.sum()
        out = out if negate else -out
        return torch.tensor(out.item()) if detach else out

    return loss_fn


# ------------------------------------------------------------------ top_k_cosine
def top_k(queries, keys, k):
    scores = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T  # (Q, N)
    return scores.topk(k, dim=-1).indices


def top_k_dot(queries, keys, k):
    return (queries @ keys.T).topk(k, dim=-1).indices


def top_k_ascending(queries, keys, k):
    return top_k(queries, keys, k).flip(-1)


def top_k_argsort(queries, keys, k):
    return (F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T).argsort(-1)[:, :k]


def top_k_scores(queries, keys, k):
    return (F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T).topk(k, dim=-1).values


def top_k_euclid(queries, keys, k):
    return torch.cdist(queries, keys).topk(k, dim=-1, largest=False).indices


def top_k_wrong_axis(queries, keys, k):
    return (F.normalize(queries, dim=0) @ F.normalize(keys, dim=0).T).topk(k, dim=-1).indices


def top_k_transposed(queries, keys, k):
    return top_k(queries, keys, k).T


def top_k_cosine_similarity_numpy(queries, keys, k):  # also correct: another way to compute cosine
    cos = F.cosine_similarity(queries[:, None, :], keys[None, :, :], dim=-1)
    return torch.as_tensor(cos.numpy().argsort(-1)[:, ::-1][:, :k].copy())


CASES = {
    "merge": (merge, {
        "first only": (merge_first_only, "only the first occurrence"),
        "no skip": (merge_no_skip, "not advancing past the merged pair"),
        "overlap twice": (merge_overlapping_twice, "overlapping pairs merged twice"),
        "drops last": (merge_drops_last, "last element dropped"),
        "in place": (merge_in_place, "input list was changed"),
        "string replace": (merge_string_replace, "expected"),
    }),
    "bpe_encode": (bpe_encode, {
        "dict order": (bpe_encode_dict_order, "order the dict lists them"),
        "reversed": (bpe_encode_reversed, "wrong order"),
        "greedy": (bpe_encode_greedy, "greedy longest match"),
        "most frequent": (bpe_encode_most_frequent, "most frequent pair"),
        "one sweep": (bpe_encode_one_sweep, "single left-to-right sweep"),
        "first-only merge": (bpe_encode_with_first_only_merge, "expected"),
    }),
    "sgns_loss": (sgns, {
        "negative sign": (make_sgns(neg_sign=1), "sign error on the negatives"),
        "positive sign": (make_sgns(pos_sign=-1), "sign error on the true context"),
        "softmax": (make_sgns(softmax=True), "softmax instead of sigmoid"),
        "mean over negatives": (make_sgns(neg_reduce="mean"), "mean over the negatives"),
        "sum over batch": (make_sgns(batch_reduce="sum"), "sum over the batch"),
        "no minus": (make_sgns(negate=False), "minus sign"),
        "detached": (make_sgns(detach=True), "no gradient"),
        "log of sigmoid": (make_sgns(log_of_sigmoid=True), "F.logsigmoid"),
    }),
    "top_k_cosine": (top_k, {
        "dot product": (top_k_dot, "without normalising"),
        "ascending": (top_k_ascending, "ascending order"),
        "argsort ascending": (top_k_argsort, "least similar"),
        "scores": (top_k_scores, "scores instead of the indices"),
        "euclidean": (top_k_euclid, "Euclidean"),
        "wrong axis": (top_k_wrong_axis, "wrong axis"),
        "transposed": (top_k_transposed, "transposed"),
    }),
}


@pytest.mark.parametrize("name", CASES)
def test_correct_passes(name, capsys):
    getattr(check, name)(CASES[name][0])
    assert f"✓ {name} passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_stub_fails(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        getattr(check, name)(stub)


@pytest.mark.parametrize("name,bug", [(n, b) for n, (_, bugs) in CASES.items() for b in bugs])
def test_bug_fails_with_named_cause(name, bug):
    fn, message = CASES[name][1][bug]
    with pytest.raises(CheckFailed, match=re.escape(message)):
        getattr(check, name)(fn)


@pytest.mark.parametrize("fn,name", [(bpe_encode_sorted_loop, "bpe_encode"),
                                     (top_k_cosine_similarity_numpy, "top_k_cosine")])
def test_other_correct_ways_pass(fn, name):
    getattr(check, name)(fn)


def test_a_crash_is_reported_as_check_failed():
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        check.merge(lambda ids, pair, new_id: 1 / 0)


def test_encode_reference_agrees_with_training_replay():
    # encoding the training text with the learned merges reproduces the training ids exactly
    import random

    merges, words = check._train_merges(random.Random(5), 20)
    for w in words:
        ids = list(w.encode())
        assert check._bpe_encode(ids, merges) == bpe_encode_sorted_loop(ids, merges)
