"""Checks for phase5_frontier/23_long_context_and_memory.ipynb.

Each check runs the learner's function on small seeded inputs and compares it with a trusted reference:
transformers' own rotary embedding (``LlamaRotaryEmbedding`` + ``apply_rotary_pos_emb``), its RoPE scaling
functions (``ROPE_INIT_FUNCTIONS``), the key/value cache a real forward pass fills (``DynamicCache``) and FAISS's
exact inner-product search, plus one hand-worked case; when the answer is wrong it compares it with the usual
wrong answers to name the likely bug.
"""
from __future__ import annotations

from typing import Callable

from genai_roadmap.checks._common import (
    CheckFailed,
    call,
    close,
    expect,
    expect_shape,
    expect_tensor,
    generator,
    name_the_bug,
    passed,
)
from genai_roadmap.core import kv_cache


# ------------------------------------------------------------------------------- exercise 1
def _llama_config(d_head: int, n_heads: int = 2, base: float = 10000.0, **rope):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=d_head * n_heads, num_attention_heads=n_heads, num_key_value_heads=n_heads,
                       head_dim=d_head, intermediate_size=4 * d_head, num_hidden_layers=1, vocab_size=16,
                       rope_parameters={"rope_type": "default", "rope_theta": base, **rope})


def reference_rope(x, positions, base=10000.0):
    """transformers' Llama rotary embedding applied to x (..., T, d_head) at `positions` (T,)."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    d_head = x.shape[-1]
    rotary = LlamaRotaryEmbedding(_llama_config(d_head, base=base))
    cos, sin = rotary(x, positions[None])  # (1, T, d_head) each
    rotated, _ = apply_rotary_pos_emb(x, x, cos[0], sin[0], unsqueeze_dim=0)  # (1, T, d_head) broadcasts over x
    return rotated


def _rope_variant(x, positions, base=10000.0, pairs="half", sign=1.0, exponent=2.0, swap=False, offset=0):
    """The rotation with one thing changed: how the plausible bugs rotate."""
    import torch

    d_head = x.shape[-1]
    inv_freq = base ** (-exponent * torch.arange(d_head // 2, dtype=torch.float) / d_head)
    angles = sign * (positions[:, None].float() + offset) * inv_freq[None]  # (T, d_head / 2)
    cos, sin = (angles.sin(), angles.cos()) if swap else (angles.cos(), angles.sin())
    if pairs == "half":
        x1, x2 = x[..., : d_head // 2], x[..., d_head // 2:]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]  # interleaved pairs (x0, x1), (x2, x3), ... as in GPT-J and Meta's code
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)


def rope(fn: Callable) -> None:
    """Exercise 1: `fn(x, positions, base=10000.0)` -> x rotated, same shape as x (..., T, d_head)."""
    import torch

    name = "rope"
    g = generator(23)
    B, n_heads, T, d_head, base = 2, 3, 6, 16, 10000.0
    x = torch.randn(B, n_heads, T, d_head, generator=g)
    positions = torch.tensor([0, 1, 2, 7, 40, 300])  # not 0..T-1: the positions argument must be used
    got = expect_tensor(name, call(name, fn, x.clone(), positions.clone(), base), "the rotated tensor")
    want = reference_rope(x, positions, base)
    expect_shape(got, want.shape, name, "the output (the same shape as x)")
    if not close(got, want, atol=1e-4):
        wrong = {
            "pairs are interleaved (x0, x1), (x2, x3), ...: transformers' Llama pairs dimension i with i + d_head/2 "
            "(rotate_half), the layout every Llama checkpoint on the hub was converted to":
                _rope_variant(x, positions, base, pairs="interleaved"),
            "rotated the wrong way: the angle is +m * theta_i (x1 cos - x2 sin, x1 sin + x2 cos)":
                _rope_variant(x, positions, base, sign=-1.0),
            "wrong frequencies: theta_i = base ** (-2i / d_head) for i = 0 .. d_head/2 - 1 "
            "(torch.arange(0, d_head, 2) / d_head)": _rope_variant(x, positions, base, exponent=1.0),
            "cos and sin swapped: at position 0 the rotation must be the identity (cos 0 = 1, sin 0 = 0)":
                _rope_variant(x, positions, base, swap=True),
            "off by one: position m rotates by m * theta_i, so position 0 is left unchanged":
                _rope_variant(x, positions, base, offset=1),
            "the positions are ignored (positions 0, 1, 2, ... assumed): rotate row t by positions[t]":
                _rope_variant(x, torch.arange(T), base),
            "nothing is rotated: the output equals the input": x,
        }
        name_the_bug(name, got, wrong, 1e-4)
        raise CheckFailed(f"{name}: the output differs from transformers' rotary embedding; rotate the pair "
                          "(x[..., i], x[..., i + d_head/2]) by the angle positions[t] * base ** (-2i / d_head)")
    # hand-worked case: d_head 2 has one frequency, theta_0 = 1, so position m is a rotation by m radians
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    hand = expect_tensor(name, call(name, fn, v, torch.tensor([0, 1, 3]), base), "the rotated tensor")
    m = torch.tensor([0.0, 1.0, 3.0])
    want_hand = torch.stack([torch.cos(m) * v[:, 0] - torch.sin(m) * v[:, 1],
                             torch.sin(m) * v[:, 0] + torch.cos(m) * v[:, 1]], -1)
    expect(close(hand, want_hand, atol=1e-5), name,
           "with d_head 2 the single frequency is 1 rad per position: (1, 0) at position 1 should be (cos 1, sin 1)")
    # the property that makes it a *relative* encoding
    q, k = torch.randn(2, 1, d_head, generator=g)
    s1 = (call(name, fn, q, torch.tensor([9]), base) * call(name, fn, k, torch.tensor([4]), base)).sum()
    s2 = (call(name, fn, q, torch.tensor([109]), base) * call(name, fn, k, torch.tensor([104]), base)).sum()
    expect(abs(float(s1 - s2)) < 1e-3, name, "q_m . k_n should depend only on m - n")
    passed(name, f"matches transformers' LlamaRotaryEmbedding on {tuple(x.shape)}; q.k at (9, 4) = (109, 104) "
                 f"= {float(s1):.3f}")


# ------------------------------------------------------------------------------- exercise 2
def reference_rope_inv_freq(d_head, base=10000.0, factor=1.0, method="none"):
    """Inverse frequencies from transformers' ROPE_INIT_FUNCTIONS: 'linear' is position interpolation, and
    'dynamic' at seq_len = factor * max_position_embeddings (with its own factor 1) is NTK-aware scaling by `factor`."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    if method == "none":
        return LlamaRotaryEmbedding.compute_default_rope_parameters(_llama_config(d_head, base=base))[0]
    if method == "linear":
        return ROPE_INIT_FUNCTIONS["linear"](_llama_config(d_head, base=base, rope_type="linear", factor=factor))[0]
    if method == "ntk":
        config = _llama_config(d_head, base=base, rope_type="dynamic", factor=1.0)
        config.max_position_embeddings = 128
        return ROPE_INIT_FUNCTIONS["dynamic"](config, seq_len=round(factor * 128))[0]
    raise ValueError(f"method must be 'none', 'linear' or 'ntk', got {method!r}")


