"""Checks for phase4_production/19_evaluation.ipynb.

Each check runs the learner's function on hand-worked cases and seeded random inputs, compares with a trusted
reference (rouge-score, scikit-learn, a reference below) and names the likely bug when the answer is wrong.
"""
from __future__ import annotations

import collections
import math
import random
import re
import string
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, passed


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


# ------------------------------------------------------------------------------- exercise 1: token F1


def _f1_reference(prediction: str, reference: str, counts: bool = True, normalise: bool = True) -> float:
    """SQuAD's token F1; `counts=False` (set intersection) and `normalise=False` give two usual wrong answers."""
    norm = normalize_answer if normalise else (lambda text: text)
    p, r = norm(prediction).split(), norm(reference).split()
    if not p or not r:
        return float(p == r)
    common = sum((collections.Counter(p) & collections.Counter(r)).values()) if counts else len(set(p) & set(r))
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def token_f1(fn: Callable) -> None:
    """Exercise 1: `fn(prediction, reference)` is SQuAD's token F1 on normalize_answer'd tokens."""
    name = "token_f1"
    hand = [("Blue Heron", "Blue Heron Labs", 0.8), ("the pilot.", "Pilot", 1.0), ("Quenford", "Vellmar", 0.0),
            ("", "", 1.0), ("", "Vellmar", 0.0), ("chess chess", "chess chess", 1.0), ("chess chess", "chess", 2 / 3)]
    for pred, ref, want in hand:
        got = call(name, fn, pred, ref)
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"{name}: return a float, got {type(got).__name__}") from None
        if abs(got - want) < 1e-9:
            continue
        if abs(got - _f1_reference(pred, ref, counts=False)) < 1e-9:
            raise CheckFailed(f"{name}: ({pred!r}, {ref!r}) gave {got:.3f}, want {want:.3f}: count repeated tokens "
                              "(Counter(p) & Counter(r)), not set intersection")
        if abs(got - _f1_reference(pred, ref, normalise=False)) < 1e-9:
            raise CheckFailed(f"{name}: ({pred!r}, {ref!r}) gave {got:.3f}, want {want:.3f}: normalise both with "
                              "normalize_answer before splitting (case, punctuation, articles)")
        if pred == "" or ref == "":
            raise CheckFailed(f"{name}: with an empty answer F1 is 1.0 if both are empty, else 0.0 (got {got})")
        raise CheckFailed(f"{name}: token_f1({pred!r}, {ref!r}) should be {want:.3f}, got {got:.3f}")
    rng = random.Random(0)
    words = ["the", "Blue", "heron", "labs", "pilot", "a", "chess,", "Quenford", "an", "fishing"]
    for _ in range(200):
        pred = " ".join(rng.choice(words) for _ in range(rng.randint(0, 5)))
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
        got, want = float(call(name, fn, pred, ref)), _f1_reference(pred, ref)
        expect(abs(got - want) < 1e-9, name, f"token_f1({pred!r}, {ref!r}) should be {want:.4f}, got {got:.4f}")
    passed(name, f"{len(hand)} hand cases (repeated tokens, normalisation, empty answers) and 200 random pairs")


# ------------------------------------------------------------------------------- exercise 2: ROUGE-L


def _lcs(a: list, b: list) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _longest_substring(a: list, b: list) -> int:
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else 0)
        best = max(best, max(cur))
        prev = cur
    return best


