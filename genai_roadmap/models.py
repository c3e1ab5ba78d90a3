"""The course language models, in Hugging Face format, built offline and cached.

``load(name)`` returns ``(model, tokenizer)``. The first call builds the model deterministically (a
progress bar shows the training) and saves it under the cache directory; later calls load it from there
with ``from_pretrained(path)``, the same call a learner makes with a hub id such as
``"HuggingFaceTB/SmolLM2-135M-Instruct"``. Two processes asking at once are safe: a file lock makes
one build while the other waits.

Models:
- ``course-chat``: a Llama-style decoder (RoPE, RMSNorm, SwiGLU; ``LlamaForCausalLM``; 2 layers,
  d_model 128, 4 heads, 631 k parameters) with a byte-level BPE tokenizer (1,792 tokens: the trainer
  runs out of merges before its 2,048 target) and a
  chat template, trained on the course world: biographies of and questions about the world's "train"
  people (closed-book), and open-book questions about freshly invented people whose facts are given in
  the prompt among distractors. It knows the train people's facts, does not know the held-out people's,
  and reads an answer from facts given in its prompt when the distractors are of other kinds (the same
  person's other facts, other people's facts of other kinds). Telling apart two *people* with facts of
  the same kind ("X lives in A. Y lives in B.") is beyond it: near chance. That is a real limit of tiny
  models, measured in tests/test_models.py and worth showing wherever retrieval hands it such facts.
- ``course-instruct``: course-chat trained further (2,000 steps, about 5-10 min on a CPU) on one multi-task
  instruction mixture (genai_roadmap.prompting): few-shot prompts, system prompts, chain of thought on 2-hop
  questions, JSON extraction, Q/A demonstrations. Each skill is trained on half the train people and works on
  the other half (measured in tests/test_models.py); used by phase3_architecture/14_prompt_engineering.ipynb.

"""
from __future__ import annotations

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
    seed: int = 0
    format_version: int = 9

    def key(self) -> str:
        return _digest(asdict(self))


@dataclass(frozen=True)
class InstructSpec:
    """A course model trained further from `base` on the multi-task instruction mixture of
    genai_roadmap.prompting (few-shot prompts, system prompts, chain of thought, JSON). Its cache key
    includes the base model's, so a rebuilt base rebuilds it."""
    base: str = "course-chat"
    seq_len: int = 192
    batch_size: int = 16
    steps: int = 2000
    lr: float = 3e-3
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    format_version: int = 1  # bump whenever genai_roadmap.prompting's formats or mixture change

    @property
    def world_seed(self) -> int:
        return _spec(self.base).world_seed

    def key(self) -> str:
        return _digest({**asdict(self), "base_key": _spec(self.base).key()})


MODELS: dict[str, ModelSpec | InstructSpec] = {
    "course-chat": ModelSpec(),
    "course-instruct": InstructSpec(),
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


def build(name: str = "course-chat", force: bool = False, progress: bool = True) -> Path:
    """Build a course model into the cache unless it is there; return its folder. Safe across processes."""
    from filelock import FileLock

    spec, path = _spec(name), model_path(name)
    if isinstance(spec, InstructSpec):
        build(spec.base, progress=progress)  # its own lock; built first, outside ours
    with FileLock(str(path) + ".lock"):
        if is_built(name) and not force:
            return path
        tmp = path.with_name(path.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        (_train_instruct if isinstance(spec, InstructSpec) else _train)(spec, tmp, progress=progress)
        info = {"name": name, "spec": asdict(spec), "build_seconds": round(time.perf_counter() - t0, 1)}
        (tmp / "build.json").write_text(json.dumps(info, indent=1))
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)  # atomic: a reader sees either nothing or a complete model
    return path


# ---------------------------------------------------------------------------- training data
def chat_text(user: str, assistant: str | None = None) -> str:
    """One conversation as the template renders it (assistant turn closed when given)."""
    text = f"{BOS}<|user|>{user}{END}<|assistant|>"
    return text + f"{assistant}{END}" if assistant is not None else text


def training_examples(world: World, spec: ModelSpec, rng: random.Random, n: int) -> list[str]:
    """`n` training texts drawn with the spec's mix of biographies, closed- and open-book questions."""
    train = world.split_people("train")
    out = []
    for _ in range(n):
        u = rng.random()
        if u < spec.mix[0]:
            out.append(BOS + world.biography(rng.choice(train), rng) + END)
        elif u < spec.mix[0] + spec.mix[1]:
            p, r = rng.choice(train), rng.choice(RELATIONS)
            out.append(chat_text(question_text(p.name, r), p.value(r)))
        else:
            out.append(_open_book_conversation(world, spec, rng))
    return out


def _open_book_conversation(world: World, spec: ModelSpec, rng: random.Random) -> str:
    """A question about a freshly invented person, answered from facts given in the prompt.

    The person is new, so the answer can only be read from the prompt: each example teaches copying.
    A share (`spec.name_matching`) of the examples has distractors of the same kind about other people,
    where only the name tells the facts apart.
    """
    p, r = world.fresh_person(rng), rng.choice(RELATIONS)
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

    def next_buffer():
        texts = training_examples(world, spec, rng, 4000)
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return _pack(ids, spec.seq_len, tokenizer.pad_token_id)

    _fit(model, tokenizer, spec, next_buffer, out, "building course model", progress, callback)


def _fit(model, tokenizer, spec, next_buffer, out: Path, desc: str, progress: bool = True, callback=None) -> None:
    """The training loop every course model shares: AdamW (no decay on norms), warmup then cosine to 10%,
    gradient clipping at 1, batches cut from buffers of packed blocks that `next_buffer()` returns as
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
            buffer_x, buffer_y = next_buffer()
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


def _train_instruct(spec: InstructSpec, out: Path, progress: bool = True, callback=None) -> None:
    """Continue training `spec.base` on genai_roadmap.prompting's mixture (full fine-tune, answer-only loss)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from genai_roadmap.prompting import instruct_examples

    base_spec, base_path = _spec(spec.base), model_path(spec.base)
    world = get_world(base_spec.world_seed)
    rng = random.Random(f"instruct-{spec.seed}")
    torch.manual_seed(spec.seed)
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(base_path)
        model = AutoModelForCausalLM.from_pretrained(base_path)
    tokenizer.model_max_length = model.config.max_position_embeddings  # few-shot prompts outgrow 128 tokens
    replay = lambda r: training_examples(world, base_spec, r, 1)[0]  # noqa: E731
    def encode(texts):
        return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []

    def next_buffer():
        pairs = instruct_examples(world, replay, rng, 3000)
        prompts, answers = encode([p for p, _ in pairs]), encode([a for _, a in pairs])
        return _pack_pairs(list(zip(prompts, answers)), spec.seq_len, tokenizer.pad_token_id)

    _fit(model, tokenizer, spec, next_buffer, out, "building course-instruct", progress, callback)


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
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in MODELS:
            print(f"{name:16s} {'built' if is_built(name) else 'not built':10s} {model_path(name)}")
        return 0
    for name in args.names or list(MODELS):
        if name not in MODELS:
            parser.error(f"unknown course model {name!r}; choose from {sorted(MODELS)}")
        cached = is_built(name) and not args.force
        path = build(name, force=args.force)
        seconds = json.loads((path / "build.json").read_text())["build_seconds"]
        print(f"{name}: {'cached' if cached else 'built'} at {path} (build took {seconds} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
