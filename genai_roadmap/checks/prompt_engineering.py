"""Checks for phase3_architecture/14_prompt_engineering.ipynb.

Each check runs the learner's code on small seeded inputs, compares it with a short reference below
and one hand-worked case, and when the answer is wrong compares it with the usual wrong answers to
name the likely bug.
"""
from __future__ import annotations

import random
from typing import Callable

from genai_roadmap.checks._common import CheckFailed, call, expect, passed

_NAMES = ["Ada Brix", "Zeaval Vevearas", "Trutus Haifi", "Mo Quill", "Esha Varn", "Lio Stenhart", "Pim Oradell"]
_VALUES = ["pilot", "surgeon", "Quenford", "Vexco", "chess", "Lyric Bank", "Tessaly"]


# ------------------------------------------------------------------------------- exercise 1
def _fewshot_reference(demos, query, facts=""):
    return "".join(f"{name} -> {value}\n" for name, value in demos) + facts + f"{query} ->"


def fewshot_prompt(fn: Callable) -> None:
    """Exercise 1: `fn(demos, query, facts="")` -> the k-shot prompt: one ``name -> value`` line per demonstration,
    then the facts line, then ``query ->`` with no trailing space."""
    name = "fewshot_prompt"
    facts = "Facts: Esha Varn lives in Sollen. Esha Varn is a baker.\n"
    hand = call(name, fn, [("Ada Brix", "pilot"), ("Mo Quill", "nurse")], "Esha Varn", facts)
    want = "Ada Brix -> pilot\nMo Quill -> nurse\n" + facts + "Esha Varn ->"
    expect(isinstance(hand, str), name, f"return the prompt as a str, got {type(hand).__name__}")
    if hand != want:
        if hand == want + " ":
            raise CheckFailed(f"{name}: the prompt ends with a space after '->'. The model's answer token carries "
                              "its own leading space (' pilot' is one token 'Ġpilot'): a trailing space makes the "
                              "next token a space-less word it has never seen there. End with '->'")
        if hand.rstrip("\n") == want and hand != want:
            raise CheckFailed(f"{name}: the prompt ends with a newline: the query line must end with ' ->', the "
                              "open arrow the answer follows")
        if "pilot -> Ada Brix" in hand:
            raise CheckFailed(f"{name}: a demonstration is written value -> name; write name -> value")
        if "Ada Brix" not in hand:
            raise CheckFailed(f"{name}: the demonstrations are missing: one 'name -> value' line each")
        if hand.startswith(facts):
            raise CheckFailed(f"{name}: the facts come first. Put them after the demonstrations, on the line right "
                              "before the query: the model was trained to read the answer from the line next to "
                              "the question")
        if facts not in hand:
            raise CheckFailed(f"{name}: the facts line is missing: it goes, as given, right before the query line")
        raise CheckFailed(f"{name}: hand-worked case: expected {want!r}, got {hand!r}")
    zero = call(name, fn, [], "Esha Varn")
    expect(zero == "Esha Varn ->", name, f"with no demonstrations and no facts the prompt is just 'Esha Varn ->', "
           f"got {zero!r}")
    rng = random.Random(0)
    for k in (0, 1, 3, 6):
        demos = [(rng.choice(_NAMES), rng.choice(_VALUES)) for _ in range(k)]
        got = call(name, fn, list(demos), "Pim Oradell", facts)
        want = _fewshot_reference(demos, "Pim Oradell", facts)
        expect(got == want, name, f"with {k} demonstrations expected {want!r}, got {got!r}")
    passed(name, "'name -> value' lines, the facts, then 'query ->' (no trailing space)")


# ------------------------------------------------------------------------------- exercise 2
MARKER = "So the answer is "


def _extract_reference(completion):
    text = completion.strip()
    if MARKER in text:
        text = text.rsplit(MARKER, 1)[1]
    return text.strip().removesuffix(".").strip()


