"""The checks of 07_langchain_and_llamaindex pass correct answers and catch the stub and plausible bugs."""
import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import langchain_and_llamaindex as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ sliding_window_chunks
def chunks(text, chunk_size, overlap):
    if not 0 <= overlap < chunk_size:
        raise ValueError("need 0 <= overlap < chunk_size")
    out, start = [], 0
    while True:
        out.append(text[start:start + chunk_size])
        if start + chunk_size >= len(text):
            return out
        start += chunk_size - overlap


def chunks_off_by_one(text, chunk_size, overlap):
    if not 0 <= overlap < chunk_size:
        raise ValueError
    step = chunk_size - overlap + 1
    out = []
    for start in range(0, len(text), step):
        out.append(text[start:start + chunk_size])
        if start + chunk_size >= len(text):
            break
    return out


def chunks_drop_tail(text, chunk_size, overlap):
    if not 0 <= overlap < chunk_size:
        raise ValueError
    return [text[s:s + chunk_size] for s in range(0, len(text) - chunk_size + 1, chunk_size - overlap)]


def chunks_range(text, chunk_size, overlap):  # one window too many at the end
    if not 0 <= overlap < chunk_size:
        raise ValueError
    return [text[s:s + chunk_size] for s in range(0, len(text), chunk_size - overlap)]


def chunks_no_overlap(text, chunk_size, overlap):
    if not 0 <= overlap < chunk_size:
        raise ValueError
    return [text[s:s + chunk_size] for s in range(0, len(text), chunk_size)]


def chunks_no_validation(text, chunk_size, overlap):
    if chunk_size - overlap <= 0:
        return [text[:chunk_size]]
    return chunks(text, chunk_size, overlap)


# ------------------------------------------------------------------ format_docs
def format_docs(docs, max_chars=170):
    text = " ".join(d.page_content.strip() for d in docs)
    if len(text) <= max_chars:
        return text
    i = text.rfind(". ", 0, max_chars + 1)
    return text[:i + 1] if i >= 0 else text[:max_chars]


def format_docs_newlines(docs, max_chars=170):
    text = "\n\n".join(d.page_content.strip() for d in docs)
    if len(text) <= max_chars:
        return text
    i = text.rfind(". ", 0, max_chars + 1)
    return text[:i + 1] if i >= 0 else text[:max_chars]


def format_docs_no_budget(docs, max_chars=170):
    return " ".join(d.page_content.strip() for d in docs)


def format_docs_hard_cut(docs, max_chars=170):
    return " ".join(d.page_content.strip() for d in docs)[:max_chars]


def format_docs_sorted(docs, max_chars=170):
    return format_docs(sorted(docs, key=lambda d: d.page_content), max_chars)


def format_docs_off_by_one(docs, max_chars=170):
    return format_docs(docs, max_chars + 1)


def format_docs_unstripped(docs, max_chars=170):
    text = " ".join(d.page_content for d in docs)
    if len(text) <= max_chars:
        return text
    i = text.rfind(". ", 0, max_chars + 1)
    return text[:i + 1] if i >= 0 else text[:max_chars]


# ------------------------------------------------------------------ build_rag_chain
PROMPT = ChatPromptTemplate.from_messages([("human", "Facts: {context}\nQuestion: {question}")])


def rag_chain(retriever, llm, max_chars=170):
    context = retriever | RunnableLambda(lambda docs: format_docs(docs, max_chars))
    return {"context": context, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()


def rag_chain_string_prompt(retriever, llm, max_chars=170):  # a PromptTemplate is fine too
    prompt = PromptTemplate.from_template("Facts: {context}\nQuestion: {question}")
    context = retriever | RunnableLambda(lambda docs: format_docs(docs, max_chars))
    return {"context": context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()


def rag_chain_no_parser(retriever, llm, max_chars=170):
    context = retriever | RunnableLambda(lambda docs: format_docs(docs, max_chars))
    return {"context": context, "question": RunnablePassthrough()} | PROMPT | llm


def rag_chain_tutorial_prompt(retriever, llm, max_chars=170):
    prompt = ChatPromptTemplate.from_messages([("human", "Context: {context}\n\nQuestion: {question}")])
    context = retriever | RunnableLambda(lambda docs: format_docs(docs, max_chars))
    return {"context": context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()


def rag_chain_system_prompt(retriever, llm, max_chars=170):
    prompt = ChatPromptTemplate.from_messages([("system", "Answer from the facts."),
                                               ("human", "Facts: {context}\nQuestion: {question}")])
    context = retriever | RunnableLambda(lambda docs: format_docs(docs, max_chars))
    return {"context": context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()


def rag_chain_ignores_budget(retriever, llm, max_chars=170):
    return rag_chain(retriever, llm)


def rag_chain_raw_docs(retriever, llm, max_chars=170):
    return {"context": retriever, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()


def rag_chain_invoked(retriever, llm, max_chars=170):
    return rag_chain(retriever, llm, max_chars).invoke("Which city is home to Ann Vell?")


# ------------------------------------------------------------------ tests
CASES = {
    "sliding_window_chunks": (chunks, [chunks_off_by_one, chunks_drop_tail, chunks_range, chunks_no_overlap,
                                       chunks_no_validation]),
    "format_docs": (format_docs, [format_docs_newlines, format_docs_no_budget, format_docs_hard_cut,
                                  format_docs_sorted, format_docs_off_by_one, format_docs_unstripped]),
    "build_rag_chain": (rag_chain, [rag_chain_no_parser, rag_chain_tutorial_prompt, rag_chain_system_prompt,
                                    rag_chain_ignores_budget, rag_chain_raw_docs, rag_chain_invoked]),
}


@pytest.mark.parametrize("name", CASES)
def test_correct_passes(name, capsys):
    good, _ = CASES[name]
    getattr(check, name)(good)
    assert capsys.readouterr().out.startswith(f"✓ {name} passed")


def test_string_prompt_template_also_passes(capsys):
    check.build_rag_chain(rag_chain_string_prompt)
    assert "✓ build_rag_chain passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", CASES)
def test_stub_fails(name):
    with pytest.raises(CheckFailed, match="not implemented yet"):
        getattr(check, name)(stub)


@pytest.mark.parametrize("name, bug", [(n, b) for n, (_, bugs) in CASES.items() for b in bugs],
                         ids=[b.__name__ for _, (_, bugs) in CASES.items() for b in bugs])
def test_bugs_fail(name, bug):
    with pytest.raises(CheckFailed):
        getattr(check, name)(bug)


@pytest.mark.parametrize("bug, words", [
    (chunks_off_by_one, "one character too few"), (chunks_drop_tail, "tail"), (chunks_range, "extra chunk"),
    (chunks_no_overlap, "do not overlap"), (chunks_no_validation, "ValueError"),
    (format_docs_newlines, "single space"), (format_docs_no_budget, "longer than max_chars"),
    (format_docs_hard_cut, "splits a sentence"), (format_docs_sorted, "order"), (format_docs_off_by_one, "off by one"),
    (format_docs_unstripped, "stripped"),
    (rag_chain_no_parser, "StrOutputParser"), (rag_chain_tutorial_prompt, "format_prompt"),
    (rag_chain_system_prompt, "one user"), (rag_chain_ignores_budget, "ignored"), (rag_chain_raw_docs, "Document"),
    (rag_chain_invoked, "Runnable"),
], ids=lambda x: getattr(x, "__name__", str(x)))
def test_failure_names_the_bug(bug, words):
    name = next(n for n, (_, bugs) in CASES.items() if bug in bugs)
    with pytest.raises(CheckFailed, match=words):
        getattr(check, name)(bug)
