"""Checks for phase5_frontier/20_pretraining_at_scale.ipynb.

Each check runs the learner's function on small seeded inputs and compares it with a trusted reference
(datasketch's MinHash for the signature, torch's chunking for the tensor-parallel shards, transformers' Mixtral
`load_balancing_loss_func` for the balancing loss) and one hand-worked case; when the answer is wrong it compares
it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, close, expect, generator, passed

MERSENNE_PRIME = (1 << 61) - 1
MAX_HASH = (1 << 32) - 1


# ------------------------------------------------------------------------------- exercise 1
def reference_minhash_signature(hashes, a, b):
    """datasketch's "legacy" MinHash: min over the shingles of ((a * h + b) mod (2^61 - 1)) & (2^32 - 1), in uint64."""
    import numpy as np

    permuted = (hashes[:, None] * a + b) % np.uint64(MERSENNE_PRIME)  # (n_shingles, num_perm), wraps at 2^64
    return np.bitwise_and(permuted, np.uint64(MAX_HASH)).min(axis=0)


def _datasketch_signature(hashes, a, b):
    """The signature datasketch itself computes for these (already hashed) shingles and permutations."""
    from datasketch import MinHash

    m = MinHash(num_perm=len(a), scheme="legacy", permutations=(a, b), hashfunc=lambda h: h)
    m.update_batch(list(hashes))
    return m.hashvalues


def _as_uint_array(name, got, n):
    import numpy as np

    try:
        arr = np.asarray(got)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        raise CheckFailed(f"{name}: return a numpy array of shape ({n},), got {type(got).__name__}") from None
    expect(arr.shape == (n,), name, f"the signature should have shape ({n},) (one minimum per permutation), got "
           f"{arr.shape}" + ("; take the minimum over the shingles (axis 0), not over the permutations"
                             if arr.ndim == 1 else ""))
    expect(np.issubdtype(arr.dtype, np.integer) or arr.dtype == object, name,
           f"the signature has dtype {arr.dtype}: keep np.uint64 (a float cannot hold 64-bit products exactly)")
    return arr


def minhash_signature(fn: Callable) -> None:
    """Exercise 1: `fn(hashes, a, b)` -> (num_perm,) uint64 MinHash signature, equal to datasketch's."""
    import numpy as np
    from datasketch import MinHash

    name = "minhash_signature"
    num_perm = 16
    a, b = MinHash(num_perm=num_perm, seed=3, scheme="legacy").permutations
    hashes = np.random.default_rng(20).integers(0, 1 << 32, size=25, dtype=np.uint64)
    got = _as_uint_array(name, call(name, fn, hashes.copy(), a.copy(), b.copy()), num_perm)
    want = _datasketch_signature(hashes, a, b)
    if not np.array_equal(got.astype(np.uint64), want):
        exact = np.array([min(((int(ak) * int(h) + int(bk)) % MERSENNE_PRIME) & MAX_HASH for h in hashes)
                          for ak, bk in zip(a, b)], dtype=np.uint64)
        permuted = hashes[:, None] * a + b
        wrong = {
            "that is the maximum: a MinHash signature keeps the *minimum* permuted hash of each permutation":
                np.bitwise_and(permuted % np.uint64(MERSENNE_PRIME), np.uint64(MAX_HASH)).max(axis=0),
            "the modulo by the Mersenne prime (2^61 - 1) is missing: ((a * h + b) % MERSENNE_PRIME) & MAX_HASH":
                np.bitwise_and(permuted, np.uint64(MAX_HASH)).min(axis=0),
            "the mask to 32 bits is missing: finish with np.bitwise_and(..., MAX_HASH) (values must fit 32 bits)":
                (permuted % np.uint64(MERSENNE_PRIME)).min(axis=0),
            "you computed with exact Python integers; datasketch (and this exercise) compute in np.uint64 arrays, "
            "where a * h wraps at 2^64 before the modulo: keep hashes, a and b as uint64 arrays": exact,
        }
        for bug, answer in wrong.items():
            if np.array_equal(got.astype(np.uint64), answer):
                raise CheckFailed(f"{name}: {bug}")
        raise CheckFailed(f"{name}: the signature differs from datasketch's MinHash(scheme='legacy') on the same "
                          "shingles: for each permutation k, min over h of ((a[k] * h + b[k]) % MERSENNE_PRIME) & "
                          "MAX_HASH")
    hand = _as_uint_array(name, call(name, fn, np.array([3, 5], dtype=np.uint64), np.array([2, 1], dtype=np.uint64),
                                     np.array([1, 10], dtype=np.uint64)), 2)
    expect(hand.astype(np.uint64).tolist() == [7, 13], name,
           f"hand-worked case: hashes [3, 5], a [2, 1], b [1, 10] give min(7, 11) = 7 and min(13, 15) = 13, "
           f"got {hand.tolist()}")
    passed(name, f"identical to datasketch's signature ({num_perm} permutations, 25 shingles) and the hand-worked [7, 13]")