def rouge_l(fn: Callable) -> None:
    """Exercise 2: `fn(candidate_tokens, reference_tokens)` returns (precision, recall, f) of ROUGE-L, matching
    the rouge-score package (its tokenizer, no stemming)."""
    from rouge_score import rouge_scorer, tokenize

    name = "rouge_l"
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    cand, ref = "Ada Brix lives in Vellmar and is a pilot", "Ada Brix is a pilot and lives in Vellmar"
    ct, rt = tokenize.tokenize(cand, None), tokenize.tokenize(ref, None)
    out = call(name, fn, ct, rt)
    expect(isinstance(out, tuple) and len(out) == 3, name, "return a tuple (precision, recall, f)")
    p, r, f = (float(x) for x in out)
    want = scorer.score(ref, cand)["rougeL"]
    if abs(f - want.fmeasure) > 1e-9:
        sub = _longest_substring(ct, rt)
        if abs(p - sub / len(ct)) < 1e-9:
            raise CheckFailed(f"{name}: you computed the longest common *substring* ({sub} tokens): ROUGE-L uses "
                              f"the longest common *subsequence* ({_lcs(ct, rt)} tokens), gaps allowed")
        raise CheckFailed(f"{name}: on {cand!r} vs {ref!r} expected f = {want.fmeasure:.4f} (LCS {_lcs(ct, rt)}), got "
                          f"{f:.4f}")
    rng = random.Random(1)
    vocab = "ada brix lives in vellmar is a pilot and works for vexco".split()
    for _ in range(150):
        c = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 9)))
        r_ = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 9)))
        ct, rt = tokenize.tokenize(c, None), tokenize.tokenize(r_, None)
        p, r, f = (float(x) for x in call(name, fn, ct, rt))
        want = scorer.score(r_, c)["rougeL"]
        if abs(p - want.recall) < 1e-9 and abs(r - want.precision) < 1e-9 and abs(p - r) > 1e-9:
            raise CheckFailed(f"{name}: precision and recall are swapped: precision = LCS / len(candidate), "
                              "recall = LCS / len(reference)")
        expect(abs(p - want.precision) < 1e-9 and abs(r - want.recall) < 1e-9, name,
               f"on {c!r} vs {r_!r}: expected precision {want.precision:.4f}, recall {want.recall:.4f}; got "
               f"{p:.4f}, {r:.4f}")
        expect(abs(f - want.fmeasure) < 1e-9, name, f"on {c!r} vs {r_!r}: precision and recall right but f = "
               f"{f:.4f}, expected the harmonic mean {want.fmeasure:.4f} (0 when both are 0)")
    got = call(name, fn, [], ["a", "b"])
    expect(isinstance(got, tuple) and all(float(x) == 0.0 for x in got), name,
           f"an empty candidate shares nothing with the reference: return (0.0, 0.0, 0.0), got {got}")
    passed(name, "equals rouge-score's ROUGE-L precision, recall and F on 151 pairs, and (0, 0, 0) when empty")


# ------------------------------------------------------------------------------- exercise 3: Cohen's kappa


def cohen_kappa(fn: Callable) -> None:
    """Exercise 4: `fn(labels_a, labels_b)` is Cohen's kappa of two annotators' labels (any hashable labels)."""
    from sklearn.metrics import cohen_kappa_score

    name = "cohen_kappa"
    a = ["yes", "yes", "no", "yes", "no", "no", "yes", "yes", "no", "yes"]
    b = ["yes", "no", "no", "yes", "no", "yes", "no", "no", "no", "yes"]
    got = float(call(name, fn, list(a), list(b)))
    want = cohen_kappa_score(a, b)
    if abs(got - want) > 1e-9:
        agree = sum(x == y for x, y in zip(a, b)) / len(a)
        if abs(got - agree) < 1e-9:
            raise CheckFailed(f"{name}: {got:.2f} is the raw agreement p_o; kappa corrects it for chance: "
                              "(p_o - p_e) / (1 - p_e)")
        pa = collections.Counter(a)
        wrong_pe = sum((pa[k] / len(a)) ** 2 for k in pa)
        if abs(got - (agree - wrong_pe) / (1 - wrong_pe)) < 1e-9:
            raise CheckFailed(f"{name}: chance agreement p_e uses both annotators' label rates: "
                              "sum over labels of p_a(label) * p_b(label), not annotator A's twice")
        raise CheckFailed(f"{name}: expected {want:.4f} (p_o = {agree:.2f}), got {got:.4f}")
    rng = random.Random(2)
    for _ in range(100):
        n, labels = rng.randint(5, 60), rng.choice((["y", "n"], ["good", "ok", "bad"], [0, 1, 2, 3]))
        x = [rng.choice(labels) for _ in range(n)]
        y = [v if rng.random() < 0.6 else rng.choice(labels) for v in x]
        if len(set(x) | set(y)) == 1:
            continue
        got, want = float(call(name, fn, x, y)), cohen_kappa_score(x, y)
        expect(abs(got - want) < 1e-9, name, f"on {n} items with labels {labels}: expected {want:.4f}, got {got:.4f}")
    passed(name, "hand case and 100 random label pairs (2-4 labels) equal sklearn.metrics.cohen_kappa_score")


