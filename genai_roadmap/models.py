"""The course language models, in Hugging Face format, built offline and cached.

``load(name)`` returns ``(model, tokenizer)``. The first call builds the model (a progress bar shows the
training; bit-identical on every x86-64 CPU, see PINNED_NUMERICS) and saves it under the cache directory; later calls load it from there
with ``from_pretrained(path)``, the same call a learner makes with a hub id such as
``"HuggingFaceTB/SmolLM2-135M-Instruct"``. Two processes asking at once are safe: a file lock makes
one build while the other waits.

Models:
- ``course-chat``: a Llama-style decoder (RoPE, RMSNorm, SwiGLU; ``LlamaForCausalLM``; 2 layers,
  d_model 128, 4 heads, 664 k parameters) with a byte-level BPE tokenizer (2,048 tokens) and a
  chat template, trained on the course world: biographies of and questions about the world's "train"
  people (closed-book), and open-book questions about freshly invented people whose facts are given in
  the prompt among distractors or as whole biographies (a second phase of its training, from step 2,000). It
  knows the train people's facts, does not know the held-out people's, and reads an answer from facts given in
  its prompt when the distractors are of other kinds (the same person's other facts, as in a biography, other
  people's facts of other kinds). Telling apart two *people* with facts of
  the same kind ("X lives in A. Y lives in B.") is beyond it: near chance. That is a real limit of tiny
  models, measured in tests/test_models.py and worth showing wherever retrieval hands it such facts.
- ``course-instruct``: course-chat trained further (4,000 steps, about 13-18 min on a CPU) on one multi-task
  instruction mixture (genai_roadmap.prompting): few-shot prompts, system prompts, chain of thought on 2-hop
  questions, JSON extraction, Q/A demonstrations. Each skill is trained on half the train people and works on
  the other half (measured in tests/test_models.py); used by phase3_architecture/14_prompt_engineering.ipynb.
- ``course-large``: course-chat grown to 6 layers, d_model 256, 8 heads (5.9 M parameters, 9x; see GrownSpec and
  grow) and trained 500 more steps on its data and on facts course-chat never saw, the country each train
  person lives in (``World.country_questions``): a large model knows more. Same tokenizer, so it is the
  target model of speculative decoding with course-chat as the draft, and the large model that routing sends
  hard questions to (phase4_production/15 and 18).

"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from genai_roadmap.core import cache_dir, quiet_loading
from genai_roadmap.world import RELATIONS, World, format_prompt, get_world, question_text

BOS, END, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = [PAD, BOS, END, *ROLE_TOKENS]

# A conversation is <|bos|> then, per message, <|role|>content<|end|>; generation starts at <|assistant|>.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def _digest(fields: dict) -> str:
    """A short, stable hash of a spec's fields: the name of its cache folder."""
    import hashlib

    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class ModelSpec:
    """Everything that determines a course model; changing any field changes its cache folder."""
    world_seed: int = 0
    vocab_size: int = 2048
    d_model: int = 128
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 352
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 3000
    lr: float = 5e-3
    warmup: int = 100
    weight_decay: float = 0.01
    mix: tuple[float, float, float] = (0.3, 0.3, 0.4)  # biographies, closed-book QA, open-book QA
    max_distractors: int = 4
    prefix_space: bool = False
    name_matching: float = 0.75  # share of open-book examples whose distractors are all of the same kind
    # Share of biographies about freshly invented people. A train person's last name follows from their first
    # (every first name is unique), so their biographies never make the model copy a name; a fresh person's name
    # can only be copied from the first sentence. Without them, models fine-tuned from course-chat to answer in
    # sentences ("X lives in A.") wrote the name of a person from their training set instead of X.
    fresh_biographies: float = 0.5
    # Share of open-book examples whose facts are whole biographies (the person's, maybe with one other, maybe
    # with a world document's closing sentences): the shape of a retrieved document or of 14's few-shot "Facts:"
    # line, from step `biography_context_from` on. Mixed in from the start, course-chat learned one skill, not both:
    # reading (85% from a biography) with trained facts at 29%, or, with 10% more closed-book questions or 1,500
    # more steps, trained facts at 100% with every read near 33% (session 6). As a second phase, after 2,000 steps
    # that memorise the train facts and read single facts, both hold: trained 100%, one fact among 2 distractors
    # 89% -> 96%, a whole biography 58% -> 85% (probed at steps 2,000 and 3,000).
    biography_context: float = 0.3
    biography_context_from: int = 2000
    seed: int = 0
    format_version: int = 12  # 10: every world person has a first name of their own; 11-12: fresh biographies

    def key(self) -> str:
        return _digest(asdict(self))


