"""Checks for phase3_architecture/10_rag_systems.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with a trusted reference
(langchain_text_splitters' token-window splitter, rank_bm25's ``BM25Okapi``, a short reference below) and
one hand-worked case, and when the answer is wrong compares it with the usual wrong answers to name the
likely bug.
"""
from __future__ import annotations

import math
import random
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, not_implemented, passed

# ------------------------------------------------------------------------------- exercise 1: chunk_words


def _word_windows(text: str, chunk_size: int, overlap: int) -> list[str]:
    """The trusted reference: LangChain's token-window splitter, run on whitespace-separated words."""
    from langchain_text_splitters.base import Tokenizer, split_text_on_tokens

    words = text.split()
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    inverse = {i: w for w, i in vocab.items()}
    tokenizer = Tokenizer(chunk_overlap=overlap, tokens_per_chunk=chunk_size,
                          decode=lambda ids: " ".join(inverse[i] for i in ids),
                          encode=lambda s: [vocab[w] for w in s.split()])
    return split_text_on_tokens(text=text, tokenizer=tokenizer)


def _word_windows_variant(text: str, chunk_size: int, overlap: int, step_extra: int = 0, keep_tail: bool = True,
                          stop_at_end: bool = True) -> list[str]:
    """The usual wrong answers (for diagnosis only)."""
    words = text.split()
    step = chunk_size - overlap + step_extra
    out = []
    for start in range(0, max(len(words), 1), max(step, 1)):
        window = words[start:start + chunk_size]
        if not window or (not keep_tail and len(window) < chunk_size):
            break
        out.append(" ".join(window))
        if stop_at_end and start + chunk_size >= len(words):
            break
    return out


def _word_cases() -> list[tuple[str, int, int]]:
    rng = random.Random(10)
    vocab = ("Tessaly Vexco lives in is a baker works for into chess the city company of Quenford "
             "Aldoria pilot rowing").split()
    cases = [("a b c d e f g h i j", 4, 1), ("a b c d e f g h i j k", 4, 1), ("one two three", 5, 2),
             ("a b c d e f", 3, 0), ("a  b\tc\nd e f g", 3, 1)]
    for _ in range(8):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(6, 40)))
        size = rng.randint(3, 12)
        cases.append((text, size, rng.randint(0, size - 1)))
    return cases


def chunk_words(fn: Callable) -> None:
    """Exercise 1: `fn(text, chunk_size, overlap)` -> windows of chunk_size words joined by single spaces, each
    starting chunk_size - overlap words after the previous one, the last one reaching the end of the text."""
    name = "chunk_words"
    got = call(name, fn, "a b c d e f g h i j", 4, 1)
    expect(isinstance(got, list) and all(isinstance(c, str) for c in got), name,
           f"return a list of strings, got {type(got).__name__}")
    for text, size, overlap in _word_cases():
        got = list(call(name, fn, text, size, overlap))
        want = _word_windows(text, size, overlap)
        if got == want:
            continue
        where = f"on a text of {len(text.split())} words, chunk_size={size}, overlap={overlap}: "
        bugs = {
            "consecutive chunks share one word too few (overlap off by one): step by chunk_size - overlap, "
            "not chunk_size - overlap + 1": _word_windows_variant(text, size, overlap, step_extra=1),
            "consecutive chunks share one word too many (overlap off by one): step by chunk_size - overlap, "
            "not chunk_size - overlap - 1": _word_windows_variant(text, size, overlap, step_extra=-1)
            if size - overlap > 1 else None,
            "the tail is dropped: keep the last, shorter chunk so the end of the text is in some chunk":
                _word_windows_variant(text, size, overlap, keep_tail=False),
            "an extra chunk lies inside the previous one: stop once a chunk reaches the last word":
                _word_windows_variant(text, size, overlap, stop_at_end=False),
            "the chunks do not overlap: step by chunk_size - overlap words, not chunk_size": _word_windows_variant(
                text, size, 0) if overlap else None,
        }
        for bug, wrong in bugs.items():
            if wrong is not None and got == wrong and wrong != want:
                raise CheckFailed(f"{name}: {where}{bug}")
        if [c.split() for c in got] == [c.split() for c in want]:
            raise CheckFailed(f"{name}: {where}join each window's words with a single space ' '.join(words), "
                              f"expected {want!r}, got {got!r}")
        raise CheckFailed(f"{name}: {where}expected {want!r}, got {got!r}")
    for size, overlap in ((4, 4), (4, 6), (3, -1), (0, 0)):
        try:
            fn("a b c d e f g h", size, overlap)
        except ValueError:
            continue
        except NotImplementedError:
            raise not_implemented(name) from None
        except Exception as e:
            raise CheckFailed(f"{name}: chunk_size={size}, overlap={overlap} should raise ValueError, "
                              f"got {type(e).__name__}: {e}") from None
        raise CheckFailed(f"{name}: chunk_size={size}, overlap={overlap} never moves forward (or has no size): "
                          "raise ValueError unless 0 <= overlap < chunk_size")
    passed(name, f"matches langchain_text_splitters' token-window splitter on {len(_word_cases())} texts, and "
                 "'a b c d e f g h i j', 4, 1 -> ['a b c d', 'd e f g', 'g h i j']")


