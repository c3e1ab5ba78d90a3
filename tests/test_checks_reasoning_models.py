"""The checks of 21_reasoning_models pass correct answers and catch the stub and plausible bugs."""
import statistics
from collections import Counter

import numpy as np
import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import reasoning_models as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ column_trace
def column_trace(numbers, n_digits=2, carry_in=True, left_first=False, carry_mod=False, pad=True, pad_answer=True):
    carry, steps = 0, []
    cols = range(n_digits - 1, -1, -1) if left_first else range(n_digits)
    for col in cols:
        s = (carry if carry_in else 0) + sum(n // 10**col % 10 for n in numbers)
        steps.append(f"{s:02d}" if pad else str(s))
        carry = s % 10 if carry_mod else s // 10
    total = f"{sum(numbers):0{n_digits + 1}d}" if pad_answer else str(sum(numbers))
    return ";".join(steps) + f";A{total}."


def test_column_trace_correct(capsys):
    check.column_trace(column_trace)
    assert "'27;19;A197.'" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda x, n=2: column_trace(x, n, carry_in=False), "carry is missing"),
    (lambda x, n=2: column_trace(x, n, left_first=True), "from the left"),
    (lambda x, n=2: column_trace(x, n, carry_mod=True), "s // 10"),
    (lambda x, n=2: column_trace(x, n, pad=False), "two digits"),
    (lambda x, n=2: column_trace(x, n, pad_answer=False), r"n_digits \+ 1 digits"),
    (lambda x, n=2: column_trace(x, 2), "n_digits=3"),  # ignores n_digits
    (lambda x, n=2: column_trace(x, n).removesuffix("."), "expected"),
    (lambda x, n=2: [column_trace(x, n)], "as a str"),
])
def test_column_trace_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.column_trace(bad)


# ------------------------------------------------------------------ majority_vote
def vote(answers):
    counts = Counter(a for a in answers if a is not None)
    return counts.most_common(1)[0][0] if counts else None


def test_majority_vote_correct(capsys):
    check.majority_vote(vote)
    assert "ties go to the first seen" in capsys.readouterr().out


def test_majority_vote_accepts_a_hand_written_loop():
    def loop(answers):
        counts = {}
        for a in answers:
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
        for a in answers:  # the first seen among the most common
            if a is not None and counts[a] == max(counts.values()):
                return a
        return None
    check.majority_vote(loop)


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda a: Counter(a).most_common(1)[0][0], "None"),  # None counted as an answer
    (lambda a: statistics.mode(a), "None"),
    (lambda a: max((x for x in a if x is not None), key=lambda x: (a.count(x), x), default=None), "tie"),
    (lambda a: max((x for x in a if x is not None), key=lambda x: (a.count(x), -x), default=None), "tie"),
    (lambda a: Counter(x for x in a if x is not None).most_common(1)[0][0], "raised"),  # crashes on all-None
    (lambda a: Counter(x for x in a if x is not None).most_common(1)[0] if any(x is not None for x in a) else None,
     "answer itself"),
    (lambda a: Counter(x for x in a if x is not None).most_common(1)[0][1] if any(x is not None for x in a) else None,
     "not its count"),
])
def test_majority_vote_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.majority_vote(bad)


def test_majority_vote_tie_to_the_last_seen_is_named():
    def last(answers):
        counts = Counter(a for a in answers if a is not None)
        if not counts:
            return None
        top = max(counts.values())
        return [a for a in answers if counts.get(a) == top][-1]
    with pytest.raises(CheckFailed, match="tie"):
        check.majority_vote(last)


# ------------------------------------------------------------------ verify_steps
verify = check._verify_variant  # the reference, whose flags give the usual bugs


def test_verify_steps_correct(capsys):
    check.verify_steps(verify)
    assert "passed" in capsys.readouterr().out


def test_verify_steps_accepts_tuples_of_numpy_bools():
    check.verify_steps(lambda x, c, n=2: tuple(np.array(verify(x, c, n))))


def naive(numbers, completion, n_digits=2):
    parts = completion.rstrip(".").split(";")  # crashes on malformed parts
    sums = [int(p) for p in parts[:n_digits]]
    out, carry = [], 0
    for col, s in enumerate(sums):
        out.append(s == carry + sum(n // 10**col % 10 for n in numbers))
        carry = s // 10
    spelled = int(str(sums[-1]) + "".join(str(s % 10) for s in reversed(sums[:-1])))
    return out + [int(parts[n_digits][1:]) == spelled]


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda x, c, n=2: verify(x, c, n, true_carry=True), "written"),
    (lambda x, c, n=2: verify(x, c, n, true_total=True), "spell"),
    (lambda x, c, n=2: verify(x, c, n, true_carry=True, true_total=True), "should be"),
    (lambda x, c, n=2: verify(x, c, n, no_carry=True), "carry"),
    (lambda x, c, n=2: verify(x, c, n, forward=True), "last sum down"),
    (naive, "raised"),
    (lambda x, c, n=2: all(verify(x, c, n)), "list of booleans"),
    (lambda x, c, n=2: verify(x, c, n)[:-1], "verdicts"),
    (lambda x, c, n=2: [c == check.reference_column_trace(x, n)] * (n + 1), "should be"),
])
def test_verify_steps_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.verify_steps(bad)


# ------------------------------------------------------------------ puct_scores
def puct(W, N, P, c_puct=1.0):
    Q = np.where(N > 0, W / np.maximum(N, 1), 0.0)
    return Q + c_puct * P * np.sqrt(1 + N.sum()) / (1 + N)


def test_puct_scores_correct(capsys):
    check.puct_scores(puct)
    assert "follows the prior" in capsys.readouterr().out


def test_puct_scores_accepts_the_where_with_a_warning():
    check.puct_scores(lambda W, N, P, c=1.0: np.where(N > 0, W / N, 0) + c * P * np.sqrt(1 + N.sum()) / (1 + N))


def q(W, N):
    return np.where(N > 0, W / np.maximum(N, 1), 0.0)


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda W, N, P, c=1.0: W / N + c * P * np.sqrt(1 + N.sum()) / (1 + N), "inf or nan"),
    (lambda W, N, P, c=1.0: q(W, N) + c * P * np.sqrt(1 + N.sum()) / N, "inf or nan"),
    (lambda W, N, P, c=1.0: W + c * P * np.sqrt(1 + N.sum()) / (1 + N), "total value"),
    (lambda W, N, P, c=1.0: q(W, N) + c * P * (1 + N.sum()) / (1 + N), "square root"),
    (lambda W, N, P, c=1.0: q(W, N) + c * P * np.sqrt(N.sum()) / (1 + N), "without the 1"),
    (lambda W, N, P, c=1.0: q(W, N) + c * np.sqrt(1 + N.sum()) / (1 + N), "prior P is missing"),
    (lambda W, N, P, c=1.0: q(W, N) + c * np.sqrt(np.log(1 + N.sum()) / (1 + N)), "UCT"),
    (lambda W, N, P, c=1.0: c * (q(W, N) + P * np.sqrt(1 + N.sum()) / (1 + N)), "whole score"),
    (lambda W, N, P, c=1.0: c * P * np.sqrt(1 + N.sum()) / (1 + N), "only the exploration"),
    (lambda W, N, P, c=1.0: q(W, N), "only the mean value"),
    (lambda W, N, P, c=1.0: float(puct(W, N, P, c).max()), "numpy array"),
    (lambda W, N, P, c=1.0: q(W, N) + P * np.sqrt(1 + N.sum()) / (1 + N), "expected"),  # ignores c_puct
])
def test_puct_scores_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.puct_scores(bad)