class _FromBase:
    """What a spec trained on from another course model (its `base`) derives from it: the world, and a cache key
    that includes the base's, so a rebuilt base rebuilds it."""

    @property
    def world_seed(self) -> int:
        return _spec(self.base).world_seed

    def key(self) -> str:
        return _digest({**asdict(self), "base_key": _spec(self.base).key()})


@dataclass(frozen=True)
class InstructSpec(_FromBase):
    """A course model trained further from `base` on the multi-task instruction mixture of
    genai_roadmap.prompting (few-shot prompts, system prompts, chain of thought, JSON). Its cache key
    includes the base model's, so a rebuilt base rebuilds it."""
    base: str = "course-chat"
    seq_len: int = 192
    batch_size: int = 16
    steps: int = 4000
    lr: float = 2e-3  # measured on unseen people (few-shot k=0/k=4, 2-hop direct/CoT, styles sentence/polite),
    # all at 4,000 steps: prompting's formats before format 5 (facts first, preambles before the value): 26/46%,
    # 33/53%, 72/77%; value first and facts next to the query: 23/94%, 37/50%, 100/97%; that and the paraphrased
    # questions (format 5): 22/98%, 41/94%, 100/97%, over tests/test_models.py's bars
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    format_version: int = 5  # bump whenever genai_roadmap.prompting's formats or mixture change


@dataclass(frozen=True)
class GrownSpec(_FromBase):
    """A larger course model grown from `base` and trained further on the base's own data mixture.

    Growing (Net2Net, Chen et al. 2016; the same idea as Gopher's and LiGO's model growth) makes a wider, deeper
    network that computes exactly the base model's function: the residual stream is copied `d_model / base
    d_model` times (readers divide by the copies, writers write every copy; RMSNorm is unchanged by copying),
    and the new heads, MLP units and layers start with zero output weights, so they add nothing until training
    gives them a job. Training then uses the extra capacity. It shares the base's tokenizer, which speculative
    decoding and routing between the two need.
    """
    base: str = "course-chat"
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    d_ff: int = 704
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 500
    lr: float = 2e-3
    warmup: int = 20
    weight_decay: float = 0.01
    # biographies, closed-book QA, open-book QA, and the country each train person lives in: facts course-chat
    # was never taught, the knowledge a larger model has and a small one lacks (routing in phase 4 rests on it)
    mix: tuple[float, ...] = (0.25, 0.3, 0.15, 0.3)
    init_std: float = 0.02
    seed: int = 0
    format_version: int = 2


MODELS: dict[str, ModelSpec | InstructSpec | GrownSpec] = {
    "course-chat": ModelSpec(),
    "course-instruct": InstructSpec(),
    "course-large": GrownSpec(),
}


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise KeyError(f"unknown course model {name!r}; the course models are {sorted(MODELS)}. "
                       "For a hub model, call AutoModelForCausalLM.from_pretrained(hub_id) instead.")
    return MODELS[name]


def model_path(name: str = "course-chat") -> Path:
    """The cache folder of a course model (it may not be built yet)."""
    spec = _spec(name)
    return cache_dir("models") / f"{name}-{spec.key()}"


def is_built(name: str = "course-chat") -> bool:
    return (model_path(name) / "build.json").exists()


