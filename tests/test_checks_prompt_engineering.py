"""The checks of 14_prompt_engineering pass correct answers and catch the stub and plausible bugs."""
import pytest
import torch

from genai_roadmap.checks import CheckFailed
from genai_roadmap.checks import prompt_engineering as check


def stub(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------ fewshot_prompt
def fewshot_ok(demos, query, facts=""):
    return "".join(f"{n} -> {v}\n" for n, v in demos) + facts + f"{query} ->"


def fewshot_joined(demos, query, facts=""):  # another correct way
    return "\n".join([f"{n} -> {v}" for n, v in demos] + [f"{facts}{query} ->"])


@pytest.mark.parametrize("good", [fewshot_ok, fewshot_joined])
def test_fewshot_prompt_correct(good, capsys):
    check.fewshot_prompt(good)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (lambda demos, query, facts="": fewshot_ok(demos, query, facts) + " ", "space"),
    (lambda demos, query, facts="": fewshot_ok(demos, query, facts) + "\n", "newline"),
    (lambda demos, query, facts="": facts + fewshot_ok(demos, query), "facts come first"),
    (lambda demos, query, facts="": "".join(f"{v} -> {n}\n" for n, v in demos) + facts + f"{query} ->",
     "value -> name"),
    (lambda demos, query, facts="": facts + f"{query} ->" if demos else f"{query} ->", "missing"),
    (lambda demos, query, facts="": fewshot_ok(demos, query), "facts line is missing"),
    (lambda demos, query, facts="": "".join(f"{n}: {v}\n" for n, v in demos) + facts + f"{query}:", "expected"),
])
def test_fewshot_prompt_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.fewshot_prompt(bad)


# ------------------------------------------------------------------ extract_answer
def extract_ok(completion):
    text = completion.strip()
    if "So the answer is " in text:
        text = text.rsplit("So the answer is ", 1)[1]
    return text.strip().removesuffix(".").strip()


def extract_first(completion):
    text = completion.strip()
    if "So the answer is " in text:
        text = text.split("So the answer is ")[1]
    return text.strip().removesuffix(".").split(".")[0]


def extract_keeps_period(completion):
    return completion.rsplit("So the answer is ", 1)[-1].strip()


def extract_none_without_marker(completion):
    if "So the answer is " not in completion:
        return ""
    return completion.rsplit("So the answer is ", 1)[1].strip().removesuffix(".")


def test_extract_answer_correct(capsys):
    check.extract_answer(extract_ok)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (extract_first, "last"),
    (extract_keeps_period, "period"),
    (extract_none_without_marker, "direct answer"),
    (lambda c: c, "whole completion"),
])
def test_extract_answer_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.extract_answer(bad)


# ------------------------------------------------------------------ allowed_mask
def mask_ok(state, token_texts, step, is_complete, eos_id):
    mask = torch.zeros(len(token_texts), dtype=torch.bool)
    for t, text in enumerate(token_texts):
        if not text:
            continue
        s = state
        for ch in text:
            s = step(s, ch)
            if s is None:
                break
        mask[t] = s is not None
    mask[eos_id] = is_complete(state)
    return mask


def mask_first_char(state, token_texts, step, is_complete, eos_id):
    mask = torch.tensor([bool(t) and step(state, t[0]) is not None for t in token_texts])
    mask[eos_id] = is_complete(state)
    return mask


def mask_specials_allowed(state, token_texts, step, is_complete, eos_id):
    mask = mask_ok(state, token_texts, step, is_complete, eos_id)
    mask |= torch.tensor([t == "" for t in token_texts])
    mask[eos_id] = is_complete(state)
    return mask


def mask_eos_always(state, token_texts, step, is_complete, eos_id):
    mask = mask_ok(state, token_texts, step, is_complete, eos_id)
    mask[eos_id] = True
    return mask


def mask_eos_never(state, token_texts, step, is_complete, eos_id):
    mask = mask_ok(state, token_texts, step, is_complete, eos_id)
    mask[eos_id] = False
    return mask


def test_allowed_mask_correct(capsys):
    check.allowed_mask(mask_ok)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (mask_first_char, "every"),
    (mask_specials_allowed, "special token"),
    (mask_eos_always, "end token is allowed before"),
    (mask_eos_never, "end token must be allowed"),
    (lambda s, texts, step, done, eos: torch.ones(len(texts), dtype=torch.bool), "every"),
])
def test_allowed_mask_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.allowed_mask(bad)


# ------------------------------------------------------------------ bootstrap_demos
def bootstrap_ok(program, trainset, metric, max_demos):
    demos = []
    for question, answer in trainset:
        output = program(question)
        if metric(answer, output):
            demos.append((question, output))
            if len(demos) == max_demos:
                break
    return demos


def bootstrap_gold(program, trainset, metric, max_demos):
    return [(q, a) for q, a in trainset if metric(a, program(q))][:max_demos]


def bootstrap_unfiltered(program, trainset, metric, max_demos):
    return [(q, program(q)) for q, _ in trainset][:max_demos]


def bootstrap_no_cap(program, trainset, metric, max_demos):
    return [(q, o) for q, a in trainset if metric(a, o := program(q))]


def bootstrap_runs_all(program, trainset, metric, max_demos):  # right answer, but calls the program on everything
    outputs = [(q, a, program(q)) for q, a in trainset]
    return [(q, o) for q, a, o in outputs if metric(a, o)][:max_demos]


def test_bootstrap_demos_correct(capsys):
    check.bootstrap_demos(bootstrap_ok)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    (stub, "not implemented"),
    (bootstrap_gold, "gold answers"),
    (bootstrap_unfiltered, "fails the metric"),
    (bootstrap_no_cap, "stop at max_demos"),
    (bootstrap_runs_all, "program ran on"),
    (lambda p, t, m, k: bootstrap_ok(p, t, lambda g, o: m(o, g), k), "only 0 demonstrations"),
])
def test_bootstrap_demos_bugs(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check.bootstrap_demos(bad)
