"""The checks of 10_rag_systems pass correct answers and catch the stub and plausible bugs."""
import math

import numpy as np
import pytest

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import rag as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ chunk_words
def make_chunker(step_extra=0, keep_tail=True, stop_at_end=True, validate=True, joiner=" "):
    def chunk_words(text, chunk_size, overlap):
        if validate and not 0 <= overlap < chunk_size:
            raise ValueError("need 0 <= overlap < chunk_size")
        words, out, start = text.split(), [], 0
        step = max(1, chunk_size - overlap + step_extra)
        while True:
            window = words[start:start + chunk_size]
            if not window or (not keep_tail and len(window) < chunk_size):
                return out
            out.append(joiner.join(window))
            if stop_at_end and start + chunk_size >= len(words):
                return out
            start += step
    return chunk_words


def test_chunk_words_accepts_correct():
    check.chunk_words(make_chunker())


@pytest.mark.parametrize("fn, message", [
    (stub, "not implemented"),
    (make_chunker(step_extra=1), "one word too few"),
    (make_chunker(step_extra=-1), "one word too many"),
    (make_chunker(keep_tail=False), "tail is dropped"),
    (make_chunker(stop_at_end=False), "extra chunk"),
    (make_chunker(validate=False), "ValueError"),
    (make_chunker(joiner="  "), "single space"),
    (lambda text, size, overlap: [text[i:i + size] for i in range(0, len(text), size - overlap)], "chunk_words"),
])
def test_chunk_words_rejects(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check.chunk_words(fn)


# ------------------------------------------------------------------ bm25_scores
def make_bm25(idf_kind="okapi", floor=True, length_norm=True, saturate=True, k1_plus_1=True, unique=False):
    def bm25_scores(query, corpus, k1=1.5, b=0.75, epsilon=0.25):
        N = len(corpus)
        avgdl = sum(map(len, corpus)) / N
        df = {}
        for doc in corpus:
            for t in set(doc):
                df[t] = df.get(t, 0) + 1
        if idf_kind == "okapi":
            idf = {t: math.log((N - n + 0.5) / (n + 0.5)) for t, n in df.items()}
        elif idf_kind == "plain":
            idf = {t: math.log(N / n) for t, n in df.items()}
        else:
            idf = {t: math.log(1 + (N - n + 0.5) / (n + 0.5)) for t, n in df.items()}
        mean = sum(idf.values()) / len(idf)
        if floor:
            idf = {t: (v if v >= 0 else epsilon * mean) for t, v in idf.items()}
        scores = np.zeros(N)
        for j, doc in enumerate(corpus):
            norm = 1 - b + b * len(doc) / avgdl if length_norm else 1.0
            for t in (dict.fromkeys(query) if unique else query):
                tf = doc.count(t)
                if tf and t in idf:
                    scores[j] += idf[t] * (tf * ((k1 + 1) if k1_plus_1 else 1) / (tf + k1 * norm) if saturate else tf)
        return scores
    return bm25_scores


def test_bm25_accepts_correct():
    check.bm25_scores(make_bm25())


@pytest.mark.parametrize("fn, message", [
    (stub, "not implemented"),
    (make_bm25(idf_kind="plain"), "ln\\(N / n\\)"),
    (make_bm25(idf_kind="lucene"), "Lucene"),
    (make_bm25(floor=False), "not floored"),
    (make_bm25(length_norm=False), "length normalisation"),
    (make_bm25(saturate=False), "not saturated"),
    (make_bm25(k1_plus_1=False), "k1 \\+ 1"),
    (make_bm25(unique=True), "repeated query term"),
    (lambda query, corpus, k1=1.5, b=0.75, epsilon=0.25: np.zeros(len(corpus) + 1), "one score per document"),
])
def test_bm25_rejects(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check.bm25_scores(fn)


# ------------------------------------------------------------------ reciprocal_rank_fusion
def make_rrf(start=1, union=True, descending=True, combine=sum, use_k=True):
    def reciprocal_rank_fusion(rankings, k=60):
        scores = {}
        for ranking in rankings:
            for rank, doc in enumerate(ranking, start=start):
                scores.setdefault(doc, []).append(1 / ((k if use_k else 0) + rank))
        if not union:
            scores = {d: s for d, s in scores.items() if len(s) == len(rankings)}
        fused = {d: combine(s) for d, s in scores.items()}
        return sorted(fused.items(), key=lambda item: item[1], reverse=descending)
    return reciprocal_rank_fusion


def test_rrf_accepts_correct():
    check.reciprocal_rank_fusion(make_rrf())


@pytest.mark.parametrize("fn, message", [
    (stub, "not implemented"),
    (make_rrf(start=0), "ranks counted from 0"),
    (make_rrf(union=False), "dropped"),
    (make_rrf(descending=False), "ascending"),
    (make_rrf(combine=max), "max"),
    (make_rrf(use_k=False), "k left out"),
    (lambda rankings, k=60: {d: 1.0 for r in rankings for d in r}, "pairs"),
])
def test_rrf_rejects(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check.reciprocal_rank_fusion(fn)


# ------------------------------------------------------------------ build_context
def make_context(skip=False, spaces=True, cut=False, reorder=False, strict=False):
    def build_context(chunks, max_chars):
        out, used = [], 0
        for c in (sorted(chunks, key=len) if reorder else chunks):
            extra = len(c) + (1 if out and spaces else 0)
            if used + extra < max_chars or (not strict and used + extra == max_chars):
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
    return build_context


def test_build_context_accepts_correct():
    check.build_context(make_context())


@pytest.mark.parametrize("fn, message", [
    (stub, "not implemented"),
    (make_context(spaces=False), "over the budget"),
    (make_context(cut=True), "was cut"),
    (make_context(reorder=True), "reordered"),
    (make_context(skip=True), "jumped over"),
    (make_context(strict=True), "stopped too early"),
    (lambda chunks, max_chars: " ".join(chunks)[:max_chars], "list of chunk strings"),
])
def test_build_context_rejects(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check.build_context(fn)
