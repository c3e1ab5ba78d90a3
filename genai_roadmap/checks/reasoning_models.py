"""Checks for phase5_frontier/21_reasoning_models.ipynb.

Each check runs the learner's function on small seeded inputs, compares it with the reference below (the
grade-school column method, collections.Counter, the AlphaZero formula) and one hand-worked case, and when the
answer is wrong compares it with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, close, expect, passed


# ------------------------------------------------------------------------------- exercise 1
def reference_column_trace(numbers, n_digits=2):
    """The teacher's chain of thought: the column sums from the units up, each with the carry of the column
    before, two digits each, ';'-separated, then 'A', the total with n_digits + 1 digits, and '.'."""
    carry, steps = 0, []
    for col in range(n_digits):
        s = carry + sum(n // 10**col % 10 for n in numbers)
        steps.append(f"{s:02d}")
        carry = s // 10
    return ";".join(steps) + f";A{sum(numbers):0{n_digits + 1}d}."


def _trace_variant(numbers, n_digits, carry_in=True, order=None, pad_steps=True, pad_answer=True, carry_of=None):
    """The teacher's trace with one thing done wrong (for naming the learner's bug)."""
    carry, steps = 0, []
    for col in (order or range(n_digits)):
        s = (carry if carry_in else 0) + sum(n // 10**col % 10 for n in numbers)
        steps.append(f"{s:02d}" if pad_steps else str(s))
        carry = carry_of(s) if carry_of else s // 10
    answer = f"{sum(numbers):0{n_digits + 1}d}" if pad_answer else str(sum(numbers))
    return ";".join(steps) + f";A{answer}."


def _trace_cases():
    rng = random.Random(21)
    cases = [([47, 85, 36, 29], 2), ([10, 20, 30, 5], 2), ([3, 1, 2, 1], 2), ([999, 999, 999], 3)]
    cases += [([rng.randint(10, 99) for _ in range(4)], 2) for _ in range(20)]
    cases += [([rng.randint(100, 999) for _ in range(rng.randint(2, 5))], 3) for _ in range(20)]
    return cases


def column_trace(fn: Callable) -> None:
    """Exercise 1: `fn(numbers, n_digits=2)` -> the teacher's chain of thought, e.g. '27;19;A197.'."""
    name = "column_trace"
    got = call(name, fn, [47, 85, 36, 29])
    expect(isinstance(got, str), name, f"return the trace as a str, got {type(got).__name__}")
    for numbers, n_digits in _trace_cases():
        got = call(name, fn, list(numbers), n_digits)
        want = reference_column_trace(numbers, n_digits)
        if got == want:
            continue
        wrong = {
            "the carry is missing: each column's sum must include the carry (the previous sum // 10), "
            "e.g. 47+85+36+29: 27, then 2 + 4+8+3+2 = 19":
                _trace_variant(numbers, n_digits, carry_in=False),
            "the columns go from the left: the teacher starts at the units column (col 0), where carries start":
                _trace_variant(numbers, n_digits, order=range(n_digits - 1, -1, -1)),
            "the carry is the sum's last digit (s % 10): it is the rest, s // 10":
                _trace_variant(numbers, n_digits, carry_of=lambda s: s % 10),
            "a column sum is not written with two digits: use f'{s:02d}' (07, not 7), so every trace has the "
            "same layout": _trace_variant(numbers, n_digits, pad_steps=False),
            "the answer is not written with n_digits + 1 digits: use f'{total:0{n_digits + 1}d}' (A098, not A98)":
                _trace_variant(numbers, n_digits, pad_answer=False),
        }
        for bug, answer in wrong.items():
            if got == answer:
                raise CheckFailed(f"{name}: {bug}")
        raise CheckFailed(f"{name}: for {numbers} (n_digits={n_digits}) expected {want!r}, got {got!r}")
    passed(name, f"47+85+36+29 -> {reference_column_trace([47, 85, 36, 29])!r}, and 43 more problems")


# ------------------------------------------------------------------------------- exercise 2
def reference_majority_vote(answers):
    """Self-consistency's vote: the most common readable answer (None = unreadable, ignored); ties go to the
    answer seen first (Counter.most_common keeps first-seen order among equal counts); None if none is readable."""
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None


