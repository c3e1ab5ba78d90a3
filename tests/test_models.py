"""The course models: build/cache/load mechanics (fast, on a tiny spec) and the chat model's quality
(slow: on the real built model, the one the notebooks load)."""
import dataclasses
import json
import threading

import pytest

from genai_roadmap import models
from genai_roadmap.world import get_world

TINY = dataclasses.replace(models.ModelSpec(), steps=4, d_model=32, d_ff=64, n_heads=2, vocab_size=400,
                           batch_size=4)


@pytest.fixture
def tiny_model(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_ROADMAP_CACHE", str(tmp_path))
    monkeypatch.setitem(models.MODELS, "tiny-test", TINY)
    return "tiny-test"


def test_build_load_roundtrip_through_from_pretrained(tiny_model, tmp_path):
    assert not models.is_built(tiny_model)
    model, tok = models.load(tiny_model)
    path = models.model_path(tiny_model)
    assert path.parent.parent == tmp_path and models.is_built(tiny_model)
    assert model.config.model_type == "llama" and model.config.hidden_size == 32
    assert json.loads((path / "build.json").read_text())["spec"]["steps"] == 4
    # the same call a learner makes with a hub id
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoTokenizer.from_pretrained(path).vocab_size == tok.vocab_size
    assert AutoModelForCausalLM.from_pretrained(path).num_parameters() == model.num_parameters()


def test_two_processes_asking_at_once_build_once(tiny_model):
    calls = []
    real_train = models._train_in_child
    models._train_in_child = lambda *a, **k: (calls.append(1), real_train(*a, **k))[1]
    try:
        threads = [threading.Thread(target=models.build, args=(tiny_model,), kwargs={"progress": False})
                   for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    finally:
        models._train_in_child = real_train
    assert len(calls) == 1 and models.is_built(tiny_model)


def _weights_digest(path) -> str:
    import hashlib

    from safetensors.numpy import load_file

    weights = load_file(path / "model.safetensors")
    return hashlib.sha256(b"".join(weights[k].tobytes() for k in sorted(weights))).hexdigest()


@pytest.mark.skipif(not models._pinnable(), reason="numerics are pinned on x86-64 only")
def test_builds_are_bit_identical_on_other_cpus_and_thread_counts(tiny_model, monkeypatch):
    """A CPU without AVX-512, simulated by holding MKL to AVX2, on one thread: the same weights, to the bit."""
    monkeypatch.setitem(models.MODELS, tiny_model, dataclasses.replace(TINY, steps=20, d_model=64, d_ff=128))
    first = _weights_digest(models.build(tiny_model, progress=False))
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _weights_digest(models.build(tiny_model, force=True, progress=False)) == first


def test_a_failed_build_says_how_to_see_why(tiny_model, monkeypatch):
    monkeypatch.setitem(models.MODELS, tiny_model, dataclasses.replace(TINY, n_heads=3))  # 32 % 3 != 0
    with pytest.raises(RuntimeError, match="(?s)building tiny-test failed .*python -m genai_roadmap.models build"):
        models.build(tiny_model, progress=False)
    assert not models.is_built(tiny_model)


def test_chat_template_renders_roles_and_generation_prompt(tiny_model):
    _, tok = models.load(tiny_model)
    text = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|bos|><|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>"
    assert tok.eos_token == "<|end|>"
    assert tok.decode(tok.encode("Où? 🙂 x", add_special_tokens=False)) == "Où? 🙂 x"


def test_unknown_model_names_say_what_exists():
    with pytest.raises(KeyError, match="course-chat"):
        models.load("gpt-5")
    with pytest.raises(TypeError, match="list of prompts"):
        models.chat(None, None, "a single string")


def test_packing_keeps_examples_whole_and_masks_padding():
    x, y = models._pack([[5, 6, 7], [8, 9], [1, 2, 3, 4]], seq_len=5, pad_id=0)
    assert x.tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 4, 0]]
    assert y.tolist()[1] == [1, 2, 3, 4, -100]


