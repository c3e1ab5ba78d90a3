"""Checks for phase2_tooling/05_pytorch_and_jax.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with the library's own answer
(torch.broadcast_shapes, a tensor's .stride(), Tensor.transpose, a matmul, torch.nn.functional.softplus and
torch.autograd.gradcheck, gradients derived by hand in NumPy) and one hand-worked case, and when the answer is wrong
compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import math
import random
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, close, expect, expect_close, generator, passed

# ----------------------------------------------------------------------------------------- helpers


def _as_shape(name: str, got, what: str) -> tuple[int, ...]:
    expect(isinstance(got, (tuple, list)), name, f"return {what} as a tuple of ints, got {type(got).__name__}")
    expect(all(isinstance(s, int) and not isinstance(s, bool) for s in got), name,
           f"return {what} as a tuple of plain ints, got {got!r}")
    return tuple(got)


# ------------------------------------------------------------------------------- exercise 1


def _broadcast_variant(a, b, how: str):
    """The usual wrong broadcasting rules (for diagnosis only); None where the variant raises."""
    if how == "left":  # aligned from the left instead of the right
        n = max(len(a), len(b))
        a, b = tuple(a) + (1,) * (n - len(a)), tuple(b) + (1,) * (n - len(b))
        if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
            return None
        return tuple(y if x == 1 else x for x, y in zip(a, b))
    n = max(len(a), len(b))
    pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    if how == "max":  # max of the sizes, never raising
        return tuple(max(x, y) for x, y in zip(pa, pb))
    if how == "zip":  # zip from the right without padding: the leading dims of the longer shape are lost
        k = min(len(a), len(b))
        tail = list(zip(a[len(a) - k:], b[len(b) - k:]))
        if any(x != y and 1 not in (x, y) for x, y in tail):
            return None
        return tuple(y if x == 1 else x for x, y in tail)
    raise ValueError(how)


def _broadcast_bug(a, b, got) -> str | None:
    if got == _broadcast_variant(a, b, "left"):
        return ("shapes aligned from the left? Broadcasting lines shapes up from the RIGHT (trailing "
                "dimensions first) and pads the shorter one with 1s on the left.")
    if got == _broadcast_variant(a, b, "zip"):
        return ("the leading dimensions of the longer shape are missing: pad the shorter shape with 1s on the "
                "left (zip stops at the shorter one)")
    if got == _broadcast_variant(a, b, "max") and 0 in a + b:
        return ("a size-0 dimension broadcasts against 1 to 0, not to max(0, 1) = 1: the result takes the size "
                "that is not 1")
    return None


def _random_shape(rng: random.Random) -> tuple[int, ...]:
    return tuple(rng.choice((1, 1, 2, 3, 4)) for _ in range(rng.randint(0, 4)))


def broadcast_shape(fn: Callable) -> None:
    """Exercise 1: `fn(shape_a, shape_b)` is torch.broadcast_shapes(shape_a, shape_b), raising ValueError."""
    import torch

    name = "broadcast_shape"
    rng = random.Random(0)
    # hand-worked first (the NumPy manual's example), then random pairs, then incompatible ones, then size 0
    pairs = [((8, 1, 6, 1), (7, 1, 5)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((5,), ())]
    pairs += [(_random_shape(rng), _random_shape(rng)) for _ in range(300)]
    pairs += [((0,), (1,)), ((2, 0, 3), (4, 1, 1, 3))]
    compatible = 0
    for a, b in pairs:
        try:
            expected = tuple(torch.broadcast_shapes(a, b))
        except RuntimeError:
            expected = None
        try:
            got = fn(a, b)
        except NotImplementedError:
            call(name, fn, a, b)  # raises the "not implemented yet" CheckFailed
            raise
        except ValueError as e:
            if expected is None:
                continue
            bug = _broadcast_bug(a, b, None)
            raise CheckFailed(f"{name}: shapes {a} and {b} broadcast to {expected}, but you raised ValueError "
                              f"({e})" + (f". {bug}" if bug else "")) from e
        except Exception as e:
            what = "cannot broadcast" if expected is None else f"broadcast to {expected}"
            detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            raise CheckFailed(f"{name}: shapes {a} and {b} {what}, and your function raised {detail}"
                              + ("; raise ValueError (the type NumPy raises)" if expected is None else "")) from e
        if expected is None:
            raise CheckFailed(f"{name}: shapes {a} and {b} cannot broadcast (sizes that differ must include a 1), "
                              f"but you returned {got!r}: raise ValueError when two aligned sizes differ and "
                              "neither is 1")
        got = _as_shape(name, got, "the broadcast shape")
        compatible += 1
        if got != expected:
            bug = _broadcast_bug(a, b, got)
            raise CheckFailed(f"{name}: broadcast_shape({a}, {b}) should be {expected}, got {got}"
                              + (f". {bug}" if bug else ""))
    passed(name, f"agrees with torch.broadcast_shapes on {len(pairs)} shape pairs "
                 f"({compatible} compatible, {len(pairs) - compatible} raising ValueError)")


# ------------------------------------------------------------------------------- exercise 2


def contiguous_strides(fn: Callable) -> None:
    """Exercise 2: `fn(shape)` is the strides (in elements) of a contiguous (row-major) tensor of that shape."""
    import torch

    name = "contiguous_strides"
    shapes = [(3, 4), (2, 3, 4), (5,), (), (4, 1, 3), (2, 3, 1, 5, 2), (1, 1), (7, 2, 6)]
    for shape in shapes:
        expected = tuple(torch.empty(shape).stride())
        got = _as_shape(name, call(name, fn, shape), "the strides")
        if got == expected:
            continue
        column_major = tuple(math.prod(shape[:d]) for d in range(len(shape)))
        own_dim = tuple(math.prod(shape[d:]) for d in range(len(shape)))
        reversed_ = tuple(reversed(expected))
        bytes_ = tuple(4 * s for s in expected)
        if got == column_major:
            hint = ("these are column-major (Fortran) strides: PyTorch is row-major, the LAST dimension moves "
                    "fastest, so stride[-1] = 1 and stride[d] = shape[d+1] * ... * shape[-1]")
        elif got == own_dim:
            hint = "stride[d] multiplies the sizes AFTER dimension d, not from d on: the last stride is 1"
        elif got == reversed_:
            hint = "strides in the reverse order? stride[0] belongs to the first (slowest) dimension"
        elif got == bytes_:
            hint = "strides count elements, not bytes (multiply by x.element_size() for bytes)"
        else:
            hint = "stride[d] = shape[d+1] * shape[d+2] * ... * shape[-1], and the last stride is 1"
        raise CheckFailed(f"{name}: strides of a contiguous {shape} tensor are {expected}, got {got}: {hint}")
    passed(name, f"matches torch.empty(shape).stride() for {len(shapes)} shapes")


# ------------------------------------------------------------------------------- exercise 3


def _storage_ptr(t) -> int:
    return t.untyped_storage().data_ptr()


def _call_as_strided(name, fn, *args):
    try:
        return call(name, fn, *args)
    except CheckFailed as e:
        if "out of bounds" in str(e):
            raise CheckFailed(f"{e} (torch.as_strided reached past the end of the storage: swap the strides as well "
                              "as the sizes, and start at x.storage_offset())") from e
        raise


def transpose_view(fn: Callable) -> None:
    """Exercise 3: `fn(x, dim0, dim1)` equals x.transpose(dim0, dim1) and is a view (no copy) of x's storage."""
    import torch

    name = "transpose_view"
    # hand-worked: a (2, 3) tensor with strides (3, 1); its transpose is (3, 2) with strides (1, 3)
    x = torch.arange(6.0).view(2, 3)
    got = _call_as_strided(name, fn, x, 0, 1)
    expect(isinstance(got, torch.Tensor), name, f"return a tensor, got {type(got).__name__}")
    expect(tuple(got.shape) == (3, 2), name, f"the transpose of a (2, 3) tensor is (3, 2), got {tuple(got.shape)}")
    if not torch.equal(got, x.t()):
        if torch.equal(got, x.reshape(3, 2)):
            raise CheckFailed(f"{name}: you got x.reshape(3, 2) = {got.tolist()}, which keeps the elements in "
                              "memory order; a transpose swaps the STRIDES as well as the sizes")
        raise CheckFailed(f"{name}: transpose of [[0, 1, 2], [3, 4, 5]] should be {x.t().tolist()}, got "
                          f"{got.tolist()}: swap both the sizes and the strides of dim0 and dim1")
    if _storage_ptr(got) != _storage_ptr(x):
        raise CheckFailed(f"{name}: right values, but you copied the data (.contiguous(), .clone() or a new "
                          "tensor?): a transpose is a view, torch.as_strided(x, new_size, new_stride, "
                          "x.storage_offset()) on x's own storage")

    # a tensor that is itself a non-contiguous view, starting part-way into its storage
    base = torch.randn(4, 5, 6, generator=generator(3))
    x = base[1:, :, 2:]  # (3, 5, 4), strides (30, 6, 1), storage offset 32
    for dim0, dim1 in ((0, 2), (1, 2), (2, 0), (0, 1)):
        expected = x.transpose(dim0, dim1)
        got = _call_as_strided(name, fn, x, dim0, dim1)
        expect(tuple(got.shape) == tuple(expected.shape), name,
               f"transpose({dim0}, {dim1}) of a {tuple(x.shape)} tensor is {tuple(expected.shape)}, "
               f"got {tuple(got.shape)}")
        if not torch.equal(got, expected):
            wrong_offset = torch.as_strided(x, expected.shape, expected.stride(), 0)
            contig = [math.prod(x.shape[d + 1:]) for d in range(x.dim())]
            contig[dim0], contig[dim1] = contig[dim1], contig[dim0]
            if torch.equal(got, wrong_offset):
                hint = ("storage offset ignored? x = base[1:, :, 2:] starts at element "
                        f"{x.storage_offset()} of its storage: pass x.storage_offset() to torch.as_strided")
            elif got.stride() == tuple(contig):
                hint = ("strides computed as if x were contiguous? x may itself be a view: start from x.stride(), "
                        f"here {x.stride()}")
            elif got.stride() == x.stride():
                hint = "sizes swapped but not the strides: swap stride[dim0] and stride[dim1] too"
            else:
                hint = "swap size[dim0] with size[dim1] and stride[dim0] with stride[dim1], keep the storage offset"
            raise CheckFailed(f"{name}: wrong values for a view that starts part-way into its storage "
                              f"(x = base[1:, :, 2:], transpose({dim0}, {dim1})): {hint}")
        if _storage_ptr(got) != _storage_ptr(x):
            raise CheckFailed(f"{name}: right values but a copy: the result must share x's storage (a view)")
    passed(name, "same values as Tensor.transpose, sharing x's storage, also for a view with a storage offset")


