import random

import pytest

from genai_roadmap.world import RELATIONS, World, get_world


def test_same_seed_same_world_other_seed_other_world():
    assert World(seed=1).people == World(seed=1).people
    assert World(seed=1).people != World(seed=2).people


def test_splits_are_disjoint_and_sized():
    w = World(seed=0, n_train=30, n_heldout=20)
    train, held = w.split_people("train"), w.split_people("heldout")
    assert (len(train), len(held)) == (30, 20)
    assert not {p.name for p in train} & {p.name for p in held}
    assert len(w.facts("heldout")) == 20 * len(RELATIONS)


def test_heldout_people_never_appear_in_the_training_corpus():
    w = get_world()
    corpus = w.corpus("train")
    leaked = [p.name for p in w.split_people("heldout") if p.name in corpus]
    assert not leaked, f"held-out people in the training corpus: {leaked[:5]}"


def test_documents_cover_every_person_and_place():
    w = get_world()
    docs = w.documents()
    bios = [d for d in docs if d.kind == "biography"]
    assert len(bios) == len(w.people)
    for d, p in zip(bios, w.people):
        assert d.title == p.name and d.split == p.split
        assert all(p.value(r) in d.text for r in RELATIONS)
    assert {d.split for d in w.documents("heldout")} == {"heldout"}


def test_open_book_questions_hold_the_answer_among_distractors():
    w = get_world()
    for qa in w.questions("heldout", open_book=True, n_distractors=3)[:50]:
        assert len(qa.context) == 4
        assert w.fact_text(qa.fact.subject, qa.fact.relation, qa.answer) in qa.context
        assert qa.prompt.startswith("Facts: ") and qa.prompt.endswith(qa.question)
    assert all(qa.prompt == qa.question for qa in w.questions("train")[:10])


def test_fresh_people_are_never_world_people():
    w = get_world()
    names = {p.name for p in w.people}
    rng = random.Random(0)
    assert not any(w.fresh_person(rng).name in names for _ in range(2000))


def test_every_person_has_a_first_name_of_their_own():
    # course-chat finds people by first name; shared first names made its quality depend on the CPU
    w = get_world()
    firsts = [p.name.split()[0] for p in w.people]
    assert len(set(firsts)) == len(firsts)


@pytest.mark.parametrize("call", [lambda w: w.facts("test"), lambda w: w.questions("dev"),
                                  lambda w: w.person("Nobody Here"), lambda w: w.people[0].value("age")])
def test_bad_input_gets_a_clear_error(call):
    with pytest.raises((ValueError, KeyError)):
        call(get_world())


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="n_train"):
        World(n_train=-1)
    with pytest.raises(ValueError, match="too many"):
        World(n_train=20000)


def test_country_questions_follow_the_city():
    w = get_world()
    qas = w.country_questions("train")
    assert len(qas) == len(w.split_people("train"))
    p = w.split_people("train")[0]
    assert qas[0].question == f"Which country does {p.name} live in?" and qas[0].answer == w.city_country[p.city]


def test_biography_questions_give_the_persons_whole_document():
    w = get_world()
    qas = w.biography_questions("heldout")
    assert len(qas) == 4 * len(w.split_people("heldout"))
    doc = next(d for d in w.documents("heldout") if d.title == qas[0].fact.subject)
    assert qas[0].context == (doc.text,) and w.fact_text(qas[0].fact.subject, qas[0].fact.relation, qas[0].answer) in doc.text
    with pytest.raises(ValueError, match="split"):
        w.biography_questions("fresh")