# ------------------------------------------------------------------------------- exercise 2
def reference_shard_linear(weight, bias, rank, world_size, style):
    """Column-parallel: rows of weight (output features) and the same slice of bias; row-parallel: columns of
    weight (input features) and the whole bias, added once after the all-reduce."""
    dim = {"column": 0, "row": 1}[style]
    if weight.shape[dim] % world_size:
        raise ValueError(f"dimension {dim} ({weight.shape[dim]}) is not divisible by world_size {world_size}")
    return weight.chunk(world_size, dim=dim)[rank], (bias.chunk(world_size)[rank] if style == "column" else bias)


def _pair(name, got, what):
    import torch

    expect(isinstance(got, (tuple, list)) and len(got) == 2, name,
           f"return a pair (weight_shard, bias_shard) for {what}, got {type(got).__name__}")
    w, b = got
    expect(isinstance(w, torch.Tensor), name, f"weight_shard should be a torch.Tensor ({what}), got {type(w).__name__}")
    expect(isinstance(b, torch.Tensor), name,
           f"bias_shard should be a torch.Tensor ({what}), got {type(b).__name__}"
           + ("; a row-parallel layer keeps the full bias on every rank and adds it once, after the all-reduce"
              if "row" in what else ""))
    return w.detach(), b.detach()


def shard_linear(fn: Callable) -> None:
    """Exercise 2: `fn(weight, bias, rank, world_size, style)` -> this rank's (weight_shard, bias_shard)."""
    import torch

    name = "shard_linear"
    g = generator(20)
    out_features, in_features = 8, 6
    weight, bias = torch.randn(out_features, in_features, generator=g), torch.randn(out_features, generator=g)
    x = torch.randn(3, in_features, generator=g)
    full = x @ weight.T + bias
    for style, world_size in (("column", 2), ("column", 4), ("row", 2), ("row", 3)):
        shards = []
        for rank in range(world_size):
            what = f"style={style!r}, rank {rank} of {world_size}"
            w, b = _pair(name, call(name, fn, weight.clone(), bias.clone(), rank, world_size, style), what)
            want_w, want_b = reference_shard_linear(weight, bias, rank, world_size, style)
            if tuple(w.shape) != tuple(want_w.shape):
                other = "row" if style == "column" else "column"
                swapped = reference_shard_linear(weight, bias, rank, world_size, other)[0] if \
                    weight.shape[1 if style == "column" else 0] % world_size == 0 else None
                if swapped is not None and tuple(w.shape) == tuple(swapped.shape):
                    raise CheckFailed(
                        f"{name}: {what}: you split the wrong dimension. nn.Linear stores weight as (out_features, "
                        "in_features): column-parallel splits the output features (dim 0, rows), row-parallel the "
                        f"input features (dim 1, columns); expected {tuple(want_w.shape)}, got {tuple(w.shape)}")
                raise CheckFailed(f"{name}: {what}: weight_shard should have shape {tuple(want_w.shape)}, "
                                  f"got {tuple(w.shape)}")
            if not close(w, want_w, atol=0):
                dim = 0 if style == "column" else 1
                strided = weight[rank::world_size] if dim == 0 else weight[:, rank::world_size]
                if close(w, strided, atol=0):
                    raise CheckFailed(f"{name}: {what}: that is every {world_size}th row/column (a strided split); "
                                      "give each rank one contiguous block, as chunk() does, so that concatenating "
                                      "the ranks' outputs in rank order rebuilds the layer")
                raise CheckFailed(f"{name}: {what}: weight_shard holds the wrong values: rank r takes the r-th "
                                  "contiguous block")
            if tuple(b.shape) != tuple(want_b.shape) or not close(b, want_b, atol=0):
                if style == "column":
                    hint = ("the bias of a column-parallel layer is split like the rows of weight: rank r's outputs "
                            "need rank r's slice of bias" if b.shape == bias.shape else
                            f"bias_shard should be rank {rank}'s block of bias, shape {tuple(want_b.shape)}")
                else:
                    hint = ("a row-parallel layer keeps the full bias on every rank (its outputs are partial sums over "
                            "the input features; the bias is added once, after the all-reduce), "
                            f"shape {tuple(bias.shape)}")
                raise CheckFailed(f"{name}: {what}: {hint}")
            shards.append((w, b))
        if style == "column":
            rebuilt = torch.cat([x @ w.T + b for w, b in shards], dim=-1)
        else:
            rebuilt = sum(xs @ w.T for xs, (w, _) in zip(x.chunk(world_size, dim=-1), shards)) + shards[0][1]
        expect(close(rebuilt, full, atol=1e-5), name, f"style={style!r}: the shards do not rebuild the layer's output")
    try:
        fn(torch.randn(6, 4), torch.randn(6), 0, 4, "column")
    except ValueError:
        pass
    except NotImplementedError:
        raise CheckFailed(f"{name}: not implemented yet") from None
    except Exception as e:  # noqa: BLE001 - any other error is the wrong one
        raise CheckFailed(f"{name}: 6 output features over 4 ranks should raise ValueError, got "
                          f"{type(e).__name__}: {e}") from None
    else:
        raise CheckFailed(f"{name}: 6 output features cannot be split evenly over 4 ranks: raise ValueError (chunk "
                          "would silently give uneven shards, and the ranks' shapes would disagree)")
    passed(name, "column shards concatenate and row shards sum (plus the bias once) to the full layer, "
                 "for 2, 3 and 4 ranks")


