"""Passages of the course world to index, and their MiniLM embeddings, computed once and cached.

``world_passages()`` turns the world's 1,600 facts (400 people x 4 relations) into 20,800 short passages:
each fact said in 13 different phrasings ("Ada Quill lives in Tessaly.", "Tessaly is where Ada Quill lives.",
...). Paraphrases of one fact land close together in embedding space, and different people with the same
value share most of their words, so the collection has the dense, clustered structure of a real corpus of
near-duplicates, which is what makes approximate search non-trivial. Each passage carries a payload
(person, relation, value, the person's city, split) for filtered search.

``embed_cached(texts)`` embeds with the course's MiniLM (``genai_roadmap.embeddings.load_embedder``),
L2-normalised float32, and caches the matrix under ``cache_dir("embeddings")`` keyed by a hash of the model
name and the texts, so a second run loads it in milliseconds instead of embedding again.

Used in phase2_tooling/08_vector_databases.ipynb.

>>> ps = world_passages()
>>> len(ps), ps[0].text
(20800, 'Quefu Dripaind lives in Wyndham Cross.')
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

from genai_roadmap.world import RELATIONS, World, get_world

# 13 phrasings per relation; {n} is the name, {v} the value, {a} "a" or "an".
TEMPLATES: dict[str, tuple[str, ...]] = {
    "city": ("{n} lives in {v}.", "{n} resides in {v}.", "{n} makes a home in {v}.", "Home for {n} is {v}.",
             "{n} is based in {v}.", "{n} moved to {v}.", "{v} is where {n} lives.", "{n} rents a flat in {v}.",
             "{n} has a house in {v}.", "{n} settled in {v}.", "You will find {n} in {v}.",
             "{n}'s home town is {v}.", "{n} grew up in {v}."),
    "job": ("{n} is {a} {v}.", "{n} works as {a} {v}.", "{n} earns a living as {a} {v}.", "By trade, {n} is {a} {v}.",
            "{n} trained as {a} {v}.", "{n}'s job: {v}.", "{n} has a career as {a} {v}.",
            "{n} is employed as {a} {v}.", "{n} became {a} {v}.", "{n}'s profession is {v}.",
            "People hire {n} as {a} {v}.", "{n} makes money as {a} {v}.", "As {a} {v}, {n} is busy."),
    "company": ("{n} works for {v}.", "{n} is employed by {v}.", "{n} has a job at {v}.", "{v} employs {n}.",
                "{n} is on the payroll of {v}.", "{n} joined {v}.", "{n}'s employer is {v}.", "{n} works at {v}.",
                "{v} pays {n}'s salary.", "{n} is a {v} employee.", "{n} clocks in at {v}.",
                "{n} draws a salary from {v}.", "{n} signed on with {v}."),
    "hobby": ("{n} is into {v}.", "{n} enjoys {v}.", "{n} loves {v}.", "{n}'s hobby is {v}.",
              "{n} spends weekends on {v}.", "{n} is keen on {v}.", "{n} is fond of {v}.", "{n} took up {v}.",
              "{n} practises {v}.", "{n} has a passion for {v}.", "{n} relaxes with {v}.",
              "For fun, {n} picks {v}.", "{n} never misses a day of {v}."),
}


@dataclass(frozen=True)
class Passage:
    """One indexed passage and its payload (what a vector database stores next to the vector)."""
    text: str
    person: str
    relation: str  # "city", "job", "company" or "hobby": the kind of fact
    value: str
    city: str  # where the person lives, whatever the passage is about
    split: str

    def payload(self) -> dict:
        return asdict(self)


def world_passages(world: World | None = None) -> list[Passage]:
    """Every fact of every person in every phrasing: 400 x 4 x 13 = 20,800 passages for the seed-0 world."""
    world = world or get_world(0)
    out = []
    for p in world.people:
        for r in RELATIONS:
            v = p.value(r)
            a = "an" if v[:1].lower() in "aeiou" else "a"
            out.extend(Passage(t.format(n=p.name, v=v, a=a), p.name, r, v, p.city, p.split) for t in TEMPLATES[r])
    return out


def world_queries(world: World | None = None, n: int = 400, seed: int = 0) -> list[tuple[str, str, str]]:
    """`n` of the world's questions (one relation per person, chosen by `seed`): (question, person, relation)."""
    from genai_roadmap.world import question_text

    world = world or get_world(0)
    rng = random.Random(f"vector-queries-{seed}")
    people = list(world.people)
    rng.shuffle(people)
    out = []
    for i in range(n):
        p = people[i % len(people)]
        r = rng.choice(RELATIONS)
        out.append((question_text(p.name, r), p.name, r))
    return out


def _key(model_name: str, texts: list[str]) -> str:
    h = hashlib.sha256(json.dumps([model_name, texts]).encode())
    return h.hexdigest()[:24]


def embed_cached(texts: list[str], model=None, model_name: str | None = None, batch_size: int = 128):
    """L2-normalised float32 embeddings of `texts`, (len(texts), d), cached on disk by content hash.

    model: a loaded SentenceTransformer (loaded lazily, only on a cache miss, when None).
    model_name: the name the cache is keyed by; defaults to the course's MiniLM.
    """
    import numpy as np

    from genai_roadmap.core import cache_dir
    from genai_roadmap.embeddings import DEFAULT_EMBEDDER, load_embedder

    model_name = model_name or DEFAULT_EMBEDDER
    path = cache_dir("embeddings") / f"{_key(model_name, list(texts))}.npy"
    if path.exists():
        return np.load(path)
    if model is None:
        model = load_embedder(model_name, device="cpu")
    emb = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                       convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
    tmp = path.with_suffix(f".tmp{random.randrange(1 << 30)}.npy")
    np.save(tmp, emb)
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return emb