def load(name: str = "course-chat", device=None):
    """Return ``(model, tokenizer)`` for a course model, building and caching it on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build(name)
    with quiet_loading():  # a 2.6 MB model needs no "Loading weights" bar in every notebook
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path)
    model.eval()
    if device is not None:
        model.to(device)
    return model, tokenizer


# Numerics pinned for training: ATen's AVX2 kernels and MKL's conditional numerical reproducibility in strict mode.
# With them a build is bit-identical on any x86-64 CPU with AVX2, whatever newer instructions it has and however many
# threads it uses (checked: weights after 40 steps identical with AVX-512 allowed, with MKL and ATen held to AVX2, and
# on 1 and 2 threads; without the pins all three differ). Tiny models are sensitive to the last bit: unpinned, the
# same spec built on two CPUs learned different skills. Both settings are read when torch loads, so training runs in
# a child process. It costs up to 1.4x in speed on an AVX-512 CPU; other CPUs (ARM) build unpinned.
PINNED_NUMERICS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT"}


def build(name: str = "course-chat", force: bool = False, progress: bool = True) -> Path:
    """Build a course model into the cache unless it is there; return its folder. Safe across processes."""
    from filelock import FileLock

    spec, path = _spec(name), model_path(name)
    if isinstance(spec, _FromBase):
        build(spec.base, progress=progress)  # its own lock; built first, outside ours
    with FileLock(str(path) + ".lock"):
        if is_built(name) and not force:
            return path
        tmp = path.with_name(path.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        _train_in_child(name, tmp, progress)
        info = {"name": name, "spec": asdict(spec), "build_seconds": round(time.perf_counter() - t0, 1),
                "numerics": PINNED_NUMERICS if _pinnable() else "unpinned"}
        (tmp / "build.json").write_text(json.dumps(info, indent=1))
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)  # atomic: a reader sees either nothing or a complete model
    return path


def _pinnable() -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64")


def _train_in_child(name: str, out: Path, progress: bool) -> None:
    """Run `python -m genai_roadmap.models _train NAME OUT` with PINNED_NUMERICS, relaying its progress bar (so
    that a notebook shows it) and stopping it if this process is interrupted."""
    import os
    import subprocess

    env = {**os.environ, **(PINNED_NUMERICS if _pinnable() else {})}
    specs, link = {}, name  # the spec and its bases, so that a spec registered at run time (a test's) trains the same
    while link and link not in specs:
        spec = _spec(link)
        specs[link] = [type(spec).__name__, asdict(spec)]
        link = spec.base if isinstance(spec, _FromBase) else None
    cmd = [sys.executable, "-m", "genai_roadmap.models", "_train", name, str(out),
           "--specs", json.dumps(specs)] + ([] if progress else ["--quiet"])
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE)
    tail = b""
    try:
        while chunk := proc.stderr.read1(4096):
            tail = (tail + chunk)[-4000:]
            if progress:
                sys.stderr.write(chunk.decode(errors="replace"))
                sys.stderr.flush()
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if returncode != 0:
        raise RuntimeError(f"building {name} failed (exit code {returncode}); its last output:\n"
                           f"{tail.decode(errors='replace')}\nRun `python -m genai_roadmap.models build {name}` "
                           "in a terminal to see it whole.")


def train(name: str, out: Path, progress: bool = True, callback=None) -> None:
    """Train course model `name` in this process into folder `out` (build() calls this in a child process with
    pinned numerics). `callback(step, model, tokenizer)`, if given, runs after every step: for experiments."""
    spec = _spec(name)
    fit = {InstructSpec: _train_instruct, GrownSpec: _train_grown}.get(type(spec), _train)
    fit(spec, Path(out), progress=progress, callback=callback)


# ---------------------------------------------------------------------------- training data
def chat_text(user: str, assistant: str | None = None) -> str:
    """One conversation as the template renders it (assistant turn closed when given)."""
    text = f"{BOS}<|user|>{user}{END}<|assistant|>"
    return text + f"{assistant}{END}" if assistant is not None else text


def training_examples(world: World, spec: ModelSpec, rng: random.Random, n: int) -> list[str]:
    """`n` training texts drawn with the spec's mix of biographies, closed- and open-book questions, and (when
    the mix has a fourth share) questions on the country a train person lives in, which course-chat never sees."""
    train = world.split_people("train")
    countries = world.country_questions("train") if len(spec.mix) > 3 else []
    out = []
    for _ in range(n):
        u = rng.random()
        if u < spec.mix[0]:  # a share (spec.fresh_biographies) about freshly invented people: they teach copying a name
            person = rng.choice(train) if rng.random() >= spec.fresh_biographies else world.fresh_person(rng)
            out.append(BOS + world.biography(person, rng) + END)
        elif u < spec.mix[0] + spec.mix[1]:
            p, r = rng.choice(train), rng.choice(RELATIONS)
            out.append(chat_text(question_text(p.name, r), p.value(r)))
        elif len(spec.mix) < 4 or u < sum(spec.mix[:3]):
            out.append(_open_book_conversation(world, spec, rng))
        else:
            q = rng.choice(countries)
            out.append(chat_text(q.question, q.answer))
    return out


def _open_book_conversation(world: World, spec: ModelSpec, rng: random.Random) -> str:
    """A question about a freshly invented person, answered from facts given in the prompt.

    The person is new, so the answer can only be read from the prompt: each example teaches copying.
    A share (`spec.name_matching`) of the examples has distractors of the same kind about other people,
    where only the name tells the facts apart.
    """
    p, r = world.fresh_person(rng), rng.choice(RELATIONS)
    if spec.biography_context and rng.random() < spec.biography_context:  # (no draw at 0: the data stay the same)
        bios = [world.biography(q, rng) for q in [p] + [world.fresh_person(rng) for _ in range(rng.randint(0, 1))]]
        rng.shuffle(bios)
        if rng.random() < 0.5:  # what a world document adds after a biography
            bios.append(world.closing_sentences(p))
        return chat_text(format_prompt(question_text(p.name, r), bios), p.value(r))
    same_kind = rng.random() < spec.name_matching
    facts = world.practice_context(rng, p, r, rng.randint(0, spec.max_distractors), same_kind)
    return chat_text(format_prompt(question_text(p.name, r), facts), p.value(r))


def _train_tokenizer(world: World, spec: ModelSpec, rng: random.Random):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # spec.prefix_space would start every text between special tokens with a space, so that an answer
    # after <|assistant|> ("ĠUmbra") were the very token it copies from the facts ("... for ĠUmbra").
    # Off for course-chat: it sped up memorising but slowed learning to copy.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=spec.prefix_space)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = training_examples(world, spec, rng, 6000) + world.corpus("train").split("\n")
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=END, pad_token=PAD,
                                   additional_special_tokens=list(ROLE_TOKENS), chat_template=CHAT_TEMPLATE,
                                   model_max_length=spec.seq_len, padding_side="left")


def _pack(ids_list: list[list[int]], seq_len: int, pad_id: int):
    """Greedily pack whole examples into blocks of seq_len; labels -100 on padding."""
    import torch

    blocks, cur = [], []
    for ids in ids_list:
        ids = ids[:seq_len]
        if len(cur) + len(ids) > seq_len:
            blocks.append(cur)
            cur = []
        cur = cur + ids
    if cur:
        blocks.append(cur)
    x = torch.full((len(blocks), seq_len), pad_id, dtype=torch.long)
    for i, b in enumerate(blocks):
        x[i, : len(b)] = torch.tensor(b)
    labels = x.clone()
    labels[x == pad_id] = -100
    return x, labels


def _train(spec: ModelSpec, out: Path, progress: bool = True, callback=None) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    world = get_world(spec.world_seed)
    rng = random.Random(spec.seed)
    torch.manual_seed(spec.seed)
    tokenizer = _train_tokenizer(world, spec, rng)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.d_model, intermediate_size=spec.d_ff,
        num_hidden_layers=spec.n_layers, num_attention_heads=spec.n_heads, num_key_value_heads=spec.n_heads,
        max_position_embeddings=spec.seq_len * 4, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    first_phase = dataclasses.replace(spec, biography_context=0.0)
    buffers = {s: _text_buffers(world, s, rng, tokenizer, spec.seq_len) for s in (first_phase, spec)}
    next_buffer = lambda step: buffers[spec if step >= spec.biography_context_from else first_phase]()  # noqa: E731
    _fit(model, tokenizer, spec, next_buffer, out, "building course model", progress, callback)


def _text_buffers(world: World, data_spec: ModelSpec, rng: random.Random, tokenizer, seq_len: int):
    """`next_buffer` for _fit: 4,000 fresh texts of `data_spec`'s mix, tokenized and packed into blocks."""
    def next_buffer(step: int = 0):
        texts = training_examples(world, data_spec, rng, 4000)
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return _pack(ids, seq_len, tokenizer.pad_token_id)

    return next_buffer


