"""Checks for phase2_tooling/07_langchain_and_llamaindex.ipynb.

Each check calls the learner's function on small seeded inputs, compares it with a trusted reference
(langchain_text_splitters' own sliding window, a short reference below, the course model's prompt format
``genai_roadmap.world.format_prompt``) and one hand-worked case, and when the answer is wrong compares it
with the usual wrong answers to name the likely bug.
"""
from __future__ import annotations

import random
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, not_implemented, passed

# ------------------------------------------------------------------------------- exercise 1


def _windows(text: str, chunk_size: int, overlap: int) -> list[str]:
    """The trusted reference: LangChain's token-window splitter, run on characters."""
    from langchain_text_splitters.base import Tokenizer, split_text_on_tokens

    tokenizer = Tokenizer(chunk_overlap=overlap, tokens_per_chunk=chunk_size,
                          decode=lambda ids: "".join(map(chr, ids)), encode=lambda s: [ord(c) for c in s])
    return split_text_on_tokens(text=text, tokenizer=tokenizer)


def _windows_variant(text: str, chunk_size: int, overlap: int, step_extra: int = 0, keep_tail: bool = True,
                     stop_at_end: bool = True) -> list[str]:
    """The usual wrong answers (for diagnosis only)."""
    step = chunk_size - overlap + step_extra
    out = []
    for start in range(0, max(len(text), 1), max(step, 1)):
        chunk = text[start:start + chunk_size]
        if not chunk or (not keep_tail and len(chunk) < chunk_size):
            break
        out.append(chunk)
        if stop_at_end and start + chunk_size >= len(text):
            break
    return out