# ------------------------------------------------------------------------------- exercise 2: bm25_scores


def _bm25(query, corpus, k1=1.5, b=0.75, epsilon=0.25, idf="okapi", floor="okapi", length_norm=True,
          saturate=True, k1_plus_1=True, unique_query=False):
    """BM25 with knobs that reproduce the usual bugs (for diagnosis only); defaults equal BM25Okapi."""
    import numpy as np

    N = len(corpus)
    df: dict[str, int] = {}
    for doc in corpus:
        for t in set(doc):
            df[t] = df.get(t, 0) + 1
    avgdl = sum(len(d) for d in corpus) / N
    idfs = {}
    for t, n in df.items():
        if idf == "okapi":
            idfs[t] = math.log(N - n + 0.5) - math.log(n + 0.5)
        elif idf == "plain":
            idfs[t] = math.log(N / n)
        else:  # Lucene's, always positive
            idfs[t] = math.log(1 + (N - n + 0.5) / (n + 0.5))
    mean_idf = sum(idfs.values()) / len(idfs)
    if idf == "okapi":
        for t, v in list(idfs.items()):
            if v < 0:
                idfs[t] = epsilon * mean_idf if floor == "okapi" else (0.0 if floor == "zero" else v)
    terms = list(dict.fromkeys(query)) if unique_query else query
    scores = np.zeros(N)
    for j, doc in enumerate(corpus):
        norm = (1 - b + b * len(doc) / avgdl) if length_norm else 1.0
        for t in terms:
            tf = doc.count(t)
            if not tf or t not in idfs:
                continue
            if saturate:
                scores[j] += idfs[t] * tf * ((k1 + 1) if k1_plus_1 else 1) / (tf + k1 * norm)
            else:
                scores[j] += idfs[t] * tf
    return scores


def _bm25_cases():
    rng = random.Random(11)
    cases = [
        # hand-worked (see the notebook's hint): "cat" is in 1 of 3 documents, "the" in all three
        (["cat"], [["the", "cat", "sat"], ["the", "dog"], ["the", "dog", "ran", "far"]], 1.5, 0.75),
        (["the", "dog", "dog", "zebra"], [["the", "cat", "sat"], ["the", "dog"], ["the", "dog", "ran", "far"],
                                          ["a", "bird"], ["dog", "dog", "dog", "the", "end"]], 1.5, 0.75),
    ]
    vocab = ["vexco", "lives", "in", "tessaly", "baker", "chess", "is", "a", "the", "pilot", "rowing", "city"]
    for k1, b in ((1.5, 0.75), (1.2, 0.5), (2.0, 1.0), (0.9, 0.3)):
        corpus = [[rng.choice(vocab[:rng.randint(4, len(vocab))]) for _ in range(rng.randint(2, 12))]
                  for _ in range(rng.randint(6, 12))]
        corpus[0] += ["is", "is", "is", "is"]  # a term repeated in one document: tests tf saturation
        query = [rng.choice(vocab) for _ in range(rng.randint(2, 5))] + ["unseen", "is"]
        cases.append((query, corpus, k1, b))
    return cases