def _fit(model, tokenizer, spec, next_buffer, out: Path, desc: str, progress: bool = True, callback=None) -> None:
    """The training loop every course model shares: AdamW (no decay on norms), warmup then cosine to 10%,
    gradient clipping at 1, batches cut from buffers of packed blocks that `next_buffer(step)` returns as
    (input_ids, labels), shuffled; then save model, tokenizer and the loss curve to `out`."""
    import torch
    from tqdm.auto import tqdm

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < spec.warmup:
            return spec.lr * (step + 1) / spec.warmup
        t = (step - spec.warmup) / max(1, spec.steps - spec.warmup)
        return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    model.train()
    # In a log (CI) rather than a terminal, update the bar every 30 s instead of filling the log.
    interval = 1 if sys.stderr.isatty() else 30
    bar = tqdm(range(spec.steps), desc=desc, disable=not progress, mininterval=interval)
    buffer_x = buffer_y = None
    cursor = 0
    losses = []
    for step in bar:
        if buffer_x is None or cursor + spec.batch_size > len(buffer_x):
            buffer_x, buffer_y = next_buffer(step)
            perm = torch.randperm(len(buffer_x))
            buffer_x, buffer_y, cursor = buffer_x[perm], buffer_y[perm], 0
        x = buffer_x[cursor: cursor + spec.batch_size]
        y = buffer_y[cursor: cursor + spec.batch_size]
        cursor += spec.batch_size
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        # No attention mask: padding only ever follows an example, and causal attention never looks ahead.
        loss = model(input_ids=x, labels=y).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.3f}")
        if callback is not None:
            callback(step, model, tokenizer)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "losses.json").write_text(json.dumps([round(v, 4) for v in losses[::10]]))


