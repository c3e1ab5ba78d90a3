"""Checks for phase1_foundations/03_tokenization_and_embeddings.ipynb.

Each check calls the learner's function on small seeded inputs and hand-worked cases, compares it with a
short reference below (torch's ``F.logsigmoid``, ``F.normalize`` and ``topk`` where they apply), and when the
answer is wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import random
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, close, expect, expect_close, passed

# ------------------------------------------------------------------------------- references


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Reference: every non-overlapping occurrence of `pair`, left to right, becomes `new_id`."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _bpe_encode(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Reference: repeatedly merge the present pair that was learned first (lowest new id)."""
    ids = list(ids)
    while len(ids) >= 2:
        pairs = set(zip(ids, ids[1:]))
        pair = min(pairs, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = _merge(ids, pair, merges[pair])
    return ids


def _train_merges(rng: random.Random, n_merges: int, alphabet: str = "abcd ") -> tuple[dict, list[str]]:
    """A small BPE (most frequent pair first, ties to the smallest pair) on random words; for the checks."""
    words = ["".join(rng.choice(alphabet[:-1]) for _ in range(rng.randint(2, 7))) for _ in range(40)]
    text = " ".join(rng.choice(words) for _ in range(300))
    ids, merges = list(text.encode()), {}
    for new_id in range(256, 256 + n_merges):
        counts: dict = {}
        for p in zip(ids, ids[1:]):
            counts[p] = counts.get(p, 0) + 1
        if not counts:
            break
        pair = max(sorted(counts), key=counts.get)
        merges[pair] = new_id
        ids = _merge(ids, pair, new_id)
    return merges, words


def _as_int_list(name: str, got) -> list[int]:
    try:
        out = [int(x) for x in got]
    except (TypeError, ValueError):
        raise CheckFailed(f"{name}: return a list of ints, got {type(got).__name__}: {got!r:.80}") from None
    return out


def _diagnose(name: str, results: list[tuple[str, list, list, dict]]) -> None:
    """`results`: (where, got, expected, {bug: its answer}) per case. Pass when every case is right; else
    name the bug whose answers the learner's reproduce on every case, else show the first difference."""
    wrong = [(where, got, expected) for where, got, expected, _ in results if got != expected]
    if not wrong:
        return
    where, got, expected = wrong[0]
    for bug in results[0][3]:
        if all(r_got == answers[bug] for _, r_got, _, answers in results):
            raise CheckFailed(f"{name}: {bug} (e.g. {where}: expected {expected}, got {got})")
    raise CheckFailed(f"{name}: {where}: expected {expected}, got {got}")


# ------------------------------------------------------------------------------- exercise 1


def _merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return ids[:i] + [new_id] + ids[i + 2:]
    return list(ids)


def _merge_no_skip(ids, pair, new_id):  # writes the new id but then looks at the pair's second element again
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1
    return out


def _merge_from_the_right(ids, pair, new_id):
    return _merge(list(ids)[::-1], (pair[1], pair[0]), new_id)[::-1]


def _merge_overlapping(ids, pair, new_id):  # looks back to skip a merged pair's second half: merges overlaps twice
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
        elif i > 0 and (ids[i - 1], ids[i]) == tuple(pair):
            continue
        else:
            out.append(ids[i])
    return out


def _merge_drops_last(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


_MERGE_BUGS = {
    "only the first occurrence merged? Replace EVERY occurrence of the pair, scanning left to right.":
        _merge_first_only,
    "not advancing past the merged pair? After writing new_id, skip both elements (i += 2), not one.":
        _merge_no_skip,
    "overlapping pairs merged twice? (a, a) in [a, a, a] merges once, left to right: [X, a]. After a merge, "
    "jump past both elements (i += 2) instead of looking back.": _merge_overlapping,
    "scanning from the right? Merge left to right: (a, a) in [a, a, a] gives [X, a], not [a, X].":
        _merge_from_the_right,
    "last element dropped? When the loop stops one short of the end, copy the final id too.": _merge_drops_last,
}


def merge(fn: Callable) -> None:
    """Exercise 1: `fn(ids, pair, new_id)` replaces every occurrence of `pair` in `ids`, left to right."""
    name = "merge"
    cases = [
        ([1, 2, 3, 1, 2], (1, 2), 99, "hand-worked: [1, 2, 3, 1, 2], pair (1, 2) -> 99"),
        ([5, 5, 5], (5, 5), 256, "overlapping pair (5, 5) in [5, 5, 5]"),
        ([5, 5, 5, 5], (5, 5), 256, "(5, 5) in [5, 5, 5, 5]"),
        ([7, 1, 2, 1, 2, 1], (1, 2), 300, "[7, 1, 2, 1, 2, 1], pair (1, 2)"),
        ([1, 2, 3], (2, 3), 9, "the pair at the very end"),
        ([4, 6, 4], (4, 4), 9, "a pair that does not occur"),
        ([], (1, 2), 9, "an empty list"),
        ([1], (1, 2), 9, "a single id"),
        ([11, 2, 1, 12, 1, 2], (1, 2), 300, "[11, 2, 1, 12, 1, 2], pair (1, 2): ids with several digits"),
        ([256, 256, 25, 6, 256], (256, 256), 300, "[256, 256, 25, 6, 256], pair (256, 256)"),
    ]
    g = random.Random(0)
    for _ in range(30):
        ids = [g.randint(0, 2) for _ in range(g.randint(0, 14))]
        pair = (g.randint(0, 2), g.randint(0, 2))
        cases.append((ids, pair, 3, f"random case {ids}, pair {pair}"))
    results = []
    for ids, pair, new_id, where in cases:
        given = list(ids)
        got = _as_int_list(name, call(name, fn, given, pair, new_id))
        expect(given == ids, name, "the input list was changed: build and return a new list")
        answers = {bug: bad(list(ids), pair, new_id) for bug, bad in _MERGE_BUGS.items()}
        results.append((where, got, _merge(ids, pair, new_id), answers))
    _diagnose(name, results)
    passed(name, f"every occurrence, left to right, overlapping pairs handled, on {len(cases)} cases")


# ------------------------------------------------------------------------------- exercise 2


def _encode_in_order(ids, merges, reverse=False):
    ids = list(ids)
    for pair, new_id in sorted(merges.items(), key=lambda kv: kv[1], reverse=reverse):
        ids = _merge(ids, pair, new_id)
    return ids


def _encode_dict_order(ids, merges):
    ids = list(ids)
    for pair, new_id in merges.items():
        ids = _merge(ids, pair, new_id)
    return ids


def _encode_most_frequent(ids, merges):
    ids = list(ids)
    while len(ids) >= 2:
        counts: dict = {}
        for p in zip(ids, ids[1:]):
            if p in merges:
                counts[p] = counts.get(p, 0) + 1
        if not counts:
            break
        pair = max(sorted(counts, key=lambda p: merges[p]), key=counts.get)
        ids = _merge(ids, pair, merges[pair])
    return ids


def _encode_greedy_longest(ids, merges):
    vocab = {(i,): i for i in range(256)}
    spelled = {i: (i,) for i in range(256)}
    for (a, b), new_id in sorted(merges.items(), key=lambda kv: kv[1]):
        spelled[new_id] = spelled[a] + spelled[b]
        vocab[spelled[new_id]] = new_id
    ids, out, i = tuple(ids), [], 0
    while i < len(ids):
        for j in range(len(ids), i, -1):
            if ids[i:j] in vocab:
                out.append(vocab[ids[i:j]])
                i = j
                break
    return out


def _encode_single_pass(ids, merges):  # one left-to-right sweep, merging any known pair it meets
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) in merges:
            out.append(merges[ids[i], ids[i + 1]])
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


_ENCODE_BUGS = {
    "merges applied in the order the dict lists them? Apply them by rank: the lowest new_id (learned first) "
    "first, e.g. repeatedly merge the present pair with the smallest merges[pair].": _encode_dict_order,
    "merges applied in the wrong order? The one learned first (lowest new_id) goes first, later merges "
    "build on earlier ones.": lambda ids, m: _encode_in_order(ids, m, reverse=True),
    "merging the most frequent pair of the input? Encoding does not count: it replays the training merges "
    "by rank, the lowest new_id first.": _encode_most_frequent,
    "greedy longest match? BPE does not take the longest known token from the left: it replays the merges "
    "in the order they were learned (lowest new_id first).": _encode_greedy_longest,
    "a single left-to-right sweep? Merged ids can merge again: repeat until no learned pair is left, "
    "the lowest new_id first.": _encode_single_pass,
}


def bpe_encode(fn: Callable) -> None:
    """Exercise 2: `fn(ids, merges)` replays learned merges, the lowest new id first."""
    name = "bpe_encode"
    a, b, c = 97, 98, 99
    hand = [
        # (b, c) was learned before (a, b): "abc" -> [a, bc]; greedy longest match would say [ab, c]
        ([a, b, c], {(b, c): 256, (a, b): 257}, "hand-worked: 'abc' with merges (b,c)->256 then (a,b)->257"),
        # the second merge builds on the first: "aaa" -> [aa, a] -> [aaa]
        ([a, a, a], {(a, a): 256, (256, a): 257}, "'aaa' with merges (a,a)->256 then (256,a)->257"),
        # the same merges, listed in the dict in the other order: the ids, not the dict order, give the rank
        ([a, a, a], {(256, a): 257, (a, a): 256}, "'aaa' with the merges listed in reverse in the dict"),
        ([a, b, c, b, c], {(a, b): 256, (b, c): 257}, "'abcbc' with merges (a,b)->256 then (b,c)->257"),
        ([a, b, a, b, c], {(a, b): 256, (256, 256): 257, (b, c): 258},
         "'ababc' with merges (a,b)->256, (256,256)->257, (b,c)->258"),
        ([a, b, c], {(c, a): 256, (b, c): 257, (a, b): 258}, "'abc': the pair learned first is not present"),
        ([], {(a, b): 256}, "an empty chunk"),
        ([a], {(a, b): 256}, "a single byte"),
        ([a, b], {}, "no merges"),
    ]
    g = random.Random(1)
    merges, words = _train_merges(g, 24)
    shuffled = dict(sorted(merges.items(), key=lambda kv: g.random()))  # rank is the id, not the dict order
    cases = hand + [(list(w.encode()), merges, f"word {w!r} with 24 merges trained on random words")
                    for w in words[:15]]
    cases += [(list(w.encode()), shuffled, f"word {w!r}, the 24 merges listed shuffled in the dict")
              for w in words[15:25]]
    results = []
    for ids, m, where in cases:
        given = list(ids)
        got = _as_int_list(name, call(name, fn, given, dict(m)))
        expect(given == ids, name, "the input list was changed: work on a copy")
        answers = {bug: bad(list(ids), m) for bug, bad in _ENCODE_BUGS.items()}
        results.append((where, got, _bpe_encode(ids, m), answers))
    _diagnose(name, results)
    passed(name, f"replays merges by rank on {len(cases)} chunks, including cases where greedy matching differs")


# ------------------------------------------------------------------------------- exercise 3


def _sgns_variant(center, context, negatives, pos_sign=1.0, neg_sign=-1.0, reduce_neg="sum", reduce_batch="mean",
                  softmax=False, negate=True):
    import torch
    import torch.nn.functional as F

    pos = (center * context).sum(-1)  # (B,)
    neg = (negatives @ center.unsqueeze(-1)).squeeze(-1)  # (B, K)
    if softmax:  # one softmax over [positive, negatives]: a K+1-way classification
        per_pair = -F.log_softmax(torch.cat([pos[:, None], neg], dim=-1), dim=-1)[:, 0]
    else:
        neg_terms = F.logsigmoid(neg_sign * neg)
        neg_terms = neg_terms.sum(-1) if reduce_neg == "sum" else neg_terms.mean(-1)
        per_pair = -(F.logsigmoid(pos_sign * pos) + neg_terms)
    loss = per_pair.mean() if reduce_batch == "mean" else per_pair.sum()
    return loss if negate else -loss


def sgns_loss(fn: Callable) -> None:
    """Exercise 3: `fn(center, context, negatives)` is skip-gram's negative-sampling loss, mean over the batch."""
    import torch

    name = "sgns_loss"
    # hand-worked first: all vectors zero, every score 0, sigma(0) = 1/2, so the loss is (1 + K) ln 2
    cases = [(torch.zeros(3, 5), torch.zeros(3, 5), torch.zeros(3, 4, 5),
              "hand-worked: all vectors zero (every score 0, sigma(0) = 1/2), K=4: loss (1 + K) ln 2 = 3.4657")]
    g = torch.Generator().manual_seed(3)
    for B, K, d in ((6, 5, 8), (1, 1, 3), (4, 10, 16)):
        cases.append((torch.randn(B, d, generator=g, requires_grad=True),
                      torch.randn(B, d, generator=g, requires_grad=True),
                      torch.randn(B, K, d, generator=g, requires_grad=True), f"random B={B}, K={K}, d={d}"))
    for center, context, negatives, where in cases:
        args = (center, context, negatives)
        expected = _sgns_variant(*args)
        got = call(name, fn, *args)
        expect(isinstance(got, torch.Tensor), name, f"return a torch tensor (the loss), got {type(got).__name__}")
        expect(got.dim() == 0, name, f"return one number, a 0-dim tensor (the mean over the batch), got shape "
                                     f"{tuple(got.shape)}")
        if not close(got, expected):
            wrong = {
                "sign error on the negatives? Push c.n DOWN: log sigma(-c.n), the minus inside the sigmoid.":
                    _sgns_variant(*args, neg_sign=1.0),
                "sign error on the true context? Pull c.o UP: log sigma(+c.o).": _sgns_variant(*args, pos_sign=-1.0),
                "both signs flipped inside the sigmoids? log sigma(c.o) for the true context, log sigma(-c.n) for "
                "the negatives.": _sgns_variant(*args, pos_sign=-1.0, neg_sign=1.0),
                "softmax instead of sigmoid? Negative sampling scores each (word, context) pair on its own with "
                "log sigma(score), no softmax across them.": _sgns_variant(*args, softmax=True),
                "mean over the negatives instead of the sum? Each of the K negatives adds its own term.":
                    _sgns_variant(*args, reduce_neg="mean"),
                "sum over the batch instead of the mean? Return the mean over the B pairs.":
                    _sgns_variant(*args, reduce_batch="sum"),
                "missing the overall minus sign? Return the NEGATIVE log-likelihood, a loss to minimise.":
                    _sgns_variant(*args, negate=False),
            }
            for bug, answer in wrong.items():
                if close(got, answer) and not close(answer, expected):
                    raise CheckFailed(f"{name}: {bug} ({where}: expected {expected.item():.4f}, got {got.item():.4f})")
            expect_close(got, expected, name, f"{where}: loss = -mean_b[log sigma(c.o) + sum_k log sigma(-c.n_k)]")
        if center.requires_grad:
            expect(got.requires_grad, name, "the loss carries no gradient: keep it a tensor (no .item(), .detach() "
                                            "or numpy), so word2vec can train through it")
            for gr, ref, what in zip(torch.autograd.grad(got, args), torch.autograd.grad(expected, args),
                                     ("center", "context", "negatives")):
                expect_close(gr, ref, name, f"the gradient with respect to `{what}` differs from the reference")
    # big scores: log(sigmoid(x)) underflows to log(0) = -inf; F.logsigmoid stays finite
    center, context, negatives = torch.full((2, 4), 10.0), torch.full((2, 4), -10.0), torch.full((2, 3, 4), 10.0)
    got = call(name, fn, center, context, negatives)
    expect(bool(torch.isfinite(torch.as_tensor(got))), name,
           "the loss is inf or nan when scores are large (here c.o = -400): log(torch.sigmoid(x)) underflows to "
           "log(0); use F.logsigmoid(x)")
    expect_close(got, _sgns_variant(center, context, negatives), name,
                 "with large scores (c.o = -400, c.n = +400) the loss should be 1600: use F.logsigmoid", atol=1e-2)
    passed(name, "matches -[log sigma(c.o) + sum_k log sigma(-c.n_k)], mean over the batch, values and gradients")


# ------------------------------------------------------------------------------- exercise 4


def top_k_cosine(fn: Callable) -> None:
    """Exercise 4: `fn(queries, keys, k)` -> (Q, k) indices of the most cosine-similar keys, best first."""
    import torch
    import torch.nn.functional as F

    name = "top_k_cosine"
    # hand-worked: the long key [10, 0] has the largest dot product with q but a worse angle than [1, 1]
    keys = torch.tensor([[10.0, 0.0], [1.0, 1.0], [-1.0, 0.5], [0.0, 3.0]])
    queries = torch.tensor([[1.0, 1.2]])
    cases = [(queries, keys, 2, "hand-worked: q=[1, 1.2], keys [10,0], [1,1], [-1,0.5], [0,3]; k=2")]
    g = torch.Generator().manual_seed(4)
    for Q, N, d, k in ((5, 30, 8, 3), (1, 12, 4, 12), (7, 50, 16, 1)):
        keys = torch.randn(N, d, generator=g) * torch.rand(N, 1, generator=g).mul(5).add(0.2)  # varied lengths
        queries = torch.randn(Q, d, generator=g) * torch.rand(Q, 1, generator=g).mul(5).add(0.2)
        cases.append((queries, keys, k, f"{Q} queries, {N} keys of varied length, d={d}, k={k}"))
    results = []
    for queries, keys, k, where in cases:
        cos = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T  # (Q, N)
        expected = cos.topk(k, dim=-1).indices  # (Q, k)
        got = torch.as_tensor(call(name, fn, queries.clone(), keys.clone(), k))
        if got.is_floating_point():
            if close(got, cos.topk(k, dim=-1).values):
                raise CheckFailed(f"{name}: returning the scores instead of the indices? topk gives both: "
                                  "return .indices, the positions of the keys")
            raise CheckFailed(f"{name}: return integer indices (a LongTensor, e.g. .topk(k).indices), got dtype "
                              f"{got.dtype}")
        Q = queries.shape[0]
        if tuple(got.shape) == (k, Q) and k != Q:
            raise CheckFailed(f"{name}: transposed? Return shape (Q, k) = {(Q, k)}, one row per query, got {(k, Q)}")
        expect(tuple(got.shape) == (Q, k), name, f"{where}: expected shape (Q, k) = {(Q, k)}, got {tuple(got.shape)}")
        answers = {
            "dot product without normalising? Long keys win a raw dot product; cosine divides by the lengths "
            "(F.normalize(keys, dim=-1)).": (queries @ keys.T).topk(k, dim=-1).indices,
            "ascending order? The most similar key comes first: topk(k) (largest=True), or sort descending.":
                expected.flip(-1),
            "the k least similar keys? argsort is ascending: take topk(k), or sort with descending=True.":
                cos.argsort(dim=-1)[:, :k],
            "Euclidean distance instead of cosine? Normalise both sides first, then the dot product.":
                (-torch.cdist(queries, keys)).topk(k, dim=-1).indices,
            "normalised along the wrong axis? Each key (row) gets unit length: F.normalize(keys, dim=-1).":
                (F.normalize(queries, dim=0) @ F.normalize(keys, dim=0).T).topk(k, dim=-1).indices,
        }
        results.append((where, got.tolist(), expected.tolist(), {bug: a.tolist() for bug, a in answers.items()}))
    _diagnose(name, results)
    passed(name, "the k most cosine-similar keys, best first, matching F.normalize + topk")