# ------------------------------------------------------------------------------- exercise 4


def attention_scores(fn: Callable) -> None:
    """Exercise 4: `fn(q, k)` is q @ k^T / sqrt(d_head) for q (B, n_heads, T, d_head), k (B, n_heads, S, d_head)."""
    import torch

    name = "attention_scores"
    g = generator(4)
    B, n_heads, T, S, d_head = 2, 3, 5, 7, 8
    q, k = torch.randn(B, n_heads, T, d_head, generator=g), torch.randn(B, n_heads, S, d_head, generator=g)
    expected = q @ k.transpose(-2, -1) / math.sqrt(d_head)  # (B, n_heads, T, S)
    got = call(name, fn, q, k)
    expect(isinstance(got, torch.Tensor), name, f"return a tensor, got {type(got).__name__}")
    shape = tuple(got.shape)
    if shape != tuple(expected.shape):
        if shape == (B, n_heads, S, T):
            hint = "output indices in the wrong order: 'bhtd,bhsd->bhts' keeps queries (t) before keys (s)"
        elif shape == (B, T, S):
            hint = "the head index h is summed away: keep it in the output, 'bhtd,bhsd->bhts'"
        elif shape in ((B, n_heads, T), (B, n_heads)):
            hint = "the key index s must stay in the output: 'bhtd,bhsd->bhts' sums over d only"
        else:
            hint = "einsum('bhtd,bhsd->bhts', q, k) sums over d only"
        raise CheckFailed(f"{name}: q {tuple(q.shape)} and k {tuple(k.shape)} give scores (B, n_heads, T, S) = "
                          f"{tuple(expected.shape)}, got {shape}: {hint}")
    if close(got, expected * math.sqrt(d_head)):
        raise CheckFailed(f"{name}: scores not scaled by 1/sqrt(d_head)?")
    if close(got, expected / math.sqrt(d_head)):
        raise CheckFailed(f"{name}: scores divided by d_head instead of sqrt(d_head)?")
    expect_close(got, expected, name, "compare with q @ k.transpose(-2, -1) / sqrt(d_head)")

    # hand-worked: q = (1, 1, 1, 1), keys (1, 0, 0, 0) and (2, 2, 2, 2), d_head = 4 -> (1/2, 8/2) = (0.5, 4)
    q = torch.ones(1, 1, 1, 4)
    k = torch.tensor([[1.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]]).view(1, 1, 2, 4)
    expected = torch.tensor([0.5, 4.0]).view(1, 1, 1, 2)
    got = call(name, fn, q, k)
    expect(isinstance(got, torch.Tensor), name, f"return a tensor, got {type(got).__name__}")
    if close(got, expected * 2):
        raise CheckFailed(f"{name}: scores not scaled by 1/sqrt(d_head)? Hand-worked case: q = (1, 1, 1, 1), keys "
                          "(1, 0, 0, 0) and (2, 2, 2, 2) give dot products (1, 8) and scores (0.5, 4)")
    if close(got, expected / 2):
        raise CheckFailed(f"{name}: scores divided by d_head instead of sqrt(d_head)? Hand-worked case: dot "
                          "products (1, 8) / sqrt(4) = (0.5, 4)")
    expect_close(got, expected, name, "hand-worked case: q = (1, 1, 1, 1), keys (1, 0, 0, 0) and (2, 2, 2, 2), "
                 "d_head = 4 -> scores (0.5, 4)")
    passed(name, "matches q @ k.transpose(-2, -1) / sqrt(d_head) for (B, n_heads, T, d_head) inputs")