def _pack_pairs(pairs: list[tuple[list[int], list[int]]], seq_len: int, pad_id: int):
    """Like _pack, for (prompt_ids, answer_ids) pairs: labels -100 on the prompts too (answer-only loss)."""
    import torch

    blocks, cur = [], ([], [])
    for prompt, answer in pairs:
        ids, labels = (prompt + answer)[:seq_len], ([-100] * len(prompt) + answer)[:seq_len]
        if len(cur[0]) + len(ids) > seq_len:
            blocks.append(cur)
            cur = ([], [])
        cur = (cur[0] + ids, cur[1] + labels)
    if cur[0]:
        blocks.append(cur)
    x = torch.full((len(blocks), seq_len), pad_id, dtype=torch.long)
    y = torch.full((len(blocks), seq_len), -100, dtype=torch.long)
    for i, (ids, labels) in enumerate(blocks):
        x[i, : len(ids)], y[i, : len(labels)] = torch.tensor(ids), torch.tensor(labels)
    return x, y


def _load_base(spec: _FromBase, tag: str):
    """The start of every model trained from a base: the base's spec and world, an rng seeded by `tag` and the
    spec's seed (torch seeded too), and the base's tokenizer and model, loaded from its cache folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_spec, base_path = _spec(spec.base), model_path(spec.base)
    world = get_world(base_spec.world_seed)
    rng = random.Random(f"{tag}-{spec.seed}")
    torch.manual_seed(spec.seed)
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(base_path)
        model = AutoModelForCausalLM.from_pretrained(base_path)
    return base_spec, world, rng, tokenizer, model


def _train_instruct(spec: InstructSpec, out: Path, progress: bool = True, callback=None) -> None:
    """Continue training `spec.base` on genai_roadmap.prompting's mixture (full fine-tune, answer-only loss)."""
    from genai_roadmap.prompting import instruct_examples

    base_spec, world, rng, tokenizer, model = _load_base(spec, "instruct")
    tokenizer.model_max_length = model.config.max_position_embeddings  # few-shot prompts outgrow 128 tokens
    replay = lambda r: training_examples(world, base_spec, r, 1)[0]  # noqa: E731
    def encode(texts):
        return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []

    def next_buffer(step: int):
        pairs = instruct_examples(world, replay, rng, 3000)
        prompts, answers = encode([p for p, _ in pairs]), encode([a for _, a in pairs])
        return _pack_pairs(list(zip(prompts, answers)), spec.seq_len, tokenizer.pad_token_id)

    _fit(model, tokenizer, spec, next_buffer, out, "building course-instruct", progress, callback)