# ------------------------------------------------------------------------------- exercise 4: Bradley-Terry


def _bt_reference(wins):
    """The maximum-likelihood log-strengths, by direct numerical optimisation (not the MM iteration the exercise
    uses): minimise -sum_ij w_ij log sigmoid(s_i - s_j) over s with s_0 fixed, then centre."""
    import numpy as np
    from scipy.optimize import minimize

    w = np.asarray(wins, dtype=float)
    k = len(w)

    def nll(free):
        s = np.concatenate([[0.0], free])
        d = s[:, None] - s[None, :]
        value = (w * np.logaddexp(0, -d)).sum()
        g = w * (1 / (1 + np.exp(d)))          # d/d s_i of w_ij log(1 + e^-(s_i - s_j)) is -w_ij sigmoid(-d_ij)
        grad = -g.sum(1) + g.sum(0)
        return value, grad[1:]

    res = minimize(nll, np.zeros(k - 1), jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 1000})
    s = np.concatenate([[0.0], res.x])
    return s - s.mean()


def bradley_terry(fn: Callable) -> None:
    """Exercise 3: `fn(wins)` fits Bradley-Terry strengths to a (K, K) matrix, wins[i, j] = times i beat j;
    returns log-strengths (K,) with mean 0."""
    import numpy as np

    name = "bradley_terry"
    wins = np.array([[0, 3], [1, 0]])
    got = np.asarray(call(name, fn, wins.copy()), dtype=float)
    expect(got.shape == (2,), name, f"return one score per player, shape (2,), got {got.shape}")
    want = np.array([math.log(3) / 2, -math.log(3) / 2])  # p0 / p1 = 3 (won 3 of 4)
    if not np.allclose(got, want, atol=1e-4):
        if np.allclose(got, -want, atol=1e-4):
            raise CheckFailed(f"{name}: the scores are reversed: wins[i, j] counts i's wins over j, so player 0 "
                              "(3 wins of 4) must score higher")
        if abs(got.mean()) > 1e-6 and np.allclose(got - got.mean(), want, atol=1e-4):
            raise CheckFailed(f"{name}: right up to a constant: centre the log-strengths (mean 0)")
        raise CheckFailed(f"{name}: 0 beat 1 three times in four, so p0 / p1 = 3 and the centred log-strengths are "
                          f"±{math.log(3) / 2:.4f}; got {np.round(got, 4).tolist()}")
    rng = np.random.default_rng(0)
    for k in (3, 5, 6):
        true = rng.normal(0, 1, k)
        wins = np.zeros((k, k))
        for i in range(k):
            for j in range(i + 1, k):
                games = rng.integers(5, 40)
                a = rng.binomial(games, 1 / (1 + np.exp(true[j] - true[i])))
                wins[i, j], wins[j, i] = a + 1, games - a + 1  # +1: every player wins once, the MLE exists
        got = np.asarray(call(name, fn, wins.copy()), dtype=float)
        want = _bt_reference(wins)
        rate = wins.sum(1) / (wins + wins.T).sum(1)
        if not np.allclose(got, want, atol=1e-3):
            if np.allclose(np.argsort(got), np.argsort(rate)) and not np.allclose(got, want, atol=0.05):
                raise CheckFailed(f"{name}: your scores rank like the raw win rates but are not the Bradley-Terry "
                                  "maximum-likelihood strengths: iterate p_i = W_i / sum_j n_ij / (p_i + p_j) "
                                  "until it converges, then log and centre")
            raise CheckFailed(f"{name}: for {k} players expected {np.round(want, 3).tolist()}, got "
                              f"{np.round(got, 3).tolist()} (converged? centred?)")
    passed(name, "hand case (p0 / p1 = 3) and 3 random tournaments match the maximum-likelihood fit")