# ------------------------------------------------------------------------------- exercise 5


def _grad_of(fn, name: str, x, grad_out=None):
    """x.grad after fn(x).backward(grad_out); the stub's NotImplementedError in backward -> CheckFailed."""
    import torch

    x = x.detach().clone().requires_grad_(True)
    y = call(name, fn, x)
    try:
        y.backward(torch.ones_like(y) if grad_out is None else grad_out)
    except NotImplementedError:
        raise CheckFailed(f"{name}: backward not implemented yet: replace `raise NotImplementedError` in "
                          "backward with your solution, run the cell, then run this check again") from None
    except Exception as e:
        raise CheckFailed(f"{name}: backward raised {type(e).__name__}: {e}") from e
    expect(x.grad is not None, name, "no gradient reached x: backward must return the gradient w.r.t. x")
    return x.grad


def softplus(fn: Callable) -> None:
    """Exercise 5: `fn(x)` is softplus(x) = log(1 + e^x) through a custom autograd Function with a right backward."""
    import torch
    import torch.nn.functional as F

    name = "softplus"
    x = torch.tensor([-1000.0, -30.0, -2.0, 0.0, 0.5, 3.0, 30.0, 1000.0])
    y = call(name, fn, x.clone().requires_grad_(True))
    expect(isinstance(y, torch.Tensor), name, f"return a tensor, got {type(y).__name__}")
    expect(y.grad_fn is not None and isinstance(y.grad_fn, torch.autograd.function.BackwardCFunction), name,
           "the output should come from your torch.autograd.Function (StableSoftplus.apply(x)), so that "
           "autograd calls your backward")
    expect_close(y, F.softplus(x), name, "the forward should be log(1 + e^x), computed stably", atol=1e-5)

    # hand-worked: softplus'(0) = sigmoid(0) = 1/2, softplus'(x) -> 1 for large x and -> 0 for very negative x
    grad = _grad_of(fn, name, x)
    sig = torch.sigmoid(x)
    if bool(torch.isnan(grad).any()):
        raise CheckFailed(f"{name}: the gradient at x = ±1000 is NaN: e^x / (1 + e^x) overflows to inf / inf; "
                          "the derivative of softplus is torch.sigmoid(x), which is stable")
    if close(grad, torch.sigmoid(-x)):
        raise CheckFailed(f"{name}: the gradient is sigmoid(-x): d/dx log(1 + e^x) = e^x / (1 + e^x) = sigmoid(x)")
    if close(grad, F.softplus(x), atol=1e-4):
        raise CheckFailed(f"{name}: backward returns softplus(x) itself; it should return the derivative, "
                          "sigmoid(x), times grad_out")
    expect_close(grad, sig, name, "the derivative of log(1 + e^x) is sigmoid(x); at 0 it is 1/2", atol=1e-6)

    # the chain rule: backward gets dL/dy and must return dL/dx = dL/dy * dy/dx
    g = generator(5)
    x = torch.randn(6, generator=g)
    grad_out = torch.randn(6, generator=g)
    grad = _grad_of(fn, name, x, grad_out)
    if close(grad, torch.sigmoid(x)):
        raise CheckFailed(f"{name}: backward ignores grad_out: return grad_out * sigmoid(x) (the chain rule), "
                          "not sigmoid(x) alone")
    expect_close(grad, grad_out * torch.sigmoid(x), name, "backward should return grad_out * sigmoid(x)",
                 atol=1e-6)

    x64 = torch.randn(20, dtype=torch.float64, generator=generator(6), requires_grad=True)
    try:
        ok = torch.autograd.gradcheck(fn, (x64,), raise_exception=False)
    except Exception as e:
        raise CheckFailed(f"{name}: torch.autograd.gradcheck raised {type(e).__name__}: {e}") from e
    expect(ok, name, "torch.autograd.gradcheck (float64) disagrees with your backward: does the forward keep "
           "the input's dtype, and does backward return grad_out * sigmoid(x)?")
    passed(name, "forward matches F.softplus (finite at ±1000), backward passes torch.autograd.gradcheck")


