"""The prompt formats of course-instruct, and the data that taught them (phase3_architecture/14_prompt_engineering.ipynb).

course-chat knows facts and copies answers from facts in its prompt; it was never shown a few-shot prompt, a
system prompt, a chain of thought or JSON. A tiny model does not pick those up from scale the way a large one
does, so course-instruct (genai_roadmap.models) is course-chat trained further on one multi-task instruction
mixture, the generators below. Every skill but few-shot (see below) is trained on prompts about the first half
of the world's train people (``skill_people(world, "seen")``) and measured on the other half (``"unseen"``),
people whose facts the model knows but whose skill prompts it never saw.

The skills, with their exact formats. One rule shaped them, measured on unseen people: a model this small
recalls a fact best as the *first* word of its reply, where course-chat learnt to write it. Formats that make it
write a preamble first lose a quarter of the answers or more (see the comments below).

- few-shot task identification: ``"Ada Brix -> pilot\\nZeaval Vevearas -> surgeon\\n"``, then X's four facts on
  one line, then ``"X ->"``, answered with X's job: the demonstrations say which of the four facts is asked
  (zero-shot, ``"X ->"`` is ambiguous). X and the demonstration people are freshly invented, a new draw for every
  example, so the skill cannot be memorised per person: it must be learnt. The facts sit next to the query: with
  them on the first line, above the demonstrations, accuracy peaked at k = 1 (73%) and fell as demonstrations
  pushed them away (k = 8: 30%), the wrong replies copying demonstration values. (Asked about the train people's
  *memorised* facts instead, course-instruct learnt the format for the people it practised on, 100%, and
  transferred it to the others a third of the time: a tiny model's knowledge is bound to the formats it was
  stored in.)
- course-chat's closed-book questions asked in other words (:data:`PARAPHRASES`), about all 200 train people:
  knowledge augmentation (Allen-Zhu and Li 2023, "Physics of language models 3.1": facts seen in one phrasing
  only are hard to extract in any other). This is knowledge, not a skill prompt: no unseen person's skill prompt
  is ever trained.
- company headquarters, a fact course-chat never saw: ``"Where is Vexco based?"`` -> ``"Caldreth"``;
- a 2-hop question, ``"Where is the company of X based?"``, answered directly or, after ``" Think step by
  step."``, with the reasoning written out, the intermediate fact first: ``"Vexco, which is based in Caldreth. So
  the answer is Caldreth."`` (after a preamble, ``"Let's see: the company is Vexco, ..."``, the company was right
  for 53% of the unseen people; "X works for Vexco" failed too: the model wrote a practised person's name);
- system prompts that set the answer style (:data:`STYLES`), the value first: ``"pilot is the job."``,
  ``"pilot. Happy to help!"`` (written ``"The job is pilot."`` and ``"Of course! It is pilot."``, 72% and 77% of
  the values were right on unseen people, against 99% with "value only");
- extraction of a short text (on the line after the instruction) into JSON (``json.dumps`` layout, keys name,
  city, job, age);
- the 2-hop question after k demonstrations ``"Q: ...\\nA: ...\\n"``: the answer follows the demonstrations'
  format (direct or reasoned), as large models do with few-shot chain-of-thought prompts.
"""
from __future__ import annotations

import json
import random

from genai_roadmap.world import RELATIONS, Person, World, question_text

BOS, END = "<|bos|>", "<|end|>"
COT_TRIGGER = " Think step by step."
STYLES = {  # system prompt -> how the answer is written
    "value": "Answer with the value only.",
    "sentence": "Answer in a full sentence.",
    "polite": "Be polite.",
}
JSON_INSTRUCTION = "Extract name, city, job and age as JSON."