def extract_answer(fn: Callable) -> None:
    """Exercise 2: `fn(completion)` -> the final answer: the text after the last 'So the answer is ', without the
    final period; a completion without the marker is a direct answer (stripped, final period dropped)."""
    name = "extract_answer"
    cot = "Ada Brix works for Vexco. Vexco is based in Caldreth. So the answer is Caldreth."
    got = call(name, fn, cot)
    expect(isinstance(got, str), name, f"return the answer as a str, got {type(got).__name__}")
    if got != "Caldreth":
        if got == "Caldreth.":
            raise CheckFailed(f"{name}: the final period is kept: 'Caldreth.' != 'Caldreth' in an exact-match metric")
        if got == cot:
            raise CheckFailed(f"{name}: the whole completion came back: return only what follows "
                              f"{MARKER!r}")
        raise CheckFailed(f"{name}: hand-worked case {cot!r}: expected 'Caldreth', got {got!r}")
    twice = "So the answer is Vexco. Vexco is based in Sollen. So the answer is Sollen."
    got = call(name, fn, twice)
    if got != "Sollen":
        raise CheckFailed(f"{name}: with the marker twice ({twice!r}) the answer is after the last one: expected "
                          f"'Sollen', got {got!r} (split on the last occurrence: rsplit or rfind)")
    for direct, want in (("Caldreth", "Caldreth"), (" Fenwick Bay.", "Fenwick Bay")):
        got = call(name, fn, direct)
        expect(got == want, name, f"a direct answer {direct!r} (no marker) should give {want!r}, got {got!r}: "
               "without the marker the whole (stripped) completion is the answer")
    expect(call(name, fn, "So the answer is Ostrava Nova. ") == "Ostrava Nova", name,
           "'So the answer is Ostrava Nova. ' should give 'Ostrava Nova': strip spaces, then drop the period")
    passed(name, "the text after the last 'So the answer is ', no final period; direct answers as they are")


# ------------------------------------------------------------------------------- exercise 3
def _toy_automaton():
    """Digits, then '!' closes: '12!' is complete. State: 'd' (digits so far), '!' done; None = invalid."""
    def step(state, ch):
        if state == "!":
            return None
        if ch.isdigit() and len(state) < 3:
            return state + ch
        if ch == "!" and state:
            return "!"
        return None
    return step, (lambda state: state == "!")


def _mask_reference(state, token_texts, step, is_complete, eos_id):
    import torch

    mask = torch.zeros(len(token_texts), dtype=torch.bool)
    for t, text in enumerate(token_texts):
        s = state if text else None
        for ch in text:
            s = step(s, ch)
            if s is None:
                break
        mask[t] = s is not None
    mask[eos_id] = is_complete(state)
    return mask


def allowed_mask(fn: Callable) -> None:
    """Exercise 3: `fn(state, token_texts, step, is_complete, eos_id)` -> bool tensor (V,): True where every
    character of the token's (non-empty) text steps from `state` without None; the end token iff complete."""
    import torch

    name = "allowed_mask"
    step, is_complete = _toy_automaton()
    texts = ["", "1", "12", "!", "1!", "a", "1a", "!1", "1234", ""]  # id 0: a special token, id 9: the end token
    eos = 9

    def run(state):
        out = call(name, fn, state, list(texts), step, is_complete, eos)
        out = torch.as_tensor(out)
        expect(tuple(out.shape) == (len(texts),), name, f"return one bool per token: shape ({len(texts)},), got "
               f"{tuple(out.shape)}")
        return out.bool().tolist()

    got, want = run(""), _mask_reference("", texts, step, is_complete, eos).tolist()
    if got != want:
        if got[6] or got[7]:
            raise CheckFailed(f"{name}: token '1a' or '!1' is allowed from the start: check *every* character of "
                              "a token, not only the first (a token is several characters)")
        if got[0]:
            raise CheckFailed(f"{name}: a special token with empty text (id 0) is allowed: it would let the model "
                              "emit e.g. <|user|> in the middle of the JSON; skip tokens whose text is ''")
        if got[eos]:
            raise CheckFailed(f"{name}: the end token is allowed before the output is complete: it must be allowed "
                              "only when is_complete(state)")
        raise CheckFailed(f"{name}: from the start state expected {want}, got {got}")
    got, want = run("12"), _mask_reference("12", texts, step, is_complete, eos).tolist()
    if got != want:
        if got[8] or got[2]:
            raise CheckFailed(f"{name}: from '12', token '12' or '1234' would make more than 3 digits (the limit is 3): step through "
                              "all its characters from the given state")
        raise CheckFailed(f"{name}: from state '12' expected {want}, got {got}")
    got, want = run("!"), _mask_reference("!", texts, step, is_complete, eos).tolist()
    expect(got[eos], name, "after a complete output the end token must be allowed (is_complete(state) is True)")
    expect(got == want, name, f"after a complete output only the end token may follow: expected {want}, got {got}")
    passed(name, "every character of a token checked from the state; special tokens masked; end token only "
                 "when complete")


