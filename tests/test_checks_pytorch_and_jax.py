"""The checks of 05_pytorch_and_jax pass correct answers and catch the stub and plausible bugs."""
import math
import re

import jax
import jax.numpy as jnp
import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import pytorch_and_jax as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ broadcast_shape
def broadcast(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ValueError(f"sizes {x} and {y} do not broadcast")
        out.append(y if x == 1 else x)
    return tuple(out)


def broadcast_left_aligned(a, b):
    n = max(len(a), len(b))
    return broadcast(tuple(a) + (1,) * (n - len(a)), tuple(b) + (1,) * (n - len(b)))


def broadcast_max_no_raise(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    return tuple(max(x, y) for x, y in zip(a, b))


def broadcast_max(a, b):  # raises correctly, but max(0, 1) = 1
    broadcast(a, b)
    return broadcast_max_no_raise(a, b)


def broadcast_no_padding(a, b):
    out = []
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and 1 not in (x, y):
            raise ValueError("no")
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def broadcast_assert(a, b):
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    assert all(x == y or 1 in (x, y) for x, y in zip(a, b))
    return tuple(y if x == 1 else x for x, y in zip(a, b))


# ------------------------------------------------------------------ contiguous_strides
def strides(shape):
    return tuple(math.prod(shape[d + 1:]) for d in range(len(shape)))


def strides_column_major(shape):
    return tuple(math.prod(shape[:d]) for d in range(len(shape)))


def strides_from_own_dim(shape):
    return tuple(math.prod(shape[d:]) for d in range(len(shape)))


def strides_in_bytes(shape):
    return tuple(4 * s for s in strides(shape))


def strides_list_of_tensors(shape):
    return [torch.tensor(s) for s in strides(shape)]


# ------------------------------------------------------------------ transpose_view
def swapped(seq, dim0, dim1):
    seq = list(seq)
    seq[dim0], seq[dim1] = seq[dim1], seq[dim0]
    return seq


def transpose(x, dim0, dim1):
    return torch.as_strided(x, swapped(x.shape, dim0, dim1), swapped(x.stride(), dim0, dim1), x.storage_offset())


def transpose_copy(x, dim0, dim1):
    return x.transpose(dim0, dim1).contiguous()


def transpose_reshape(x, dim0, dim1):
    return x.reshape(swapped(x.shape, dim0, dim1))


def transpose_offset_zero(x, dim0, dim1):  # as_strided's default offset is x's own; 0 is a bug
    return torch.as_strided(x, swapped(x.shape, dim0, dim1), swapped(x.stride(), dim0, dim1), 0)


def transpose_sizes_only(x, dim0, dim1):
    return torch.as_strided(x, swapped(x.shape, dim0, dim1), x.stride(), x.storage_offset())


def transpose_contiguous_strides(x, dim0, dim1):
    return torch.as_strided(x, swapped(x.shape, dim0, dim1), swapped(strides(tuple(x.shape)), dim0, dim1),
                            x.storage_offset())


# ------------------------------------------------------------------ attention_scores
def scores(q, k):
    return torch.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(q.shape[-1])


def scores_unscaled(q, k):
    return torch.einsum("bhtd,bhsd->bhts", q, k)


def scores_by_d(q, k):
    return torch.einsum("bhtd,bhsd->bhts", q, k) / q.shape[-1]


def scores_transposed(q, k):
    return torch.einsum("bhtd,bhsd->bhst", q, k) / math.sqrt(q.shape[-1])


def scores_heads_summed(q, k):
    return torch.einsum("bhtd,bhsd->bts", q, k) / math.sqrt(q.shape[-1])


# ------------------------------------------------------------------ softplus
def make_softplus(backward):
    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0) + torch.log1p(torch.exp(-x.abs()))

        @staticmethod
        def backward(ctx, grad_out):
            (x,) = ctx.saved_tensors
            return backward(x, grad_out)

    return Softplus.apply


softplus = make_softplus(lambda x, g: g * torch.sigmoid(x))
softplus_backward_stub = make_softplus(lambda x, g: stub())
softplus_no_chain_rule = make_softplus(lambda x, g: torch.sigmoid(x))
softplus_overflowing_grad = make_softplus(lambda x, g: g * torch.exp(x) / (1 + torch.exp(x)))
softplus_wrong_sign = make_softplus(lambda x, g: g * torch.sigmoid(-x))
softplus_returns_value = make_softplus(lambda x, g: g * torch.nn.functional.softplus(x))


def softplus_plain_autograd(x):  # right values and gradients, but no custom Function
    return torch.nn.functional.softplus(x)


# ------------------------------------------------------------------ per_example_grads
def per_example(loss_fn, params, X, y):
    return jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))(params, X, y)