def _chunk_cases() -> list[tuple[str, int, int]]:
    rng = random.Random(7)
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly box jugs".split()
    cases = [("abcdefghijkl", 5, 2), ("abcdefghij", 4, 1), ("abcdefghijk", 4, 1), ("short", 10, 3), ("abcdefgh", 3, 0)]
    for _ in range(6):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 30)))
        size = rng.randint(8, 40)
        cases.append((text, size, rng.randint(0, size // 2)))
    return cases


def sliding_window_chunks(fn: Callable) -> None:
    """Exercise 1: `fn(text, chunk_size, overlap)` -> windows of chunk_size characters, each starting
    chunk_size - overlap after the previous one, the last one reaching the end of the text."""
    name = "sliding_window_chunks"
    got = call(name, fn, "abcdefghij", 4, 1)
    expect(isinstance(got, list) and all(isinstance(c, str) for c in got), name,
           f"return a list of strings, got {type(got).__name__}")
    for text, size, overlap in _chunk_cases():
        got = list(call(name, fn, text, size, overlap))
        want = _windows(text, size, overlap)
        if got == want:
            continue
        where = f"on text of {len(text)} characters, chunk_size={size}, overlap={overlap}: "
        bugs = {
            "the chunks do not overlap: step by chunk_size - overlap, not chunk_size": _windows_variant(
                text, size, 0) if overlap else None,
            "consecutive chunks share one character too few: step by chunk_size - overlap, not "
            "chunk_size - overlap + 1": _windows_variant(text, size, overlap, step_extra=1),
            "consecutive chunks share one character too many: step by chunk_size - overlap": _windows_variant(
                text, size, overlap, step_extra=-1) if size - overlap > 1 else None,
            "the tail is missing: keep the last, shorter chunk": _windows_variant(text, size, overlap,
                                                                                 keep_tail=False),
            "an extra chunk lies inside the previous one: stop once a chunk reaches the end of the text":
                _windows_variant(text, size, overlap, stop_at_end=False),
        }
        for bug, wrong in bugs.items():
            if wrong is not None and got == wrong and wrong != want:
                raise CheckFailed(f"{name}: {where}{bug}")
        if "".join(got) and want and got[0] != want[0]:
            raise CheckFailed(f"{name}: {where}the first chunk should be {want[0]!r}, got {got[0]!r}")
        raise CheckFailed(f"{name}: {where}expected {want!r}, got {got!r}")
    for size, overlap in ((4, 4), (4, 5), (0, 0)):
        try:
            fn("abcdefgh", size, overlap)
        except ValueError:
            continue
        except NotImplementedError:
            raise not_implemented(name) from None
        except Exception as e:
            raise CheckFailed(f"{name}: chunk_size={size}, overlap={overlap} should raise ValueError, "
                              f"got {type(e).__name__}: {e}") from None
        raise CheckFailed(f"{name}: chunk_size={size}, overlap={overlap} never moves forward (or has no size): "
                          "raise ValueError unless 0 <= overlap < chunk_size")
    passed(name, "matches langchain_text_splitters' token-window splitter on "
                 f"{len(_chunk_cases())} texts, and 'abcdefghij' -> ['abcd', 'defg', 'ghij']")


# ------------------------------------------------------------------------------- exercise 2


def _doc(text: str):
    from langchain_core.documents import Document

    return Document(page_content=text)


def _format_docs(docs, max_chars: int = 170, sep: str = " ", budget: bool = True, whole_sentences: bool = True,
                 extra: int = 0, strip: bool = True) -> str:
    """The reference context assembly, with knobs that reproduce the usual bugs (for diagnosis only)."""
    text = sep.join(d.page_content.strip() if strip else d.page_content for d in docs)
    limit = max_chars + extra
    if not budget or len(text) <= limit:
        return text
    if not whole_sentences:
        return text[:limit]
    i = text.rfind(". ", 0, limit + 1)
    return text[:i + 1] if i >= 0 else text[:limit]


def _context_cases():
    rng = random.Random(3)
    names = ["Ada Quill", "Bo Tarn", "Cy Vell", "Di Marsh", "Ed Rook"]
    things = ["lives in Quenford", "is a pilot", "works for Vexco", "is into chess", "lives in Sollen",
              "is a baker", "works for Nimbus Air"]
    cases = [([_doc("Ann is a pilot. Ann lives in Sollen."), _doc("Bob is a baker.")], 200),
             ([_doc("Ann is a pilot. Ann lives in Sollen."), _doc("Bob is a baker.")], 36),
             ([_doc("Ann is a pilot.\n"), _doc("Bob is a baker.\n")], 100),  # files end with a newline
             ([_doc("Ann is a pilot. Ann lives in Sollen.")], 15),  # exactly the first sentence
             ([_doc("Ann is a pilot. Ann lives in Sollen.")], 14),  # no sentence fits: cut hard
             ([], 50)]
    for _ in range(8):
        docs = [_doc(" ".join(f"{rng.choice(names)} {rng.choice(things)}." for _ in range(rng.randint(1, 4))))
                for _ in range(rng.randint(1, 3))]
        cases.append((docs, rng.randint(30, 150)))
    return cases


def format_docs(fn: Callable) -> None:
    """Exercise 2: `fn(docs, max_chars)` joins the documents in order with one space, cut back to whole
    sentences that fit in max_chars."""
    name = "format_docs"
    for docs, max_chars in _context_cases():
        got = call(name, fn, docs, max_chars)
        want = _format_docs(docs, max_chars)
        expect(isinstance(got, str), name, f"return one string, got {type(got).__name__}")
        if got == want:
            continue
        where = f"with {len(docs)} documents and max_chars={max_chars}: "
        bugs = {
            "join the documents with a single space ' ': the course model was trained on facts joined that way "
            "(format_prompt)": [_format_docs(docs, max_chars, sep=s) for s in ("\n\n", "\n", "", " \n")],
            "the documents are out of order: keep the retriever's order (best match first)": [
                _format_docs(list(reversed(docs)), max_chars), _format_docs(
                    sorted(docs, key=lambda d: d.page_content), max_chars)],
            f"the context is longer than max_chars ({len(got)} > {max_chars}): cut it back": [
                _format_docs(docs, max_chars, budget=False), _format_docs(docs, max_chars, sep="\n\n", budget=False)],
            "the cut splits a sentence: cut back to the last '.' that fits (text[:i + 1])": [
                _format_docs(docs, max_chars, whole_sentences=False)],
            "off by one: the result may be exactly max_chars long, not one more": [
                _format_docs(docs, max_chars, extra=1)],
            "page_content not stripped: a file's trailing newline ends up in the prompt": [
                _format_docs(docs, max_chars, strip=False)],
        }
        for bug, wrongs in bugs.items():
            if any(got == w and w != want for w in wrongs):
                raise CheckFailed(f"{name}: {where}{bug}")
        if len(got) > max_chars:
            raise CheckFailed(f"{name}: {where}the context is longer than max_chars ({len(got)} > {max_chars})")
        raise CheckFailed(f"{name}: {where}expected {want!r}, got {got!r}")
    passed(name, f"{len(_context_cases())} contexts; order kept, one space between documents, whole sentences "
                 "within the budget")


# ------------------------------------------------------------------------------- exercise 3


class _Recorder:
    """A fake retriever and a fake chat model (RunnableLambdas) that record what the chain hands them."""

    def __init__(self, docs, answer: str = "Quenford"):
        from langchain_core.messages import AIMessage
        from langchain_core.runnables import RunnableLambda

        self.queries, self.prompts = [], []
        self.retriever = RunnableLambda(lambda q: (self.queries.append(q), list(docs))[1], name="fake_retriever")
        self.llm = RunnableLambda(lambda p: (self.prompts.append(p), AIMessage(content=answer))[1], name="fake_llm")


def _messages(prompt_value) -> list:
    if hasattr(prompt_value, "to_messages"):
        return prompt_value.to_messages()
    if isinstance(prompt_value, list):
        return prompt_value
    raise CheckFailed("build_rag_chain: the LLM received a plain "
                      f"{type(prompt_value).__name__}, not a prompt: put a ChatPromptTemplate before the llm")


def build_rag_chain(fn: Callable) -> None:
    """Exercise 3: `fn(retriever, llm, max_chars)` -> a Runnable question -> answer string whose prompt is
    exactly ``format_prompt(question, [context])`` with the context assembled by format_docs."""
    from langchain_core.runnables import Runnable

    from genai_roadmap.world import format_prompt

    name = "build_rag_chain"
    docs = [_doc("Ann Vell lives in Quenford. Ann Vell is a pilot. Ann Vell works for Vexco."),
            _doc("Bo Tarn lives in Sollen. Bo Tarn is a baker.")]
    question = "Which city is home to Ann Vell?"
    for max_chars in (500, 60):
        rec = _Recorder(docs)
        chain = call(name, fn, rec.retriever, rec.llm, max_chars)
        expect(isinstance(chain, Runnable), name,
               f"return a Runnable chain (built with |), got {type(chain).__name__}; don't call invoke inside")
        answer = call(name, chain.invoke, question)
        expect(len(rec.queries) == 1, name, f"the retriever should run once per question, ran {len(rec.queries)} times")
        expect(rec.queries[0] == question, name,
               f"the retriever should receive the question string, got {rec.queries[0]!r}: "
               "use RunnablePassthrough() for the question and pipe the same input into the retriever")
        expect(len(rec.prompts) == 1, name, f"the LLM should be called once, was called {len(rec.prompts)} times")
        messages = _messages(rec.prompts[0])
        expect(len(messages) == 1 and messages[0].type == "human", name,
               f"the LLM should receive one user (human) message, got {[m.type for m in messages]}: the course "
               "model was trained on a single user message, no system prompt")
        context = _format_docs(docs, max_chars)
        want = format_prompt(question, [context])
        got = messages[0].content
        if got != want:
            if got == format_prompt(question, [_format_docs(docs, 10_000)]):
                raise CheckFailed(f"{name}: max_chars={max_chars} was ignored: pass it on to format_docs")
            if "Document(" in got or "page_content" in got:
                raise CheckFailed(f"{name}: the prompt holds the Document objects themselves: pipe the retriever "
                                  "into format_docs to turn them into text")
            raise CheckFailed(f"{name}: the prompt the LLM received differs from format_prompt(question, [context])."
                              f"\n  expected: {want!r}\n  got:      {got!r}\n"
                              "The template must be exactly 'Facts: {context}\\nQuestion: {question}'")
        expect(isinstance(answer, str), name,
               f"the chain returned a {type(answer).__name__}, not a string: end it with StrOutputParser()")
        expect(answer == "Quenford", name, f"the chain should return the LLM's text 'Quenford', got {answer!r}")
    passed(name, "retriever -> format_docs -> 'Facts: ...\\nQuestion: ...' -> llm -> string, checked with a "
                 "fake retriever and a fake chat model")