# ------------------------------------------------------------------------------- exercise 4
def _bootstrap_reference(program, trainset, metric, max_demos):
    demos = []
    for question, answer in trainset:
        output = program(question)
        if metric(answer, output):
            demos.append((question, output))
            if len(demos) == max_demos:
                break
    return demos


def bootstrap_demos(fn: Callable) -> None:
    """Exercise 4: `fn(program, trainset, metric, max_demos)` -> up to max_demos (question, program output)
    pairs, in trainset order, of the examples whose output passes metric(gold answer, output)."""
    name = "bootstrap_demos"
    # a fake program that reasons: right on even numbers, wrong on odd ones
    def program(question):
        n = int(question.split()[-1].rstrip("?"))
        return f"{n} plus {n} is {2 * n if n % 2 == 0 else 2 * n + 1}. So the answer is {2 * n if n % 2 == 0 else 2 * n + 1}."

    def metric(gold, output):
        return output.rsplit("So the answer is ", 1)[-1].rstrip(".") == gold

    trainset = [(f"What is double {n}?", str(2 * n)) for n in (3, 4, 5, 6, 8, 10, 7, 12)]
    calls = []

    def counting_program(question):
        calls.append(question)
        return program(question)

    got = call(name, fn, counting_program, list(trainset), metric, 3)
    want = _bootstrap_reference(program, trainset, metric, 3)
    expect(isinstance(got, list), name, f"return a list of (question, output) pairs, got {type(got).__name__}")
    got = [tuple(x) for x in got]
    if got != want:
        gold_pairs = [(q, a) for q, a in trainset]
        if got and all(g in gold_pairs for g in got):
            raise CheckFailed(f"{name}: the demonstrations hold the gold answers: keep the program's *output* (its "
                              "reasoning too), that is what bootstrapping adds over labelled examples")
        if any(q.endswith(("3?", "5?", "7?")) for q, _ in got):
            raise CheckFailed(f"{name}: a demonstration whose output fails the metric was kept: keep only "
                              "examples where metric(answer, output) is True")
        if len(got) > 3:
            raise CheckFailed(f"{name}: {len(got)} demonstrations returned for max_demos=3: stop at max_demos")
        if len(got) < 3:
            raise CheckFailed(f"{name}: only {len(got)} demonstrations; 3 of the examples pass the metric within "
                              "the first 5: go on through the trainset until max_demos pass")
        raise CheckFailed(f"{name}: expected {want}, got {got} (in trainset order)")
    expect(len(calls) <= 5, name, f"the program ran on {len(calls)} examples: stop once max_demos demonstrations "
           "passed (each program call costs an LLM call)")
    none = call(name, fn, program, [(q, "0") for q, _ in trainset], metric, 3)
    expect(list(none) == [], name, "when no output passes the metric, return []")
    passed(name, "program outputs kept when they pass the metric, in order, at most max_demos")