def per_example_loop(loss_fn, params, X, y):
    grads = [jax.grad(loss_fn)(params, X[i], y[i]) for i in range(X.shape[0])]
    return jax.tree.map(lambda *g: jnp.stack(g), *grads)


def per_example_all_axes(loss_fn, params, X, y):
    return jax.vmap(jax.grad(loss_fn))(params, X, y)


def per_example_batch_mean(loss_fn, params, X, y):
    return jax.grad(lambda p: jnp.mean(jax.vmap(loss_fn, (None, 0, 0))(p, X, y)))(params)


def per_example_wrt_x(loss_fn, params, X, y):
    return jax.vmap(jax.grad(loss_fn, argnums=1), in_axes=(None, 0, 0))(params, X, y)


def per_example_tiled_mean(loss_fn, params, X, y):
    mean = per_example_batch_mean(loss_fn, params, X, y)
    return jax.tree.map(lambda g: jnp.broadcast_to(g, (X.shape[0],) + g.shape), mean)


CASES = {
    "broadcast_shape": (broadcast, {
        "left-aligned": (broadcast_left_aligned, "from the left"),
        "max, never raising": (broadcast_max_no_raise, "raise ValueError"),
        "max with size 0": (broadcast_max, "size-0"),
        "no padding": (broadcast_no_padding, "pad the shorter shape"),
        "assert instead of ValueError": (broadcast_assert, "raise ValueError"),
    }),
    "contiguous_strides": (strides, {
        "column-major": (strides_column_major, "column-major"),
        "own dim included": (strides_from_own_dim, "AFTER dimension d"),
        "bytes": (strides_in_bytes, "not bytes"),
        "tensors, not ints": (strides_list_of_tensors, "plain ints"),
    }),
    "transpose_view": (transpose, {
        "copy": (transpose_copy, "copied"),
        "reshape": (transpose_reshape, "swaps the STRIDES"),
        "offset ignored": (transpose_offset_zero, "storage offset ignored"),
        "sizes only": (transpose_sizes_only, "swap the strides"),
        "contiguous strides assumed": (transpose_contiguous_strides, "as if x were contiguous"),
    }),
    "attention_scores": (scores, {
        "unscaled": (scores_unscaled, "not scaled by 1/sqrt(d_head)"),
        "divided by d_head": (scores_by_d, "instead of sqrt(d_head)"),
        "transposed output": (scores_transposed, "wrong order"),
        "heads summed": (scores_heads_summed, "head index"),
    }),
    "softplus": (softplus, {
        "backward stub": (softplus_backward_stub, "backward not implemented yet"),
        "no chain rule": (softplus_no_chain_rule, "ignores grad_out"),
        "overflowing grad": (softplus_overflowing_grad, "NaN"),
        "wrong sign": (softplus_wrong_sign, "sigmoid(-x)"),
        "value, not derivative": (softplus_returns_value, "softplus(x) itself"),
        "plain autograd": (softplus_plain_autograd, "torch.autograd.Function"),
    }),
    "per_example_grads": (per_example, {
        "vmap over params too": (per_example_all_axes, "in_axes=(None, 0, 0)"),
        "batch mean": (per_example_batch_mean, "no batch axis"),
        "grad w.r.t. x": (per_example_wrt_x, "argnums=0"),
        "tiled mean": (per_example_tiled_mean, "same gradient"),
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


def test_a_python_loop_of_jax_grad_is_also_correct():
    check.per_example_grads(per_example_loop)


def test_reference_broadcast_agrees_with_torch():
    for a, b in [((8, 1, 6, 1), (7, 1, 5)), ((0,), (1,)), ((), (2, 3))]:
        assert broadcast(a, b) == tuple(torch.broadcast_shapes(a, b))


def test_hand_derived_mlp_gradients_match_jax():
    import numpy as np

    rng = np.random.default_rng(0)
    params = {"W1": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b1": jnp.asarray(rng.normal(size=4), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=4), jnp.float32)}
    X, y = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), jnp.asarray(rng.normal(size=5), jnp.float32)

    def mlp_loss(params, x, y):
        return (jnp.tanh(x @ params["W1"] + params["b1"]) @ params["w2"] - y) ** 2

    expected = check._mlp_per_example_grads(params, X, y)
    for name, got in per_example_loop(mlp_loss, params, X, y).items():
        np.testing.assert_allclose(np.asarray(got), expected[name], atol=1e-5, rtol=1e-4)
