"""The course world: a procedurally generated, fictional world of people, cities and companies.

Fictional on purpose: no pretrained model can know it, and every answer is checkable. Deterministic
by seed. Two explicit splits of people:

- ``"train"``: the course models are trained on their biographies and on questions about them;
- ``"heldout"``: never shown to a course model; only retrieval over the world's documents can answer
  questions about them.

>>> w = World(seed=0)
>>> p = w.people[0]
>>> w.fact_text(p.name, "city", p.city) == f"{p.name} lives in {p.city}."
True
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "qu", "r",
           "s", "sh", "st", "t", "th", "tr", "v", "w", "z"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
_CODAS = ["", "", "n", "l", "r", "s", "th", "m", "x", "nd", "rk", "v"]

CITIES = ["Quenford", "Marrowick", "Tessaly", "Brindlemoor", "Ostrava Nova", "Caldreth", "Vellmar",
          "Dunhallow", "Pryston", "Ashkarra", "Lumenport", "Greywater", "Sollen", "Korvath",
          "Elderglen", "Zarnow", "Hollowmere", "Fenwick Bay", "Irongate", "Mistral", "Thornbury",
          "Kestrel Falls", "Novaris", "Wyndham Cross"]
COUNTRIES = ["Aldoria", "Brevania", "Corvenia", "Drastol", "Estmark", "Farrowland"]
JOBS = ["baker", "pilot", "nurse", "carpenter", "chemist", "librarian", "architect", "farmer",
        "painter", "plumber", "teacher", "lawyer", "dentist", "sailor", "tailor", "engineer",
        "florist", "jeweler", "surgeon", "butcher"]
COMPANIES = ["Vexco", "Blue Heron Labs", "Orrin Motors", "Quillstone", "Tandem Foods", "Lyric Bank",
             "Grayline Shipping", "Pellucid Glass", "Saffron Textiles", "Nimbus Air", "Ketterly Mining",
             "Halcyon Health", "Brightwell Power", "Copperleaf Press", "Umbra Software", "Juniper Farms",
             "Redmont Steel", "Silverfin Fisheries", "Marble Arch Hotels", "Driftwood Toys"]
INDUSTRIES = ["software", "food", "banking", "shipping", "mining", "health care", "energy",
              "publishing", "textiles", "aviation"]
HOBBIES = ["chess", "sailing", "pottery", "archery", "gardening", "fencing", "birdwatching",
           "knitting", "rowing", "juggling", "painting", "climbing", "fishing", "cycling",
           "origami", "astronomy"]

RELATIONS = ("city", "job", "company", "hobby")
_MAX_PEOPLE = 20_000

# Every fact puts the value three tokens after the person's name, and every question ends with the
# name, so that "the value that follows this name" is one fixed-offset head plus one matching head away
# (an induction-style circuit). course-chat still does not learn to tell people apart this way within
# its build budget (see genai_roadmap/models.py), but it does learn to pick the fact of the asked kind.
_FACT_TEMPLATES = {
    "city": "{name} lives in {value}.",
    "job": "{name} is {a} {value}.",
    "company": "{name} works for {value}.",
    "hobby": "{name} is into {value}.",
}
_QUESTION_TEMPLATES = {
    "city": "Which city is home to {name}?",
    "job": "What is the job of {name}?",
    "company": "Which company employs {name}?",
    "hobby": "What is the hobby of {name}?",
}


@dataclass(frozen=True)
class Person:
    name: str
    city: str
    job: str
    company: str
    hobby: str
    split: str  # "train" or "heldout"

    def value(self, relation: str) -> str:
        if relation not in RELATIONS:
            raise ValueError(f"unknown relation {relation!r}; choose one of {RELATIONS}")
        return getattr(self, relation)


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    value: str
    split: str

    @property
    def text(self) -> str:
        return World.fact_text(self.subject, self.relation, self.value)


@dataclass(frozen=True)
class Document:
    doc_id: str
    kind: str  # "biography", "city", "company"
    title: str
    text: str
    split: str  # "train", "heldout" or "shared" (places and companies)


@dataclass(frozen=True)
class QA:
    """A question with its exact-match answer; ``context`` holds the given facts (open-book) or ''."""
    question: str
    answer: str
    fact: Fact
    context: tuple[str, ...] = field(default=())

    @property
    def prompt(self) -> str:
        """The user message: the question, preceded by the facts when open-book."""
        return format_prompt(self.question, self.context)


def format_prompt(question: str, context: tuple[str, ...] | list[str] = ()) -> str:
    if not context:
        return question
    return "Facts: " + " ".join(context) + "\nQuestion: " + question


def question_text(name: str, relation: str) -> str:
    return _QUESTION_TEMPLATES[relation].format(name=name)


def country_question(name: str) -> str:
    return f"Which country does {name} live in?"


class World:
    """A deterministic fictional world.

    Args:
        seed: the world's seed; the same seed always gives the same world.
        n_train: people whose facts the course models learn.
        n_heldout: people kept out of every course model's training (retrieval only).
    """

    def __init__(self, seed: int = 0, n_train: int = 200, n_heldout: int = 200):
        for label, n in (("n_train", n_train), ("n_heldout", n_heldout)):
            if not isinstance(n, int) or n < 0:
                raise ValueError(f"{label} must be a non-negative int, got {n!r}")
        self.seed = seed
        rng = random.Random(f"world-{seed}")
        n_people = n_train + n_heldout
        if n_people > _MAX_PEOPLE:
            raise ValueError(f"{n_people} people is too many for this world's name pool (at most {_MAX_PEOPLE})")
        # Every person of the world has a first name of their own. A model of course-chat's size finds a person
        # by the first name alone (phase5_frontier/22 shows it), so shared first names made what it learnt
        # depend on whether one training run happened to pick up last names too: 70% or 100% of the facts,
        # from the same code on two CPUs. Freshly invented people (open-book practice) may share a first name
        # with anyone: then only copying their whole name from the prompt, not recall, gets it right, which
        # every later lesson that writes a name into an answer or a tool call relies on.
        self.first_names = _unique_names(rng, n_people + 80, syllables=(1, 2))
        self.last_names = _unique_names(rng, 160, syllables=(2, 3), exclude=set(self.first_names))
        self.city_country = {c: rng.choice(COUNTRIES) for c in CITIES}
        self.company_info = {c: (rng.choice(INDUSTRIES), rng.choice(CITIES)) for c in COMPANIES}
        names = [f"{first} {rng.choice(self.last_names)}" for first in self.first_names[:n_people]]
        self.people: list[Person] = [
            Person(name, rng.choice(CITIES), rng.choice(JOBS), rng.choice(COMPANIES),
                   rng.choice(HOBBIES), "train" if i < n_train else "heldout")
            for i, name in enumerate(names)
        ]
        self._reserved = set(names)
        self._by_name = {p.name: p for p in self.people}

    # ---------------------------------------------------------------- people and facts
    def person(self, name: str) -> Person:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no person named {name!r} in World(seed={self.seed})") from None

    def split_people(self, split: str) -> list[Person]:
        _check_split(split)
        return [p for p in self.people if p.split == split]

    def facts(self, split: str | None = None) -> list[Fact]:
        """Every (person, relation, value) fact, optionally of one split."""
        people = self.people if split is None else self.split_people(split)
        return [Fact(p.name, r, p.value(r), p.split) for p in people for r in RELATIONS]

    @staticmethod
    def fact_text(name: str, relation: str, value: str) -> str:
        article = "an" if value[:1].lower() in "aeiou" else "a"
        return _FACT_TEMPLATES[relation].format(name=name, value=value, a=article)

    def fresh_person(self, rng: random.Random) -> Person:
        """A newly invented person, never one of the world's people (for open-book practice)."""
        while True:
            name = f"{rng.choice(self.first_names)} {rng.choice(self.last_names)}"
            if name not in self._reserved:
                return Person(name, rng.choice(CITIES), rng.choice(JOBS), rng.choice(COMPANIES),
                              rng.choice(HOBBIES), "fresh")

    # ---------------------------------------------------------------- text
    def biography(self, person: Person, rng: random.Random | None = None) -> str:
        """The person's facts as a short paragraph; `rng` shuffles the sentence order."""
        sentences = [self.fact_text(person.name, r, person.value(r)) for r in RELATIONS]
        if rng is not None:
            rng.shuffle(sentences)
        return " ".join(sentences)

    def closing_sentences(self, person: Person) -> str:
        """What a biography document says after the person's facts: their city's country, their company's industry."""
        return (f"{person.city} is a city in {self.city_country[person.city]}."
                f" {person.company} is a {self.company_info[person.company][0]} company.")

    def documents(self, split: str | None = None) -> list[Document]:
        """Biographies of the people (of `split`, or all), plus a page per city and per company."""
        if split is not None:
            _check_split(split)
        docs = []
        for i, p in enumerate(self.people):
            if split in (None, p.split):
                docs.append(Document(f"bio-{i:04d}", "biography", p.name,
                                     self.biography(p) + " " + self.closing_sentences(p), p.split))
        if split is None:
            for i, c in enumerate(CITIES):
                residents = sorted(p.name for p in self.split_people("train") if p.city == c)[:5]
                text = (f"{c} is a city in {self.city_country[c]}. "
                        f"Companies based in {c}: "
                        + (", ".join(k for k, (_, hq) in self.company_info.items() if hq == c) or "none")
                        + ". Residents include " + ", ".join(residents) + ".")
                docs.append(Document(f"city-{i:02d}", "city", c, text, "shared"))
            for i, (c, (industry, hq)) in enumerate(self.company_info.items()):
                text = f"{c} is a {industry} company based in {hq}, {self.city_country[hq]}."
                docs.append(Document(f"company-{i:02d}", "company", c, text, "shared"))
        return docs

    def corpus(self, split: str = "train") -> str:
        """Plain text of the documents (the biographies of `split` plus city and company pages)."""
        _check_split(split)
        docs = [d for d in self.documents() if d.split in (split, "shared")]
        return "\n".join(d.text for d in docs)

    # ---------------------------------------------------------------- questions
    def questions(self, split: str, open_book: bool = False, n_distractors: int = 2,
                  same_kind: bool = False, seed: int = 0) -> list[QA]:
        """One question per fact of `split`.

        Closed-book: just the question. Open-book: the fact is given in the prompt, shuffled among
        `n_distractors` other facts: the same person's other facts and other people's facts of other
        kinds, so the reader must find the fact that answers what was asked. With `same_kind=True` the
        distractors are other people's facts of the *same* kind ("X lives in A. Y lives in B."): only
        matching the person's name finds the answer, a much harder test for a tiny model.
        """
        _check_split(split)
        if n_distractors < 0:
            raise ValueError(f"n_distractors must be >= 0, got {n_distractors}")
        rng = random.Random(f"questions-{self.seed}-{split}-{open_book}-{n_distractors}-{same_kind}-{seed}")
        others = [p for p in self.people if p.split == split]
        out = []
        for f in self.facts(split):
            context: tuple[str, ...] = ()
            if open_book:
                person = self.person(f.subject)
                pool = [p for p in others if p.name != person.name]
                context = tuple(distractor_context(rng, person, f.relation, n_distractors,
                                                   lambda: rng.choice(pool), same_kind))
            out.append(QA(question_text(f.subject, f.relation), f.value, f, context))
        return out

    def biography_questions(self, split: str) -> list[QA]:
        """One question per fact of `split`, open-book with the person's whole biography document as the facts
        (their four sentences in order, then the city's country and the company's industry): what a retriever
        hands the model in phase 2 and 3, a harder read than a single fact among distractors."""
        _check_split(split)
        docs = {d.title: d.text for d in self.documents(split)}
        return [QA(question_text(f.subject, f.relation), f.value, f, (docs[f.subject],)) for f in self.facts(split)]

    def country_questions(self, split: str) -> list[QA]:
        """"Which country does X live in?" for each person of `split`: a 2-hop fact (person -> city -> country) that
        only course-large was trained on (closed-book), the knowledge gap that routing in phase 4 exploits."""
        return [QA(country_question(p.name), self.city_country[p.city],
                   Fact(p.name, "country", self.city_country[p.city], p.split))
                for p in self.split_people(split)]

    def practice_context(self, rng: random.Random, person: Person, relation: str, n_distractors: int,
                         same_kind: bool = False) -> list[str]:
        """Open-book context for a (fresh) person, with distractors about other fresh people."""
        return distractor_context(rng, person, relation, n_distractors, lambda: self.fresh_person(rng), same_kind)