def majority_vote(fn: Callable) -> None:
    """Exercise 2: `fn(answers)` -> the majority answer, ties to the first seen, None ignored."""
    name = "majority_vote"
    hand = [
        ([7, None, 3, 3, None, None], 3, "None marks a chain with no readable answer: it is not a vote; "
                                         "skip it (here 3 has two votes, None three)"),
        ([5, 2, 2, 5], 5, "on a tie, return the tied answer that appears first (5 here): Counter.most_common "
                          "keeps first-seen order among equal counts"),
        ([2, 5, 5, 2], 2, "on a tie, return the tied answer that appears first (2 here)"),
        ([None, None], None, "when no answer is readable, return None"),
        ([42], 42, "a single vote wins"),
        ([None, 8, None], 8, "ignore None: the only readable answer is 8"),
    ]
    rng = random.Random(2)
    seeded = []
    for _ in range(200):
        answers = [rng.choice([None, 1, 2, 3, 10, 11]) for _ in range(rng.randint(1, 9))]
        seeded.append((answers, reference_majority_vote(answers), None))
    for answers, want, hint in hand + seeded:
        got = call(name, fn, list(answers))
        if got == want and type(got) is type(want):
            continue
        votes = Counter(a for a in answers if a is not None)
        tied = [a for a, c in votes.items() if c == max(votes.values())] if votes else []
        if isinstance(got, tuple):
            hint = "return the answer itself, not the (answer, count) pair"
        elif got in tied and len(tied) > 1:
            hint = ("on a tie, return the tied answer that appears first (not the largest, smallest or last); "
                    "Counter.most_common keeps first-seen order among equal counts")
        elif got is None and votes:
            hint = "None won the vote: skip the None answers before counting"
        elif want is not None and got == votes[want]:
            hint = "return the answer itself, not its count"
        elif hint is None:
            hint = "return the most common answer"
        raise CheckFailed(f"{name}: majority_vote({answers}) should be {want!r}, got {got!r}: {hint}")
    passed(name, "ties go to the first seen, unreadable answers are skipped, 206 cases")


# ------------------------------------------------------------------------------- exercise 3
def reference_verify_steps(numbers, completion, n_digits=2):
    """A process verifier for column traces: one verdict per column sum (carry of the previous *written* sum
    plus the column's digits; False when it or the previous sum is unreadable), then one for the answer (the
    number the written sums spell: the last sum, then the earlier sums' units digits, last to first)."""
    return _verify_variant(numbers, completion, n_digits)