def skill_people(world: World, part: str) -> list[Person]:
    """The train people whose skill prompts are trained ("seen", the first 100) or only tested ("unseen")."""
    train = world.split_people("train")
    if part not in ("seen", "unseen"):
        raise ValueError(f"part must be 'seen' or 'unseen', got {part!r}")
    return train[: len(train) // 2] if part == "seen" else train[len(train) // 2:]


def render(messages: list[dict], assistant: str | None = None) -> str:
    """A conversation as course-chat's chat template renders it (generation prompt, answer when given)."""
    text = BOS + "".join(f"<|{m['role']}|>{m['content']}{END}" for m in messages) + "<|assistant|>"
    return text if assistant is None else text + assistant + END


# ------------------------------------------------------------------------------------------ the skills
def fewshot_prompt(demos: list[tuple[str, str]], query: str, facts: str = "") -> str:
    """``name -> value`` lines, then `facts` (a line of the query's facts), the query name and an open arrow."""
    return "".join(f"{name} -> {value}\n" for name, value in demos) + facts + f"{query} ->"


def fewshot_facts(person: Person, rng: random.Random) -> str:
    """The query person's four facts, shuffled, on the line before a few-shot prompt."""
    sentences = [World.fact_text(person.name, r, person.value(r)) for r in RELATIONS]
    rng.shuffle(sentences)
    return "Facts: " + " ".join(sentences) + "\n"


def fewshot_item(world: World, rng: random.Random, k: int, relation: str) -> tuple[str, str]:
    """A k-shot prompt about a freshly invented person asking `relation`, demonstrations about other fresh people:
    (prompt, answer)."""
    p, *demo_people = [world.fresh_person(rng) for _ in range(k + 1)]
    demos = [(d.name, d.value(relation)) for d in demo_people]
    return fewshot_prompt(demos, p.name, fewshot_facts(p, rng)), p.value(relation)


def headquarters(world: World, company: str) -> str:
    return world.company_info[company][1]


def two_hop_question(name: str) -> str:
    return f"Where is the company of {name} based?"


def cot_answer(world: World, p: Person) -> str:
    """The reasoning written out: the intermediate fact (the company), its headquarters, then the answer."""
    hq = headquarters(world, p.company)
    return f"{p.company}, which is based in {hq}. So the answer is {hq}."


def styled_answer(world: World, p: Person, relation: str, style: str) -> str:
    value = p.value(relation)
    if style == "sentence":
        return f"{value} is the {relation}."
    return f"{value}. Happy to help!" if style == "polite" else value


def json_text(rng: random.Random, p: Person, age: int) -> str:
    """A short text about a person: city, job and age in any order, sometimes one more fact."""
    sentences = [World.fact_text(p.name, "city", p.city), World.fact_text(p.name, "job", p.job),
                 f"{p.name} is {age} years old."]
    if rng.random() < 0.5:
        r = rng.choice(("company", "hobby"))
        sentences.append(World.fact_text(p.name, r, p.value(r)))
    rng.shuffle(sentences)
    return " ".join(sentences)


def json_answer(p: Person, age: int) -> str:
    return json.dumps({"name": p.name, "city": p.city, "job": p.job, "age": age})


def demo_prompt(demos: list[tuple[str, str]], question: str) -> str:
    """k demonstrations ``Q: ...\\nA: ...\\n``, then the question and an open ``A:``."""
    return "".join(f"Q: {q}\nA: {a}\n" for q, a in demos) + f"Q: {question}\nA:"


# ------------------------------------------------------------------------------------------ the mixture
PARAPHRASES = {  # other ways to ask course-chat's questions (world.question_text), for every train person
    "city": ("Where does {name} live?", "What is the home city of {name}?"),
    "job": ("What does {name} do for a living?", "What is the occupation of {name}?"),
    "company": ("Where does {name} work?", "What is the company of {name}?"),
    "hobby": ("What does {name} do for fun?", "What is the pastime of {name}?"),
}

MIX = {  # share of each kind of example in course-instruct's training batches
    "replay": 0.09,        # course-chat's own data (biographies, closed- and open-book questions)
    "paraphrase": 0.08,    # its facts asked in other words, about all 200 train people
    "headquarters": 0.05,
    "two_hop": 0.16,       # half direct, half with the reasoning written out
    "fewshot": 0.16,
    "system": 0.17,
    "json": 0.11,
    "demos": 0.18,
}


def skill_example(world: World, rng: random.Random, kind: str) -> tuple[str, str]:
    """One training example (prompt, answer) of `kind`; the loss covers the answer only."""
    seen = skill_people(world, "seen")
    if kind == "headquarters":
        company = rng.choice(list(world.company_info))
        if rng.random() < 0.5:
            return BOS, f"{company} is based in {headquarters(world, company)}.{END}"
        return render([{"role": "user", "content": f"Where is {company} based?"}]), headquarters(world, company) + END
    if kind == "paraphrase":
        p, relation = rng.choice(world.split_people("train")), rng.choice(RELATIONS)
        question = rng.choice(PARAPHRASES[relation]).format(name=p.name)
        return render([{"role": "user", "content": question}]), p.value(relation) + END
    if kind == "two_hop":
        p = rng.choice(seen)
        if rng.random() < 0.5:
            return render([{"role": "user", "content": two_hop_question(p.name)}]), headquarters(world, p.company) + END
        return render([{"role": "user", "content": two_hop_question(p.name) + COT_TRIGGER}]), cot_answer(world, p) + END
    if kind == "fewshot":  # zero-shot is ambiguous: then any relation is a right guess of the format
        prompt, answer = fewshot_item(world, rng, rng.randint(0, 8), rng.choice(RELATIONS))
        return render([{"role": "user", "content": prompt}]), answer + END
    if kind == "system":
        p, relation = rng.choice(seen), rng.choice(RELATIONS)
        style = rng.choice([None, *STYLES])
        messages = [{"role": "system", "content": STYLES[style]}] if style else []
        messages.append({"role": "user", "content": question_text(p.name, relation)})
        return render(messages), styled_answer(world, p, relation, style or "value") + END
    if kind == "json":
        p, age = world.fresh_person(rng), rng.randint(18, 80)
        user = f"{JSON_INSTRUCTION}\n{json_text(rng, p, age)}"
        return render([{"role": "user", "content": user}]), json_answer(p, age) + END
    if kind == "demos":
        p, *demo_people = rng.sample(seen, 4)
        reasoned = rng.random() < 0.5
        k = rng.randint(1, 3)
        demos = [(two_hop_question(d.name), cot_answer(world, d) if reasoned else headquarters(world, d.company))
                 for d in demo_people[:k]]
        answer = cot_answer(world, p) if reasoned else headquarters(world, p.company)
        return render([{"role": "user", "content": demo_prompt(demos, two_hop_question(p.name))}]), answer + END
    raise ValueError(f"unknown kind {kind!r}; choose from {sorted(MIX)}")


def instruct_examples(world: World, replay, rng: random.Random, n: int) -> list[tuple[str, str]]:
    """`n` (prompt, answer) pairs drawn with :data:`MIX`; `replay(rng)` gives one course-chat text."""
    kinds, weights = zip(*MIX.items())
    out = []
    for kind in rng.choices(kinds, weights, k=n):
        out.append(("", replay(rng)) if kind == "replay" else skill_example(world, rng, kind))
    return out




# ------------------------------------------------------------------------------------------ using it
def complete(model, tokenizer, conversations: list[list[dict]], max_new_tokens: int = 24,
             batch_size: int = 64) -> list[str]:
    """Greedy replies to conversations (lists of messages) through the chat template, batched.

    Taught in phase3_architecture/14_prompt_engineering.ipynb (there with logits processors and sampling).
    """
    import torch

    if not isinstance(conversations, list) or (conversations and not isinstance(conversations[0], list)):
        raise TypeError("complete() takes a list of conversations, each a list of {'role', 'content'} messages")
    tokenizer.padding_side = "left"
    replies = []
    for i in range(0, len(conversations), batch_size):
        texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                 for c in conversations[i: i + batch_size]]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        replies += tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [r.strip() for r in replies]


def final_answer(completion: str) -> str:
    """The text after the last "So the answer is ", without the final period (a direct answer as it is).

    Taught in phase3_architecture/14_prompt_engineering.ipynb.
    """
    text = completion.strip()
    if "So the answer is " in text:
        text = text.rsplit("So the answer is ", 1)[1]
    return text.strip().removesuffix(".").strip()