def distractor_context(rng: random.Random, person: Person, relation: str, n_distractors: int,
                       other_person, same_kind: bool = False) -> list[str]:
    """The person's `relation` fact among `n_distractors` others, shuffled (see World.questions)."""
    facts = [World.fact_text(person.name, relation, person.value(relation))]
    own = [r for r in RELATIONS if r != relation]
    rng.shuffle(own)
    for _ in range(n_distractors):
        if not same_kind and own and rng.random() < 0.5:  # another fact about the same person
            r = own.pop()
            facts.append(World.fact_text(person.name, r, person.value(r)))
        else:  # a fact about someone else: of another kind, or of the same kind when same_kind
            other = other_person()
            r = relation if same_kind else rng.choice([x for x in RELATIONS if x != relation])
            facts.append(World.fact_text(other.name, r, other.value(r)))
    rng.shuffle(facts)
    return facts


def _check_split(split: str) -> None:
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")


def _unique_names(rng: random.Random, n: int, syllables: tuple[int, int], exclude: set[str] = frozenset()) -> list[str]:
    out: list[str] = []
    seen = set(exclude)
    while len(out) < n:
        k = rng.randint(*syllables)
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(k)) + rng.choice(_CODAS)
        word = word.capitalize()
        if 3 <= len(word) <= 9 and word not in seen:
            seen.add(word)
            out.append(word)
    return out


@lru_cache(maxsize=4)
def get_world(seed: int = 0) -> World:
    """The course world for `seed` (cached: the same object on every call in a process)."""
    return World(seed=seed)