# ------------------------------------------------------------------------------- exercise 3
def reference_load_balancing_loss(router_logits, top_k):
    """transformers' Mixtral load_balancing_loss_func: n_experts * sum_e f_e * P_e, f from top-k counts."""
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    return load_balancing_loss_func((router_logits,), router_logits.shape[-1], top_k)


def load_balancing_loss(fn: Callable) -> None:
    """Exercise 3: `fn(router_logits, top_k)` -> scalar Switch/GShard balancing loss, with its gradient."""
    import torch
    import torch.nn.functional as F

    name = "load_balancing_loss"
    g = generator(21)
    T, E = 64, 8
    base = torch.randn(T, E, generator=g) * 2 + torch.linspace(0, 2, E)  # an unbalanced router
    for top_k in (2, 1):
        logits = base.clone().requires_grad_()
        got = call(name, fn, logits, top_k)
        expect(isinstance(got, torch.Tensor), name, f"return a torch.Tensor (a scalar), got {type(got).__name__}")
        expect(got.numel() == 1, name, f"return a scalar (sum over the experts), got shape {tuple(got.shape)}")
        want_logits = base.clone().requires_grad_()
        want = reference_load_balancing_loss(want_logits, top_k)
        if not close(got.detach().reshape(()), want.detach(), atol=1e-5):
            with torch.no_grad():
                probs = base.softmax(-1)
                chosen = probs.topk(top_k, dim=-1)
                f = F.one_hot(chosen.indices, E).sum(1).float().mean(0)
                P = probs.mean(0)
                f_top1 = F.one_hot(probs.argmax(-1), E).float().mean(0)
                renorm = torch.zeros(T, E).scatter(1, chosen.indices, chosen.values / chosen.values.sum(-1, keepdim=True))
            wrong = {
                "P must be the mean softmax *probability* of each expert, not the mean logit":
                    E * (f * base.mean(0)).sum(),
                "f must count the top-k assignments (a fraction of tokens, no gradient); with f = P you computed "
                "E * sum P^2": E * (P * P).sum(),
                "the factor n_experts is missing (or you averaged over the experts instead of summing): the loss "
                "is n_experts * sum_e f_e P_e, so that it does not shrink as experts are added": (f * P).sum(),
                "f counts only each token's top-1 expert: count all of its top_k experts": E * (f_top1 * P).sum(),
                "you divided f by top_k (a fraction of the T * top_k assignments); this exercise follows Mixtral: f_e "
                "is the fraction of the T tokens routed to e, so sum_e f_e = top_k and the balanced loss is top_k":
                    E * (f / top_k * P).sum(),
                "P must average the full softmax over all experts, not the renormalised top-k weights":
                    E * (f * renorm.mean(0)).sum(),
            }
            for bug, answer in wrong.items():
                if close(got.detach().reshape(()), answer, atol=1e-5):
                    raise CheckFailed(f"{name} (top_k={top_k}): {bug}")
            raise CheckFailed(f"{name} (top_k={top_k}): expected {want.item():.4f}, got {got.item():.4f}: "
                              "n_experts * sum_e f_e * P_e, f_e = fraction of tokens with e in their top-k, "
                              "P_e = mean softmax probability of e")
        expect(got.requires_grad, name, "the loss has no gradient: P_e = router_logits.softmax(-1).mean(0) must stay "
                                        "in the graph (no .detach(), no numpy)")
        got.reshape(()).backward()
        want.backward()
        if logits.grad is None or not close(logits.grad, want_logits.grad, atol=1e-6):
            raise CheckFailed(f"{name} (top_k={top_k}): the value is right but the gradient is not: the gradient flows "
                              "through P only; build f from the top-k indices (one_hot of indices, no gradient), not "
                              "from the probabilities")
    with torch.no_grad():
        collapsed = call(name, fn, torch.zeros(T, E).index_fill_(1, torch.tensor([0]), 30.0), 1)
        balanced = call(name, fn, 30.0 * F.one_hot(torch.arange(T) % E, E).float(), 1)
    expect(abs(float(collapsed) - E) < 1e-3 and abs(float(balanced) - 1) < 1e-3, name,
           f"hand-worked cases (top-1): every token sent to expert 0 gives {E}, tokens spread evenly give 1; got "
           f"{float(collapsed):.3f} and {float(balanced):.3f}")
    passed(name, f"equals transformers' Mixtral load_balancing_loss_func (value and gradient, top-1 and top-2); "
                 f"collapsed router {float(collapsed):.1f}, balanced {float(balanced):.1f}")