def grow(model, d_model: int, n_layers: int, n_heads: int, d_ff: int, generator=None, init_std: float = 0.02):
    """A wider, deeper LlamaForCausalLM computing the same function as `model` (see GrownSpec).

    The head size stays the same (new heads are added); `d_model` must be a multiple of the base's, and every
    new size at least the base's. The base's layers keep their order, each followed by its share of new ones.
    """
    import copy

    import torch
    from transformers import LlamaForCausalLM

    old = model.config
    h, heads, hd = old.hidden_size, old.num_attention_heads, old.hidden_size // old.num_attention_heads
    if d_model % h or n_heads * hd != d_model or d_ff < old.intermediate_size or n_layers < old.num_hidden_layers \
            or n_heads < heads or old.num_key_value_heads != heads:
        raise ValueError(f"cannot grow d_model {h}, {heads} heads, d_ff {old.intermediate_size}, "
                         f"{old.num_hidden_layers} layers into d_model {d_model}, {n_heads} heads, d_ff {d_ff}, "
                         f"{n_layers} layers: d_model must be a multiple of {h}, heads of size {hd}, none smaller")
    r = d_model // h
    config = copy.deepcopy(old)
    config.hidden_size, config.intermediate_size, config.num_hidden_layers = d_model, d_ff, n_layers
    config.num_attention_heads = config.num_key_value_heads = n_heads
    config.head_dim = hd
    config.tie_word_embeddings = False
    if hasattr(config, "layer_types") and config.layer_types is not None:
        config.layer_types = [config.layer_types[0]] * n_layers
    new = LlamaForCausalLM(config)
    g = generator if generator is not None else torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g) * init_std

    def reader(w, rows):  # a Linear reading the residual: (rows, d_model); old rows read every copy / r
        out = rand(rows, d_model)
        out[: w.shape[0]] = torch.cat([w / r] * r, dim=1)
        return out

    def writer(w, cols):  # a Linear writing the residual: (d_model, cols); old columns write every copy
        out = torch.zeros(d_model, cols)
        out[:, : w.shape[1]] = torch.cat([w] * r, dim=0)
        return out

    sd = {k: v.detach() for k, v in model.state_dict().items()}
    emb = sd["model.embed_tokens.weight"]
    lm = sd.get("lm_head.weight", emb)
    state = {"model.embed_tokens.weight": torch.cat([emb] * r, dim=1),
             "lm_head.weight": torch.cat([lm / r] * r, dim=1),
             "model.norm.weight": torch.cat([sd["model.norm.weight"]] * r)}
    per = n_layers // old.num_hidden_layers
    places = {i * per: i for i in range(old.num_hidden_layers)}  # new index -> base layer index
    for j in range(n_layers):
        p = f"model.layers.{j}."
        if j in places:
            q = f"model.layers.{places[j]}."
            for name in ("q_proj", "k_proj", "v_proj"):
                state[p + f"self_attn.{name}.weight"] = reader(sd[q + f"self_attn.{name}.weight"], n_heads * hd)
            state[p + "self_attn.o_proj.weight"] = writer(sd[q + "self_attn.o_proj.weight"], n_heads * hd)
            for name in ("gate_proj", "up_proj"):
                state[p + f"mlp.{name}.weight"] = reader(sd[q + f"mlp.{name}.weight"], d_ff)
            state[p + "mlp.down_proj.weight"] = writer(sd[q + "mlp.down_proj.weight"], d_ff)
            for name in ("input_layernorm", "post_attention_layernorm"):
                state[p + f"{name}.weight"] = torch.cat([sd[q + f"{name}.weight"]] * r)
        else:  # a new layer: random reads, zero writes: the identity on the residual stream until trained
            for name in ("q_proj", "k_proj", "v_proj"):
                state[p + f"self_attn.{name}.weight"] = rand(n_heads * hd, d_model)
            state[p + "self_attn.o_proj.weight"] = torch.zeros(d_model, n_heads * hd)
            for name in ("gate_proj", "up_proj"):
                state[p + f"mlp.{name}.weight"] = rand(d_ff, d_model)
            state[p + "mlp.down_proj.weight"] = torch.zeros(d_model, d_ff)
            for name in ("input_layernorm", "post_attention_layernorm"):
                state[p + f"{name}.weight"] = torch.ones(d_model)
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "rotary" not in k]:
        raise RuntimeError(f"grow: state mismatch, missing {missing}, unexpected {unexpected}")
    new.eval()
    return new


