"""world_passages / world_queries are deterministic and well-formed; embed_cached embeds once, then loads."""
import doctest

import numpy as np
import pytest

from genai_roadmap import vectors
from genai_roadmap.vectors import TEMPLATES, embed_cached, world_passages, world_queries
from genai_roadmap.world import RELATIONS, get_world


def test_passages_cover_every_fact_in_every_phrasing():
    ps = world_passages()
    world = get_world(0)
    assert len(ps) == len(world.people) * len(RELATIONS) * 13 == 20_800
    assert len({p.text for p in ps}) == len(ps), "every passage is a distinct text"
    assert all(len(TEMPLATES[r]) == 13 for r in RELATIONS)
    for p in ps[:: 997]:
        person = world.person(p.person)
        assert p.value == person.value(p.relation) and p.value in p.text and p.person in p.text
        assert p.city == person.city and p.split == person.split
        assert set(p.payload()) == {"text", "person", "relation", "value", "city", "split"}
    assert [p.text for p in world_passages()] == [p.text for p in ps]


def test_queries_are_world_questions():
    qs = world_queries(n=50)
    assert len(qs) == 50 and qs == world_queries(n=50)
    assert len({person for _, person, _ in qs}) == 50, "one question per person while n <= 400"
    world = get_world(0)
    for q, person, relation in qs:
        assert person in q and relation in RELATIONS
        world.person(person)


class FakeModel:
    calls = 0

    def encode(self, texts, **kwargs):
        FakeModel.calls += 1
        x = np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float64)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_embed_cached_embeds_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_ROADMAP_CACHE", str(tmp_path))
    FakeModel.calls = 0
    texts = ["a cat", "a banana", "dog"]
    first = embed_cached(texts, model=FakeModel(), model_name="fake")
    assert first.dtype == np.float32 and first.shape == (3, 3)
    second = embed_cached(texts, model=FakeModel(), model_name="fake")
    assert FakeModel.calls == 1 and np.array_equal(first, second)
    assert len(list((tmp_path / "embeddings").glob("*.npy"))) == 1
    embed_cached(texts[:2], model=FakeModel(), model_name="fake")  # other texts: another key
    embed_cached(texts, model=FakeModel(), model_name="other")     # another model: another key
    assert FakeModel.calls == 3 and len(list((tmp_path / "embeddings").glob("*.npy"))) == 3


def test_module_doctest():
    failures, _ = doctest.testmod(vectors)
    assert failures == 0


@pytest.mark.parametrize("n", [0, 1, 401])
def test_world_queries_any_n(n):
    assert len(world_queries(n=n)) == n