@pytest.mark.slow
def test_course_chat_quality():
    """Knows trained facts, not held-out ones, and reads held-out facts given in its prompt."""
    model, tok = models.load("course-chat")
    world = get_world(models.MODELS["course-chat"].world_seed)
    trained = models.exact_match(model, tok, world.questions("train"))
    closed = models.exact_match(model, tok, world.questions("heldout"))
    open2 = models.exact_match(model, tok, world.questions("heldout", open_book=True, n_distractors=2))
    open3 = models.exact_match(model, tok, world.questions("heldout", open_book=True, n_distractors=3))
    same2 = models.exact_match(model, tok, world.questions("heldout", open_book=True, n_distractors=2,
                                                           same_kind=True))
    bio = models.exact_match(model, tok, world.biography_questions("heldout"))
    print(f"course-chat: trained {trained:.1%}, held-out closed-book {closed:.1%}, open-book with 2 "
          f"distractors {open2:.1%}, with 3 {open3:.1%}, with 2 of the same kind {same2:.1%} (chance 33%), "
          f"from the whole biography {bio:.1%}")
    assert trained >= 0.90, f"closed-book accuracy on trained facts {trained:.1%} < 90%"
    assert closed <= 0.10, f"closed-book accuracy on held-out facts {closed:.1%} > 10%: leakage?"
    assert open2 >= 0.85, f"open-book accuracy with 2 distractors {open2:.1%} < 85%"
    assert open3 >= 0.75, f"open-book accuracy with 3 distractors {open3:.1%} < 75%"
    # what 07, 10 and 16 retrieve and 14's few-shot "Facts:" line hold; the build that read a person's four
    # sentences at 43% (07's 170-char budget) broke 07, 14 and 16
    assert bio >= 0.75, f"open-book accuracy from the person's whole biography {bio:.1%} < 75%"


@pytest.mark.slow
def test_course_instruct_quality():
    """The prompting skills of course-instruct, on people whose skill prompts it never saw in training (the
    numbers 14_prompt_engineering shows), and course-chat's facts kept."""
    import random

    from genai_roadmap import prompting as P
    from genai_roadmap.world import RELATIONS, question_text

    model, tok = models.load("course-instruct")
    world = get_world(models.MODELS["course-instruct"].world_seed)
    unseen = P.skill_people(world, "unseen")
    user = lambda text, system=None: ([{"role": "system", "content": system}] if system else []) + [  # noqa: E731
        {"role": "user", "content": text}]

    def rate(conversations, wants, max_new_tokens=16, parse=lambda a: a):
        answers = P.complete(model, tok, conversations, max_new_tokens)
        return sum(parse(a) == w for a, w in zip(answers, wants)) / len(wants)

    facts = rate([user(q.question) for q in world.questions("train")], [q.answer for q in world.questions("train")])
    rng = random.Random("fewshot-test")  # fresh people the training never drew
    fewshot = {}
    for k in (0, 4):
        items = [P.fewshot_item(world, rng, k, RELATIONS[i % 4]) for i in range(200)]
        fewshot[k] = rate([user(t) for t, _ in items], [w for _, w in items], 8)
    hq = [P.headquarters(world, p.company) for p in unseen]
    direct = rate([user(P.two_hop_question(p.name)) for p in unseen], hq, 8)
    cot = rate([user(P.two_hop_question(p.name) + P.COT_TRIGGER) for p in unseen], hq, 40, P.final_answer)
    styles = {s: rate([user(question_text(p.name, "job"), P.STYLES[s]) for p in unseen],
                      [P.styled_answer(world, p, "job", s) for p in unseen]) for s in P.STYLES}
    print(f"course-instruct: facts {facts:.0%}, few-shot k=0 {fewshot[0]:.0%} k=4 {fewshot[4]:.0%}, 2-hop direct "
          f"{direct:.0%} CoT {cot:.0%}, system prompts {styles}")
    assert facts >= 0.85, f"closed-book accuracy on trained facts {facts:.0%} < 85%: forgot course-chat's facts?"
    assert fewshot[0] <= 0.4 and fewshot[4] >= 0.75, f"few-shot k=0 {fewshot[0]:.0%}, k=4 {fewshot[4]:.0%}"
    assert cot >= 0.7 and cot >= direct + 0.2, f"2-hop direct {direct:.0%}, chain of thought {cot:.0%}"
    assert all(v >= 0.8 for v in styles.values()), f"system-prompt styles {styles}"