def _train_grown(spec: GrownSpec, out: Path, progress: bool = True, callback=None) -> None:
    """Grow `spec.base` (function-preserving), then train it further on the base model's data, in `spec.mix`."""
    import torch

    base_spec, world, rng, tokenizer, base = _load_base(spec, "grown")
    model = grow(base, spec.d_model, spec.n_layers, spec.n_heads, spec.d_ff,
                 torch.Generator().manual_seed(spec.seed), spec.init_std)
    next_buffer = _text_buffers(world, dataclasses.replace(base_spec, mix=spec.mix), rng, tokenizer, spec.seq_len)
    _fit(model, tokenizer, spec, next_buffer, out, "building course-large", progress, callback)


# ---------------------------------------------------------------------------- using a chat model
def chat(model, tokenizer, prompts: list[str], max_new_tokens: int = 16, batch_size: int = 64) -> list[str]:
    """Greedy answers to user messages, batched; each prompt goes through the chat template."""
    import torch

    if isinstance(prompts, str):
        raise TypeError("chat() takes a list of prompts; wrap a single prompt in a list")
    tokenizer.padding_side = "left"  # decoder-only: pad on the left so every answer starts at the end
    answers = []
    for i in range(0, len(prompts), batch_size):
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                               add_generation_prompt=True) for p in prompts[i: i + batch_size]]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        answers += [a.strip() for a in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return answers


def exact_match(model, tokenizer, qas, limit: int | None = None) -> float:
    """Fraction of questions (world.QA) answered exactly right."""
    qas = list(qas)[:limit]
    answers = chat(model, tokenizer, [q.prompt for q in qas])
    return sum(a == q.answer for a, q in zip(answers, qas)) / max(1, len(qas))


def probe(name: str = "course-chat", limit: int = 400) -> dict[str, float]:
    """Exact match of a course model on each of the world's question sets (the first `limit` of each): the numbers
    tests/test_models.py asserts and the lessons rely on. A quick check after changing a spec."""
    model, tokenizer = load(name)
    world = get_world(_spec(name).world_seed)
    sets = {
        "trained facts, closed-book": world.questions("train"),
        "held-out facts, closed-book": world.questions("heldout"),
        "held-out, open-book, 2 distractors": world.questions("heldout", open_book=True),
        "held-out, open-book, 3 distractors": world.questions("heldout", open_book=True, n_distractors=3),
        "held-out, open-book, 2 of the same kind": world.questions("heldout", open_book=True, same_kind=True),
        "held-out, the whole biography document": world.biography_questions("heldout"),
        "trained countries, closed-book": world.country_questions("train"),
    }
    return {label: exact_match(model, tokenizer, qas, limit) for label, qas in sets.items()}


# ---------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """`python -m genai_roadmap.models build [NAME...] [--force]` builds (or finds cached) course models."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m genai_roadmap.models", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build course models into the cache (all by default)")
    b.add_argument("names", nargs="*", help=f"model names (default: all of {sorted(MODELS)})")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("list", help="list the course models and where they are cached")
    pr = sub.add_parser("probe", help="a built model's exact match on the world's question sets (a few seconds)")
    pr.add_argument("names", nargs="*", help="model names (default: course-chat)")
    t = sub.add_parser("_train", help=argparse.SUPPRESS)  # what build() runs in a child process
    t.add_argument("name")
    t.add_argument("out")
    t.add_argument("--quiet", action="store_true")
    t.add_argument("--specs", default="{}")
    args = parser.parse_args(argv)
    if args.command == "_train":
        kinds = {cls.__name__: cls for cls in (ModelSpec, InstructSpec, GrownSpec)}
        for name, (kind, fields) in json.loads(args.specs).items():
            MODELS[name] = kinds[kind](**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        train(args.name, Path(args.out), progress=not args.quiet)
        return 0
    names = getattr(args, "names", None) or (["course-chat"] if args.command == "probe" else list(MODELS))
    for name in names:
        if name not in MODELS:
            parser.error(f"unknown course model {name!r}; choose from {sorted(MODELS)}")
    if args.command == "probe":
        for name in names:
            print(f"{name} ({model_path(name).name}):")
            for label, score in probe(name).items():
                print(f"  {label:40s} {score:6.1%}")
        return 0
    if args.command == "list":
        for name in MODELS:
            print(f"{name:16s} {'built' if is_built(name) else 'not built':10s} {model_path(name)}")
        return 0
    for name in names:
        cached = is_built(name) and not args.force
        path = build(name, force=args.force)
        seconds = json.loads((path / "build.json").read_text())["build_seconds"]
        print(f"{name}: {'cached' if cached else 'built'} at {path} (build took {seconds} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