def bm25_scores(fn: Callable) -> None:
    """Exercise 2: `fn(query, corpus, k1, b, epsilon=0.25)` equals rank_bm25's BM25Okapi(corpus, k1, b).get_scores."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    name = "bm25_scores"
    for query, corpus, k1, b in _bm25_cases():
        expected = BM25Okapi(corpus, k1=k1, b=b, epsilon=0.25).get_scores(query)
        got = call(name, fn, list(query), [list(d) for d in corpus], k1, b)
        got = np.asarray(got, dtype=float)
        expect(got.shape == expected.shape, name, f"return one score per document: shape {expected.shape}, "
               f"got {got.shape}")
        if np.allclose(got, expected, atol=1e-6):
            continue
        args = (query, corpus, k1, b)
        bugs = {
            "idf is ln(N / n)? BM25Okapi uses ln((N - n + 0.5) / (n + 0.5))": _bm25(*args, idf="plain"),
            "idf is Lucene's ln(1 + (N - n + 0.5) / (n + 0.5))? BM25Okapi uses ln((N - n + 0.5) / (n + 0.5)), "
            "floored": _bm25(*args, idf="lucene"),
            "negative idf not floored: a term in more than half the documents gets idf = epsilon * mean idf "
            "(mean over every corpus term)": _bm25(*args, floor="none"),
            "negative idf set to 0: BM25Okapi sets it to epsilon * mean idf (mean over every corpus term)":
                _bm25(*args, floor="zero"),
            "no document-length normalisation: the denominator is tf + k1 * (1 - b + b * len(doc) / avgdl)":
                _bm25(*args, length_norm=False),
            "term frequency not saturated: use idf * tf * (k1 + 1) / (tf + k1 * norm), not idf * tf":
                _bm25(*args, saturate=False),
            "numerator missing (k1 + 1): idf * tf * (k1 + 1) / (tf + k1 * norm)": _bm25(*args, k1_plus_1=False),
            "a repeated query term counted once: BM25Okapi adds a term's score once per occurrence in the query":
                _bm25(*args, unique_query=True),
        }
        for bug, wrong in bugs.items():
            if np.allclose(got, wrong, atol=1e-6) and not np.allclose(wrong, expected, atol=1e-6):
                raise CheckFailed(f"{name}: {bug} (query {query}, k1={k1}, b={b})")
        err = float(np.abs(got - expected).max())
        raise CheckFailed(f"{name}: scores differ from BM25Okapi (max abs error {err:.3g}) for query {query}, "
                          f"corpus {corpus}, k1={k1}, b={b}: expected {np.round(expected, 4).tolist()}, "
                          f"got {np.round(got, 4).tolist()}")
    passed(name, f"matches rank_bm25.BM25Okapi on {len(_bm25_cases())} corpora (k1 and b varied, idf floor, "
                 "repeated and unseen query terms)")


# ------------------------------------------------------------------------------- exercise 3: RRF


def _rrf(rankings, k=60, start=1, union=True, combine="sum"):
    ids = list(dict.fromkeys(d for r in rankings for d in r))
    if not union:
        ids = [d for d in ids if all(d in r for r in rankings)]
    scores = {}
    for d in ids:
        parts = [1 / (k + r.index(d) + start) for r in rankings if d in r]
        scores[d] = sum(parts) if combine == "sum" else max(parts)
    return scores


def reciprocal_rank_fusion(fn: Callable) -> None:
    """Exercise 3: `fn(rankings, k=60)` -> [(doc_id, score), ...] best first, score = sum of 1 / (k + rank)."""
    name = "reciprocal_rank_fusion"
    rng = random.Random(12)
    # hand-worked: a = 1/61; b = 1/62 + 1/61; c = 1/63 + 1/62; d = 1/63
    cases = [([["a", "b", "c"], ["b", "c", "d"]], 60)]
    for _ in range(6):
        pool = list(range(12))
        rankings = [rng.sample(pool, rng.randint(3, 8)) for _ in range(rng.randint(2, 4))]
        cases.append((rankings, rng.choice([1, 10, 60])))
    for rankings, k in cases:
        got = call(name, fn, [list(r) for r in rankings], k)
        expect(isinstance(got, (list, tuple)), name, f"return a list of (doc_id, score) pairs, got {type(got).__name__}")
        try:
            pairs = [(d, float(s)) for d, s in got]
        except (TypeError, ValueError):
            raise CheckFailed(f"{name}: return a list of (doc_id, score) pairs, got {list(got)[:3]!r}...") from None
        want = _rrf(rankings, k)
        where = f"rankings {rankings}, k={k}: "
        got_scores = dict(pairs)
        expect(len(got_scores) == len(pairs), name, f"{where}each document must appear once in the fused list")
        if set(got_scores) != set(want):
            inter = _rrf(rankings, k, union=False)
            if set(got_scores) == set(inter):
                raise CheckFailed(f"{name}: {where}documents missing from one list were dropped: a document "
                                  "ranked by any retriever gets 1/(k + rank) from each list it appears in")
            raise CheckFailed(f"{name}: {where}expected documents {sorted(want)}, got {sorted(got_scores)}")
        if not all(math.isclose(got_scores[d], want[d], rel_tol=1e-9) for d in want):
            bugs = {
                "ranks counted from 0: the first document of a list has rank 1, score 1/(k + 1)":
                    _rrf(rankings, k, start=0),
                "ranks counted from 2? the first document has rank 1, score 1/(k + 1)": _rrf(rankings, k, start=2),
                "took the best (max) contribution instead of summing over the lists": _rrf(rankings, k, combine="max"),
                "k left out: the score is 1/(k + rank), not 1/rank": _rrf(rankings, 0),
            }
            for bug, wrong in bugs.items():
                if all(math.isclose(got_scores[d], wrong[d], rel_tol=1e-9) for d in want):
                    raise CheckFailed(f"{name}: {where}{bug}")
            d = next(d for d in want if not math.isclose(got_scores[d], want[d], rel_tol=1e-9))
            raise CheckFailed(f"{name}: {where}document {d!r} should score {want[d]:.6f}, got {got_scores[d]:.6f}")
        scores = [s for _, s in pairs]
        if any(a < b - 1e-15 for a, b in zip(scores, scores[1:])):
            if all(a <= b + 1e-15 for a, b in zip(scores, scores[1:])):
                raise CheckFailed(f"{name}: {where}sorted ascending: the best (highest) fused score comes first")
            raise CheckFailed(f"{name}: {where}not sorted: highest fused score first")
    passed(name, f"{len(cases)} fusions, including the hand-worked [a, b, c] + [b, c, d] -> b, c, a, d")


# ------------------------------------------------------------------------------- exercise 4: build_context


def _context(chunks, max_chars, skip=False, count_spaces=True, cut=False, reorder=False):
    order = sorted(chunks, key=len) if reorder else list(chunks)
    out, used = [], 0
    for c in order:
        extra = len(c) + (1 if out and count_spaces else 0)
        if used + extra <= max_chars:
            out.append(c)
            used += extra
        elif cut:
            room = max_chars - used - (1 if out else 0)
            if room > 0:
                out.append(c[:room])
            break
        elif not skip:
            break
    return out


def _context_cases():
    rng = random.Random(13)
    words = "Nimbus Air Tessaly lives in works for is a baker into chess pilot Quenford rowing".split()
    cases = [(["Ann lives in Tessaly.", "Ann is a baker.", "Bob works for Vexco."], 40),  # hand-worked
             (["Ann lives in Tessaly.", "Ann is a baker.", "Bob works for Vexco."], 37),  # an exact fit
             (["Ann lives in Tessaly.", "Ann is a baker.", "Bob works for Vexco."], 36),  # the space counts
             (["a long first chunk that fits", "a chunk that is too long to fit now", "short"], 40),
             (["too long for the budget"], 10), ([], 50)]
    for _ in range(8):
        chunks = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 8))) + "." for _ in range(rng.randint(2, 7))]
        cases.append((chunks, rng.randint(15, 120)))
    return cases


def build_context(fn: Callable) -> None:
    """Exercise 4: `fn(chunks, max_chars)` -> the longest prefix of the ranked chunks whose " ".join fits."""
    name = "build_context"
    for chunks, max_chars in _context_cases():
        got = call(name, fn, list(chunks), max_chars)
        expect(isinstance(got, (list, tuple)) and all(isinstance(c, str) for c in got), name,
               f"return a list of chunk strings, got {type(got).__name__}")
        got, want = list(got), _context(chunks, max_chars)
        if got == want:
            continue
        where = f"chunks {chunks}, max_chars={max_chars}: "
        if len(" ".join(got)) > max_chars:
            raise CheckFailed(f"{name}: {where}the context {' '.join(got)!r} has {len(' '.join(got))} characters, "
                              f"over the budget of {max_chars} (count the ' ' between chunks too)")
        if any(c not in chunks for c in got):
            raise CheckFailed(f"{name}: {where}a chunk was cut: keep whole chunks only, stop at the first that "
                              "does not fit")
        bugs = {
            "a lower-ranked chunk jumped over one that did not fit: stop at the first chunk that does not fit, "
            "the context must be a prefix of the ranking": _context(chunks, max_chars, skip=True),
            "chunks reordered: keep the retriever's order (best first)": _context(chunks, max_chars, reorder=True),
        }
        for bug, wrong in bugs.items():
            if got == wrong:
                raise CheckFailed(f"{name}: {where}{bug}")
        if got == want[:len(got)]:
            raise CheckFailed(f"{name}: {where}stopped too early: {want[len(got)]!r} still fits (the joined length "
                              f"may equal max_chars); expected {want!r}")
        raise CheckFailed(f"{name}: {where}expected {want!r}, got {got!r}")
    passed(name, f"{len(_context_cases())} rankings: whole chunks, rank order kept, ' '.join(context) within budget")