# ------------------------------------------------------------------------------- exercise 6


def _mlp_per_example_grads(params, X, y):
    """Per-example gradients of (tanh(x W1 + b1) . w2 - y)^2, derived by hand in NumPy (no JAX involved)."""
    import numpy as np

    W1, b1, w2 = (np.asarray(params[k], np.float64) for k in ("W1", "b1", "w2"))
    X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
    h = np.tanh(X @ W1 + b1)                          # (n, d_hidden)
    r = h @ w2 - y                                    # (n,) residuals
    d_pre = 2 * r[:, None] * w2 * (1 - h ** 2)        # (n, d_hidden): dloss/d(x W1 + b1)
    return {"W1": X[:, :, None] * d_pre[:, None, :], "b1": d_pre, "w2": 2 * r[:, None] * h}


def _compare_tree(name, got, expected, n, batch_grad, hint):
    import jax
    import numpy as np

    try:
        got_leaves, got_tree = jax.tree.flatten(got)
    except Exception as e:  # pragma: no cover - flatten accepts almost anything
        raise CheckFailed(f"{name}: could not read your result as a pytree: {e}") from e
    exp_leaves, exp_tree = jax.tree.flatten(expected)
    if got_tree != exp_tree:
        raise CheckFailed(f"{name}: return gradients with the same structure as params ({exp_tree}), got {got_tree}: "
                          "differentiate with respect to params (jax.grad's argnums=0, the default)")
    batch_leaves = jax.tree.leaves(batch_grad)
    for g, e, b in zip(got_leaves, exp_leaves, batch_leaves):
        g = np.asarray(g)
        if g.shape == np.shape(b):
            raise CheckFailed(f"{name}: got a gradient shaped like the parameter {np.shape(b)}, with no batch axis: "
                              "that is the gradient of the batch's mean loss. Per-example gradients have a leading "
                              f"axis of size {n}: jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))")
        if g.shape != e.shape:
            raise CheckFailed(f"{name}: a gradient leaf should have shape {e.shape} (batch, *param_shape), "
                              f"got {g.shape}")
        if not np.allclose(g, e, atol=1e-5, rtol=1e-4):
            if np.allclose(g, np.broadcast_to(np.asarray(b), e.shape), atol=1e-5, rtol=1e-4):
                raise CheckFailed(f"{name}: every example got the same gradient (the batch mean): vmap over the "
                                  "examples, in_axes=(None, 0, 0)")
            raise CheckFailed(f"{name}: per-example gradients differ from the reference "
                              f"(max abs error {np.abs(g - e).max():.3g}). {hint}")