def test_packing_pairs_masks_prompts_and_padding():
    x, y = models._pack_pairs([([5, 6], [7]), ([8], [9]), ([1, 2, 3], [4])], seq_len=5, pad_id=0)
    assert x.tolist() == [[5, 6, 7, 8, 9], [1, 2, 3, 4, 0]]
    assert y.tolist() == [[-100, -100, 7, -100, 9], [-100, -100, -100, 4, -100]]


def test_course_instruct_key_follows_its_base():
    spec = models.MODELS["course-instruct"]
    assert spec.base == "course-chat" and spec.world_seed == models.MODELS["course-chat"].world_seed
    assert models.model_path("course-instruct").name.startswith("course-instruct-")
    assert spec.key() != dataclasses.replace(spec, steps=spec.steps + 1).key()


def test_grow_computes_the_same_function_and_checks_its_sizes():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                                        tie_word_embeddings=True)).eval()
    grown = models.grow(base, d_model=64, n_layers=4, n_heads=8, d_ff=96)
    assert grown.config.hidden_size == 64 and grown.config.num_hidden_layers == 4
    assert grown.num_parameters() > 3 * base.num_parameters()
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        assert torch.allclose(base(input_ids=ids).logits, grown(input_ids=ids).logits, atol=1e-5)
    # training makes the copies differ: the new units get gradients, so the grown model is not stuck at the base
    loss = grown(input_ids=ids, labels=ids).loss
    loss.backward()
    assert grown.model.layers[1].self_attn.o_proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="multiple of 32"):
        models.grow(base, d_model=48, n_layers=4, n_heads=6, d_ff=96)
    with pytest.raises(ValueError, match="none smaller"):
        models.grow(base, d_model=64, n_layers=1, n_heads=8, d_ff=96)


def test_course_large_key_follows_its_base():
    spec = models.MODELS["course-large"]
    assert spec.base == "course-chat"
    assert spec.key() != dataclasses.replace(spec, steps=spec.steps + 1).key()


@pytest.mark.slow
def test_course_large_shares_the_tokenizer_and_knows_more():
    """course-large (grown from course-chat) keeps its tokenizer and course-chat's facts, and knows facts course-chat
    was never taught (the country each train person lives in): routing and speculative decoding (notebooks 15 and
    18) rest on all three."""
    small, tok = models.load("course-chat")
    large, tok_large = models.load("course-large")
    assert tok_large.get_vocab() == tok.get_vocab()
    assert large.num_parameters() >= 8 * small.num_parameters()
    world = get_world(models.MODELS["course-chat"].world_seed)
    qas, countries = world.questions("train"), world.country_questions("train")
    em_small, em_large = models.exact_match(small, tok, qas), models.exact_match(large, tok, qas)
    c_small, c_large = models.exact_match(small, tok, countries), models.exact_match(large, tok, countries)
    open2 = models.exact_match(large, tok, world.questions("heldout", open_book=True, n_distractors=2))
    print(f"trained facts: course-chat {em_small:.1%}, course-large {em_large:.1%}; countries: course-chat "
          f"{c_small:.1%}, course-large {c_large:.1%}; large open-book {open2:.1%}")
    assert em_large >= em_small - 0.02, f"course-large {em_large:.1%} vs course-chat {em_small:.1%}"
    assert c_large >= 0.85 and c_small <= 0.3, f"countries: course-large {c_large:.1%}, course-chat {c_small:.1%}"
    assert open2 >= 0.85, f"course-large open-book accuracy with 2 distractors {open2:.1%} < 85%"
