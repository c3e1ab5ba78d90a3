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
    real_train = models._train
    models._train = lambda *a, **k: (calls.append(1), real_train(*a, **k))[1]
    try:
        threads = [threading.Thread(target=models.build, args=(tiny_model,), kwargs={"progress": False})
                   for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    finally:
        models._train = real_train
    assert len(calls) == 1 and models.is_built(tiny_model)


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
    print(f"course-chat: trained {trained:.1%}, held-out closed-book {closed:.1%}, open-book with 2 "
          f"distractors {open2:.1%}, with 3 {open3:.1%}, with 2 of the same kind {same2:.1%} (chance 33%)")
    assert trained >= 0.80, f"closed-book accuracy on trained facts {trained:.1%} < 80%"
    assert closed <= 0.10, f"closed-book accuracy on held-out facts {closed:.1%} > 10%: leakage?"
    assert open2 >= 0.85, f"open-book accuracy with 2 distractors {open2:.1%} < 85%"
    assert open3 >= 0.75, f"open-book accuracy with 3 distractors {open3:.1%} < 75%"