def rope_inv_freq(fn: Callable) -> None:
    """Exercise 2: `fn(d_head, base, factor, method)` -> inverse frequencies (d_head // 2,) for method 'none',
    'linear' (position interpolation) or 'ntk' (NTK-aware base change)."""
    import torch

    name = "rope_inv_freq"
    d_head, base, factor = 32, 10000.0, 4.0
    i = torch.arange(0, d_head, 2, dtype=torch.float)
    plain = base ** (-i / d_head)
    results = {}
    for method in ("none", "linear", "ntk"):
        got = expect_tensor(name, call(name, fn, d_head, base, factor, method), f"the inverse frequencies ({method})")
        want = reference_rope_inv_freq(d_head, base, factor, method)
        expect_shape(got, want.shape, name, f"the inverse frequencies for {method!r} (one per pair of dimensions)")
        if not close(got, want, atol=1e-9, rtol=1e-4):
            wrong = {
                "none": {
                    "wrong exponent: theta_i = base ** (-2i / d_head), i.e. base ** (-torch.arange(0, d_head, 2) / "
                    "d_head)": base ** (-torch.arange(d_head // 2, dtype=torch.float) / d_head),
                    "that is the frequencies' inverse (wavelength / 2 pi): return base ** (-2i / d_head)": 1 / plain,
                },
                "linear": {
                    "multiplied by the factor: position interpolation squeezes positions m -> m / factor, so every "
                    "frequency is *divided* by it": plain * factor,
                    "that is the unscaled frequency: linear scaling divides every frequency by the factor": plain,
                    "that is NTK-aware scaling (a new base): 'linear' divides every frequency by the factor":
                        (base * factor ** (d_head / (d_head - 2))) ** (-i / d_head),
                },
                "ntk": {
                    "the base times the factor lacks the exponent: NTK-aware scaling uses base * factor ** (d_head / "
                    "(d_head - 2)), so that the lowest frequency is divided by exactly the factor":
                        (base * factor) ** (-i / d_head),
                    "exponent upside down: base * factor ** (d_head / (d_head - 2)), not ** ((d_head - 2) / d_head)":
                        (base * factor ** ((d_head - 2) / d_head)) ** (-i / d_head),
                    "the new base and also divided by the factor: NTK-aware scaling changes the base only (the highest "
                    "frequency stays 1)": (base * factor ** (d_head / (d_head - 2))) ** (-i / d_head) / factor,
                    "that is position interpolation (every frequency / factor): NTK-aware scaling raises the base":
                        plain / factor,
                    "that is the unscaled frequency: NTK-aware scaling raises the base to base * factor ** "
                    "(d_head / (d_head - 2))": plain,
                },
            }[method]
            name_the_bug(name, got, wrong, 1e-9)
            raise CheckFailed(f"{name}: method {method!r} differs from transformers' ROPE_INIT_FUNCTIONS "
                              f"(expected {[f'{v:.3g}' for v in want[:4].tolist()]}..., got "
                              f"{[f'{v:.3g}' for v in got[:4].tolist()]}...)")
        results[method] = got
    # hand-worked case: NTK keeps the fastest frequency and divides the slowest by exactly the factor
    ntk, lin = results["ntk"], results["linear"]
    expect(abs(float(ntk[0]) - 1.0) < 1e-6, name, "NTK-aware scaling must leave the highest frequency (i = 0) at 1")
    expect(abs(float(ntk[-1] / lin[-1]) - 1.0) < 1e-4, name,
           "NTK-aware scaling must divide the lowest frequency by the factor, like interpolation")
    other = expect_tensor(name, call(name, fn, 64, 500000.0, 8.0, "ntk"), "the inverse frequencies")
    expect(close(other, reference_rope_inv_freq(64, 500000.0, 8.0, "ntk"), atol=1e-12, rtol=1e-4), name,
           "use the arguments: with d_head 64, base 500000 and factor 8 the NTK frequencies differ from the reference")
    passed(name, f"none/linear/ntk match transformers; NTK keeps theta_0 = 1 and divides the slowest by {factor:g}, "
                 f"like PI")


# ------------------------------------------------------------------------------- exercise 3
def reference_kv_cache_bytes(config, seq_len, batch_size=1, bytes_per_value=2):
    """2 (K and V) x layers x KV heads x d_head x cached tokens x batch x bytes per value; a sliding window caps the
    cached tokens at the window."""
    n_kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    d_head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    window = getattr(config, "sliding_window", None)
    tokens = min(seq_len, window) if window else seq_len
    return 2 * config.num_hidden_layers * n_kv_heads * d_head * tokens * batch_size * bytes_per_value


def measured_kv_cache_bytes(config, seq_len, batch_size=1):
    """Bytes of the key/value cache that a forward pass of a randomly initialised model with `config` fills (float32)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    ids = torch.randint(0, config.vocab_size, (batch_size, seq_len), generator=generator(3))
    with torch.no_grad():
        cache = kv_cache(model(ids, use_cache=True))
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


def kv_cache_bytes(fn: Callable) -> None:
    """Exercise 3: `fn(config, seq_len, batch_size=1, bytes_per_value=2)` -> bytes of the KV cache (an int)."""
    from transformers import LlamaConfig, MistralConfig

    name = "kv_cache_bytes"
    small = dict(vocab_size=64, intermediate_size=64, max_position_embeddings=256)
    gqa = LlamaConfig(hidden_size=64, num_attention_heads=8, num_key_value_heads=2, head_dim=40, num_hidden_layers=3,
                      **small)  # head_dim 40 != hidden_size / n_heads = 8 (Qwen3 and Gemma set it too)
    mha = LlamaConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=2, **small)  # n_kv_heads defaults
    llama3 = LlamaConfig(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32,
                         vocab_size=128256, intermediate_size=14336)
    mistral = MistralConfig(hidden_size=4096, num_attention_heads=32, num_key_value_heads=8, num_hidden_layers=32,
                            sliding_window=4096, vocab_size=32000, intermediate_size=14336)
    cases = [  # (what, config, seq_len, batch_size, bytes_per_value)
        ("a GQA model, 8 query heads sharing 2 KV heads of d_head 40, an 8-bit cache", gqa, 10, 3, 1),
        ("a multi-head model (no num_key_value_heads given)", mha, 7, 1, 4),
        ("Llama-3-8B at 1M tokens in bf16", llama3, 2 ** 20, 1, 2),
        ("Mistral-7B (sliding window 4096) at 1M tokens", mistral, 2 ** 20, 1, 2),
        ("Mistral-7B at 1,000 tokens, inside its window", mistral, 1000, 3, 2),
    ]
    for what, config, seq_len, batch_size, nbytes in cases:
        got = call(name, fn, config, seq_len, batch_size, nbytes)
        expect(isinstance(got, int) or (hasattr(got, "item") and float(got) == int(got)), name,
               f"return a whole number of bytes (an int), got {type(got).__name__} {got!r}")
        got = int(got)
        want = reference_kv_cache_bytes(config, seq_len, batch_size, nbytes)
        if got == want:
            continue
        n_kv = config.num_key_value_heads or config.num_attention_heads
        d_head = config.head_dim
        window = getattr(config, "sliding_window", None)
        tokens = min(seq_len, window) if window else seq_len
        per = config.num_hidden_layers * batch_size * nbytes
        wrong = {
            "only one of K and V counted: the cache holds keys *and* values (the factor 2)": want // 2,
            "counted every query head: with grouped-query attention only num_key_value_heads heads are cached "
            "(Llama-3-8B: 8, not 32)": 2 * per * config.num_attention_heads * d_head * tokens,
            "derived d_head as hidden_size // num_attention_heads: read config.head_dim, which some models set "
            "differently": 2 * per * n_kv * (config.hidden_size // config.num_attention_heads) * tokens,
            "used hidden_size for the width of K (and V): a KV head is d_head wide and there are only "
            "num_key_value_heads of them": 2 * per * config.hidden_size * tokens,
            "ignored the sliding window: a model with config.sliding_window keeps only the last window tokens "
            "(cached tokens = min(seq_len, window))": 2 * per * n_kv * d_head * seq_len,
            "a sequence shorter than the window caches seq_len tokens, not the whole window: min(seq_len, window)":
                2 * per * n_kv * d_head * window if window else None,
            "ignored batch_size: every sequence in the batch has its own cache":
                want // batch_size if batch_size > 1 else None,
            "ignored bytes_per_value (2 for bf16/fp16, 4 for float32, 1 for an 8-bit cache)":
                want // nbytes * 2 if nbytes != 2 else None,
            "that is a number of values, not bytes: multiply by bytes_per_value": want // nbytes if nbytes > 1 else None,
        }
        for bug, answer in wrong.items():
            if answer is not None and got == answer:
                raise CheckFailed(f"{name}: {what}: {bug}")
        raise CheckFailed(f"{name}: {what}: expected {want:,} bytes, got {got:,}: 2 x layers x KV heads x d_head x "
                          "cached tokens x batch x bytes per value")
    measured = measured_kv_cache_bytes(gqa, 10, 2)
    got = int(call(name, fn, gqa, 10, 2, 4))
    expect(got == measured, name, f"a real forward pass of the GQA model filled {measured:,} bytes of cache, "
                                  f"your function says {got:,}")
    gib = reference_kv_cache_bytes(llama3, 2 ** 20) / 2 ** 30
    passed(name, f"matches the cache a forward pass fills ({measured:,} bytes); Llama-3-8B at 1M tokens {gib:.0f} GiB")


# ------------------------------------------------------------------------------- exercise 4
def reference_recall(memory, queries, k):
    """The k memories most cosine-similar to each query, by FAISS's exact inner-product search on unit vectors,
    each row's indices then sorted into conversation order."""
    import faiss
    import numpy as np

    m = np.ascontiguousarray(memory, dtype=np.float32)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    m = m / np.linalg.norm(m, axis=1, keepdims=True)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(m.shape[1])
    index.add(m)
    return np.sort(index.search(q, k)[1], axis=1)


def recall(fn: Callable) -> None:
    """Exercise 4: `fn(memory (N, d), queries (Q, d), k)` -> (Q, k) indices of the k most cosine-similar memories,
    each row in conversation order (ascending)."""
    import numpy as np

    name = "recall"
    rng = np.random.default_rng(23)
    N, Q, d, k = 40, 6, 16, 3
    memory = rng.normal(size=(N, d)).astype(np.float32)
    memory *= rng.uniform(0.2, 5.0, size=(N, 1)).astype(np.float32)  # unequal lengths: dot product != cosine
    queries = (memory[rng.choice(N, Q, replace=False)] * 0.7 + 0.5 * rng.normal(size=(Q, d))).astype(np.float32)
    out = call(name, fn, memory.copy(), queries.copy(), k)
    try:
        got = np.asarray(out)
    except Exception:
        raise CheckFailed(f"{name}: return an array of indices, got {type(out).__name__}") from None
    want = reference_recall(memory, queries, k)
    expect(got.shape == want.shape, name, f"return one row of {k} indices per query, shape {want.shape}, "
                                          f"got {got.shape}")
    expect(np.issubdtype(got.dtype, np.integer), name, f"return integer indices into memory, got dtype {got.dtype}")
    if np.array_equal(got, want):
        hand = np.asarray(call(name, fn, np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 1.0]], dtype=np.float32),
                               np.array([[1.0, 0.05]], dtype=np.float32), 2))
        expect(np.array_equal(hand, [[0, 2]]), name,
               "memories (1, 0), (0, 1), (10, 1) and query (1, 0.05): the two nearest by cosine are 0 and 2, "
               f"in that order; got {hand.tolist()}")
        passed(name, f"top-{k} by cosine similarity match FAISS's exact search, rows in conversation order")
        return
    sims = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        memory / np.linalg.norm(memory, axis=1, keepdims=True)).T
    dots = queries @ memory.T
    by_score = np.argsort(-sims, axis=1)[:, :k]
    wrong = {
        "rows are in similarity order: sort each row's indices so the memories read in the order they were said "
        "(np.sort(top, axis=1))": by_score,
        "ranked by the raw dot product: normalise memory and queries to unit length first (cosine similarity), or "
        "a long vector wins whatever its direction": np.sort(np.argsort(-dots, axis=1)[:, :k], axis=1),
        "those are the *least* similar memories: sort the similarities in descending order":
            np.sort(np.argsort(sims, axis=1)[:, :k], axis=1),
        "ranked by the raw dot product and left in score order: normalise, then sort each row":
            np.argsort(-dots, axis=1)[:, :k],
    }
    for bug, answer in wrong.items():
        if np.array_equal(got, answer):
            raise CheckFailed(f"{name}: {bug}")
    raise CheckFailed(f"{name}: expected {want.tolist()}, got {got.tolist()}: the k most cosine-similar memories "
                      "of each query, each row sorted ascending")
