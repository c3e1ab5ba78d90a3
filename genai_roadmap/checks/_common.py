"""Shared machinery for the exercise checks: calling the learner's code, comparing, reporting."""
from __future__ import annotations

from typing import Any, Callable


class CheckFailed(AssertionError):
    """An exercise check failed; the message says what is probably wrong."""


def call(name: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's `fn`; turn a stub or a crash into a CheckFailed that says so."""
    if not callable(fn):
        raise CheckFailed(f"{name}: expected a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise not_implemented(name) from None
    except CheckFailed:
        raise
    except Exception as e:  # the learner's code crashed: show where, then say it in a line
        raise CheckFailed(f"{name}: your function raised {type(e).__name__}: {e}") from e


def not_implemented(name: str) -> CheckFailed:
    """The failure for a stub that still raises NotImplementedError (raise it `from None`)."""
    return CheckFailed(f"{name}: not implemented yet: replace `raise NotImplementedError` "
                       "with your solution, run the cell, then run this check again")


def expect(condition: bool, name: str, hint: str) -> None:
    """Raise CheckFailed(hint) unless `condition`."""
    if not condition:
        raise CheckFailed(f"{name}: {hint}")


def expect_shape(x: Any, shape: tuple, name: str, what: str | None = None) -> None:
    """Raise unless `x` has `shape`; `what` names the result in the message ("the logits should have shape ...")."""
    got = tuple(getattr(x, "shape", ()))
    expect(got == tuple(shape), name, f"{what} should have shape {tuple(shape)}, got {got}" if what
           else f"expected shape {tuple(shape)}, got {got}")


def expect_tensor(name: str, got: Any, what: str):
    """Raise unless the learner returned a torch.Tensor (`what` names it); return it detached."""
    import torch

    expect(isinstance(got, torch.Tensor), name, f"return {what} as a torch.Tensor, got {type(got).__name__}")
    return got.detach()


def expect_close(actual: Any, expected: Any, name: str, hint: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Compare tensors/arrays: shape first (a clear message), then values within tolerance."""
    import torch

    a = torch.as_tensor(actual).detach().double()
    e = torch.as_tensor(expected).detach().double()
    expect(a.shape == e.shape, name, f"expected shape {tuple(e.shape)}, got {tuple(a.shape)}")
    if not torch.allclose(a, e, atol=atol, rtol=rtol):
        err = (a - e).abs().max().item()
        raise CheckFailed(f"{name}: values differ from the reference (max abs error {err:.3g}). {hint}")


def passed(name: str, detail: str = "") -> None:
    """Print the one pass line."""
    print(f"✓ {name} passed" + (f": {detail}" if detail else ""))


def generator(seed: int):
    """A seeded torch.Generator: checks draw their inputs from it, never from the global RNG."""
    import torch

    return torch.Generator().manual_seed(seed)


def close(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape and values within tolerance (compared in float64)."""
    import torch

    a, b = torch.as_tensor(a).detach().double(), torch.as_tensor(b).detach().double()
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def compare(name: str, got: Any, expected: Any, wrong_answers: dict[str, Any], hint: str, atol: float = 1e-5) -> None:
    """Shape, then values; on a mismatch, name the bug whose wrong answer `got` reproduces, else say `hint`."""
    import torch

    got_t = torch.as_tensor(got).detach()
    expect(tuple(got_t.shape) == tuple(expected.shape), name,
           f"expected shape {tuple(expected.shape)}, got {tuple(got_t.shape)}")
    if close(got_t, expected, atol):
        return
    name_the_bug(name, got_t, wrong_answers, atol)
    expect_close(got_t, expected, name, hint, atol=atol)


def name_the_bug(name: str, got: Any, wrong_answers: dict[str, Any], atol: float = 1e-5) -> None:
    """Raise CheckFailed(bug) for the first wrong answer (None: not applicable here) that `got` reproduces."""
    for bug, wrong in wrong_answers.items():
        if wrong is not None and close(got, wrong, atol):
            raise CheckFailed(f"{name}: {bug}")