def _verify_variant(numbers, completion, n_digits=2, true_carry=False, true_total=False, no_carry=False,
                    forward=False):
    """The reference verifier, or (with a flag) the verifier with one usual bug."""
    parts = completion.split(".")[0].split(";")
    sums = [int(p) if p.isdigit() else None for p in parts[:n_digits]]
    sums += [None] * (n_digits - len(sums))
    verdicts, carry, real = [], 0, 0
    for col, s in enumerate(sums):
        column = sum(n // 10**col % 10 for n in numbers)
        c = real if true_carry else (0 if no_carry else carry)
        verdicts.append(s is not None and c is not None and s == c + column)
        carry = None if s is None else s // 10
        real = (real + column) // 10
    rest = sums[:-1] if forward else list(reversed(sums[:-1]))
    spelled = None if None in sums else int(str(sums[-1]) + "".join(str(s % 10) for s in rest))
    answer = parts[n_digits] if len(parts) == n_digits + 1 else ""
    target = sum(numbers) if true_total else spelled
    verdicts.append(answer.startswith("A") and answer[1:].isdigit() and int(answer[1:]) == target)
    return verdicts


_VERIFY_BUGS = {
    "each step must be judged against the sum *written* before it, not the true carry: in '17;18;A187.' for "
    "47+85+36+29, 17 is wrong but 1 + (4+8+3+2) = 18 follows from it; a process verifier blames only the "
    "step that went wrong": dict(true_carry=True),
    "the answer must be the number the written sums spell (the last sum, then the earlier sums' units "
    "digits), not the true total: the last verdict asks whether the answer follows from the steps":
        dict(true_total=True),
    "the carry is missing: a column's sum is the carry of the previous written sum (its // 10) plus the "
    "column's digits": dict(no_carry=True),
    "the answer is spelled from the last sum down: the last sum, then the units digits of the earlier sums, "
    "last to first (16, 9, 7 -> 1697)": dict(forward=True),
}


def _verify_cases():
    nums, big = [47, 85, 36, 29], [347, 185, 936, 229]  # 197; 1697: sums 27, 2+4+8+3+2=19 ... see below
    cases = [
        (nums, "27;19;A197.", 2, "the teacher's own trace is right at every step"),
        (nums, "17;18;A187.", 2, "judge each step against the sums *written* before it: 17 is wrong, but 1 + "
                                 "(4+8+3+2) = 18 follows from it, and 187 is what 17 and 18 spell; comparing with "
                                 "the true carry or the true total blames the later steps for the first one's error"),
        (nums, "27;18;A197.", 2, "the answer must be what the written sums spell (18 then 7: 187), not the "
                                 "true total: a chain whose steps do not support its answer fails the last check"),
        (nums, "27;17;A177.", 2, "the tens column must include the carry from the units sum (27 // 10 = 2): "
                                 "2 + 4+8+3+2 = 19"),
        (nums, "27;19;A917.", 2, "the answer is spelled from the last sum down: 19, then 7 (197)"),
        (nums, "27;x9;A197.", 2, "a step that is not a number is False (and the steps after it cannot be "
                                 "checked), without raising"),
        (nums, "27;19", 2, "a missing part is False, without raising"),
        (nums, "", 2, "an empty completion: every verdict False, without raising"),
        (nums, "27;19;A197;A197.", 2, "an extra part makes the answer False: the trace is n_digits sums, then A"),
        (nums, "27;19;197.", 2, "the answer part starts with 'A'"),
        (big, "27;19;16;A1697.", 3, "three columns: 7+5+6+9 = 27, 2 + 4+8+3+2 = 19, 1 + 3+1+9+2 = 16, "
                                    "spelled 16, 9, 7 -> 1697"),
        (big, "27;19;16;A1679.", 3, "the answer is spelled from the last sum down: 16, then 9, then 7 (1697)"),
        (big, "26;19;16;A1696.", 3, "26 is wrong but 2 + 17 = 19 follows from it, as does 1696"),
    ]
    rng = random.Random(3)
    for _ in range(60):
        n_digits = rng.choice([2, 3])
        numbers = [rng.randint(10 ** (n_digits - 1), 10 ** n_digits - 1) for _ in range(rng.randint(2, 5))]
        text = reference_column_trace(numbers, n_digits)
        if rng.random() < 0.7:  # corrupt one character
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice("0123456789;A.") + text[i + 1:]
        cases.append((numbers, text, n_digits, None))
    return cases


def verify_steps(fn: Callable) -> None:
    """Exercise 3: `fn(numbers, completion, n_digits=2)` -> n_digits + 1 booleans, one per step."""
    name = "verify_steps"
    for numbers, completion, n_digits, hint in _verify_cases():
        got = call(name, fn, list(numbers), completion, n_digits)
        want = reference_verify_steps(numbers, completion, n_digits)
        expect(isinstance(got, (list, tuple)), name,
               f"return a list of booleans (one per column sum, then one for the answer), got {type(got).__name__}")
        expect(len(got) == n_digits + 1, name, f"for n_digits={n_digits} return {n_digits + 1} verdicts "
               f"({n_digits} column sums, then the answer), got {len(got)} for {completion!r}")
        got = [bool(v) for v in got]
        if got != want:
            for bug, flags in _VERIFY_BUGS.items():
                if got == _verify_variant(numbers, completion, n_digits, **flags):
                    raise CheckFailed(f"{name}: on {completion!r} ({'+'.join(map(str, numbers))}) you return {got}, "
                                      f"expected {want}: {bug}")
            raise CheckFailed(f"{name}: verify_steps({numbers}, {completion!r}, n_digits={n_digits}) should be "
                              f"{want}, got {got}"
                              + (f": {hint}" if hint else ": check each step against the previous written sum"))
    passed(name, "local checks of every column sum and of the answer, malformed chains rejected, 73 cases")


# ------------------------------------------------------------------------------- exercise 4
def reference_puct_scores(W, N, P, c_puct=1.0):
    """AlphaZero's PUCT: Q + c_puct * P * sqrt(1 + sum N) / (1 + N), with Q = W / N and 0 for unvisited children."""
    import numpy as np

    Q = np.where(N > 0, W / np.maximum(N, 1), 0.0)
    return Q + c_puct * P * np.sqrt(1 + N.sum()) / (1 + N)


def puct_scores(fn: Callable) -> None:
    """Exercise 4: `fn(W, N, P, c_puct)` -> the PUCT score of each child (1-D numpy array)."""
    import numpy as np

    name = "puct_scores"
    rng = np.random.default_rng(4)
    n = 7
    N = rng.integers(0, 6, n).astype(float)
    N[[1, 4]] = 0  # two unvisited children
    W = np.round(rng.uniform(0, 1, n) * N)  # wins, at most the visits
    P = rng.dirichlet(np.ones(n))
    c = 1.5
    with np.errstate(divide="ignore", invalid="ignore"):
        got = call(name, fn, W.copy(), N.copy(), P.copy(), c)
        expect(isinstance(got, np.ndarray) or hasattr(got, "shape"), name,
               f"return one score per child as a numpy array, got {type(got).__name__}")
        got = np.asarray(got, dtype=float)
        want = reference_puct_scores(W, N, P, c)
        expect(got.shape == want.shape, name, f"return one score per child, shape {want.shape}, got {got.shape}")
        expect(np.isfinite(got).all(), name, "some scores are inf or nan: an unvisited child (N = 0) has Q = 0, "
               "and the exploration term divides by 1 + N, not N")
        if not close(got, want, atol=1e-6):
            Q = np.where(N > 0, W / np.maximum(N, 1), 0.0)
            root = np.sqrt(1 + N.sum())
            wrong = {
                "Q is the total value W: use the mean, W / N (0 for an unvisited child)":
                    W + c * P * root / (1 + N),
                "no square root: U = c_puct * P * sqrt(1 + sum N) / (1 + N)":
                    Q + c * P * (1 + N.sum()) / (1 + N),
                "sqrt(sum N) without the 1: sqrt(1 + N.sum()) counts the expansion visit, so the first pick "
                "follows the prior": Q + c * P * np.sqrt(N.sum()) / (1 + N),
                "the prior P is missing from the exploration term: U = c_puct * P * sqrt(1 + sum N) / (1 + N)":
                    Q + c * root / (1 + N),
                "that is UCT (UCB1, with a log): PUCT is c_puct * P * sqrt(1 + sum N) / (1 + N)":
                    Q + c * np.sqrt(np.log(1 + N.sum()) / (1 + N)),
                "c_puct scales the whole score: it multiplies only the exploration term U":
                    c * (Q + P * root / (1 + N)),
                "that is only the exploration term: add the mean value Q = W / N": c * P * root / (1 + N),
                "that is only the mean value Q: add the exploration term c_puct * P * sqrt(1 + sum N) / (1 + N)": Q,
            }
            for bug, answer in wrong.items():
                if close(got, answer, atol=1e-6):
                    raise CheckFailed(f"{name}: {bug}")
            raise CheckFailed(f"{name}: expected {np.round(want, 3).tolist()}, got {np.round(got, 3).tolist()}: "
                              "Q + c_puct * P * sqrt(1 + N.sum()) / (1 + N), Q = W / N (0 where N = 0)")
    # hand-worked: a fresh node picks by the prior; a visited child's value and the shrinking bonus trade off
    with np.errstate(divide="ignore", invalid="ignore"):
        fresh = np.asarray(call(name, fn, np.zeros(3), np.zeros(3), np.array([0.2, 0.5, 0.3]), 1.0), dtype=float)
        worked = np.asarray(call(name, fn, np.array([3.0, 0.0]), np.array([3.0, 0.0]), np.array([0.5, 0.5]), 2.0),
                            dtype=float)
    expect(close(fresh, np.array([0.2, 0.5, 0.3]), atol=1e-9), name,
           f"a fresh node (no visits) should score exactly its prior, sqrt(1 + 0) / (1 + 0) = 1: got {fresh.tolist()}")
    expect(close(worked, np.array([1.5, 2.0]), atol=1e-9), name,
           f"W=[3, 0], N=[3, 0], P=[.5, .5], c_puct=2: Q=[1, 0], U=2*.5*2/[4, 1]=[.5, 2] -> [1.5, 2.0]; "
           f"got {worked.tolist()}")
    passed(name, "Q + c_puct P sqrt(1 + N) / (1 + N_a); a fresh node follows the prior")