def _call_vmap(name, fn, *args):
    try:
        return call(name, fn, *args)
    except CheckFailed as e:
        if "vmap" in str(e) or "inconsistent sizes" in str(e):
            raise CheckFailed(f"{e} (the parameters are shared by all examples, so vmap must not map over them: "
                              "in_axes=(None, 0, 0))") from e
        raise


def per_example_grads(fn: Callable) -> None:
    """Exercise 6: `fn(loss_fn, params, X, y)` is the gradient of loss_fn(params, X[i], y[i]) for every i."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    name = "per_example_grads"
    hint = "jax.vmap(jax.grad(loss_fn), in_axes=(None, 0, 0))(params, X, y): params shared, examples batched"

    # hand-worked: squared error of a linear model, (w·x - y)^2, has gradient 2 (w·x - y) x for each example
    def linear_loss(params, x, y):  # one example: x (d_in,), y ()
        return (jnp.dot(params["w"], x) - y) ** 2

    params = {"w": jnp.array([1.0, -1.0])}
    X = jnp.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    y = jnp.array([0.0, 1.0, 3.0])
    expected = {"w": np.array([[2.0, 0.0], [0.0, -4.0], [-12.0, -12.0]])}  # residuals 1, -2, -3
    batch = jax.tree.map(lambda g: g.mean(0), expected)
    got = _call_vmap(name, fn, linear_loss, params, X, y)
    _compare_tree(name, got, expected, 3, batch, "hand-worked: (w·x - y)^2 with w = (1, -1) has per-example "
                  "gradients 2 (w·x - y) x = (2, 0), (0, -4), (-12, -12)")

    # a small MLP regression, per example
    rng = np.random.default_rng(7)
    d_in, d_hidden, n = 3, 5, 6
    params = {"W1": jnp.asarray(rng.normal(size=(d_in, d_hidden)), jnp.float32),
              "b1": jnp.asarray(rng.normal(size=(d_hidden,)), jnp.float32),
              "w2": jnp.asarray(rng.normal(size=(d_hidden,)), jnp.float32)}
    X = jnp.asarray(rng.normal(size=(n, d_in)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(n,)), jnp.float32)

    def mlp_loss(params, x, y):  # one example
        return (jnp.tanh(x @ params["W1"] + params["b1"]) @ params["w2"] - y) ** 2

    expected = _mlp_per_example_grads(params, X, y)
    batch = jax.tree.map(lambda g: g.mean(0), expected)
    got = _call_vmap(name, fn, mlp_loss, params, X, y)
    _compare_tree(name, got, expected, n, batch, hint)
    passed(name, f"matches per-example gradients derived by hand, for {n} examples of an MLP and a linear model")
