"""The course map: the 23 roadmap cards as data, the one place they are written down.

README tables, the structure tests and the student tools read this module instead of repeating it.
"""
from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PHASES: dict[str, str] = {
    "phase1_foundations": "Core Foundations: what every GenAI engineer must know",
    "phase2_tooling": "Tooling & Frameworks: the modern GenAI stack",
    "phase3_architecture": "Architecture & Patterns: building production GenAI systems",
    "phase4_production": "Production & Scale: reliability, latency, cost at scale",
    "phase5_frontier": "Frontier Systems: where research meets engineering",
}


@dataclass(frozen=True)
class Card:
    number: int
    phase: str
    title: str
    slug: str
    topics: tuple[str, ...]
    builds: str  # what the learner builds, in a few words (README course map, phase guides)

    @property
    def notebook(self) -> str:
        """Path of the card's notebook, relative to the repository root."""
        return f"{self.phase}/{self.number:02d}_{self.slug}.ipynb"


def _card(number: int, phase: str, title: str, slug: str, topics: str, builds: str) -> Card:
    return Card(number, phase, title, slug, tuple(t.strip() for t in topics.split(",")), builds)


CARDS: tuple[Card, ...] = (
    _card(1, "phase1_foundations", "Math & Statistics", "math_and_statistics",
          "linear algebra, probability, calculus, information theory",
          "a low-rank weight approximation, a bigram LM scored in bits, an autodiff engine checked against torch"),
    _card(2, "phase1_foundations", "Deep Learning", "deep_learning",
          "backprop, optimizers, loss functions, regularization",
          "backprop, four optimizers and regularizers by hand, matched against PyTorch"),
    _card(3, "phase1_foundations", "Tokenization & Embeddings", "tokenization_and_embeddings",
          "BPE, SentencePiece, word2vec, semantic spaces",
          "a byte-level BPE tokenizer and word2vec from scratch; semantic search with MiniLM"),
    _card(4, "phase1_foundations", "Transformers", "transformers",
          "attention, positional encoding, encoder/decoder, KV-cache",
          "attention, RoPE and a KV-cache from scratch in a tiny GPT trained on the course world"),
    _card(5, "phase2_tooling", "PyTorch / JAX", "pytorch_and_jax",
          "tensor ops, autograd, distributed training primitives",
          "strides, einsum and a custom autograd Function; one model in PyTorch and JAX; 2-process DDP"),
    _card(6, "phase2_tooling", "Hugging Face", "hugging_face",
          "Transformers, PEFT, Datasets, Inference API",
          "load, sample, fine-tune (full and LoRA) and serve a model with transformers, datasets and peft"),
    _card(7, "phase2_tooling", "LangChain / LlamaIndex", "langchain_and_llamaindex",
          "chains, agents, document loaders, RAG pipelines",
          "one RAG pipeline in LangChain and in LlamaIndex over a local OpenAI-compatible LLM"),
    _card(8, "phase2_tooling", "Vector DBs", "vector_databases",
          "Pinecone, Weaviate, Qdrant, pgvector, FAISS",
          "exact and IVF search by hand; FAISS, HNSW, Qdrant and pgvector measured on 20,800 passages"),
    _card(9, "phase2_tooling", "Experiment Tracking", "experiment_tracking",
          "W&B, MLflow, LangSmith, Comet",
          "a tracker from scratch, then the same sweep in MLflow (registry, traces) and W&B offline"),
    _card(10, "phase3_architecture", "RAG Systems", "rag_systems",
          "retrieval-augmented generation, chunking strategies, hybrid search",
          "chunking, BM25 + dense hybrid retrieval, a reranker and cited answers, each stage measured"),
    _card(11, "phase3_architecture", "Fine-Tuning", "fine_tuning",
          "LoRA, QLoRA, instruction tuning, RLHF, DPO",
          "LoRA, NF4 (QLoRA), answer-only SFT and DPO from scratch on the course model"),
    _card(12, "phase3_architecture", "Agentic Systems", "agentic_systems",
          "tool use, ReAct, planning loops, multi-agent orchestration",
          "tool calling taught to the course model; ReAct, plan-and-execute and a router"),
    _card(13, "phase3_architecture", "Multimodal", "multimodal",
          "vision-language, image generation, audio-LLM, cross-modal fusion",
          "a tiny CLIP, a captioner, a diffusion model and a chord recognizer on log-mel spectrograms"),
    _card(14, "phase3_architecture", "Prompt Engineering", "prompt_engineering",
          "chain-of-thought, few-shot, system prompts, structured output, DSPy",
          "few-shot, chain of thought, system prompts, JSON-schema decoding and DSPy, measured"),
    _card(15, "phase4_production", "Inference Optimization", "inference_optimization",
          "quantization, vLLM, TensorRT-LLM, speculative decoding",
          "int8/int4 quantization, vLLM-style paged KV cache and batching, speculative decoding"),
    _card(16, "phase4_production", "LLMOps", "llmops",
          "prompt versioning, A/B testing, drift detection, evals",
          "a prompt registry, an A/B test with its statistics, an eval gate and drift detection"),
    _card(17, "phase4_production", "Safety & Guardrails", "safety_and_guardrails",
          "jailbreak defense, PII redaction, output filtering, red-teaming",
          "PII redaction, an injection classifier, output filters and a red team, measured"),
    _card(18, "phase4_production", "Cost Engineering", "cost_engineering",
          "token budgets, caching, batching, model routing, fallbacks",
          "token budgets, exact and semantic caches, batching, routing, retries and a circuit breaker"),
    _card(19, "phase4_production", "Evaluation", "evaluation",
          "RAGAS, MT-Bench, custom evals, human-in-the-loop scoring",
          "EM, F1, ROUGE-L, RAGAS-style metrics, an LLM judge's bias, Bradley–Terry and kappa"),
    _card(20, "phase5_frontier", "Pre-training at Scale", "pretraining_at_scale",
          "data pipelines, distributed training, MoE, FSDP/Megatron",
          "dedup with MinHash LSH, a scaling law, DDP / FSDP / tensor parallel on 2 ranks, MoE balancing"),
    _card(21, "phase5_frontier", "Reasoning Models", "reasoning_models",
          "chain-of-thought distillation, o1-style test-time compute, MCTS",
          "chain-of-thought distillation, self-consistency, a step verifier and MCTS on make-24"),
    _card(22, "phase5_frontier", "Interpretability", "interpretability",
          "mechanistic interpretability, activation steering, sparse autoencoders",
          "logit lens, activation patching, steering vectors and a sparse autoencoder"),
    _card(23, "phase5_frontier", "Long-context & Memory", "long_context_and_memory",
          "1M+ tokens, RoPE scaling, external memory, retrieval augmentation",
          "RoPE scaling (PI, NTK, YaRN), KV-cache sizing and a vector-store memory agent"),
)


# Learner routes through the course: a goal, the cards it ends with; a route is those cards and every card they
# need, transitively, by the notebooks' own prerequisites lines (`route`).
ROUTES: dict[str, tuple[int, ...]] = {
    "Retrieval and evaluation: ship a RAG feature and know it works": (10, 16, 19),
    "Models: adapt, prompt, serve and reason with an LLM": (11, 14, 15, 21),
    "Agents and safety: tool-using assistants that survive users": (12, 17, 18),
}


def card(number: int) -> Card:
    """The card with this roadmap number (1-23)."""
    for c in CARDS:
        if c.number == number:
            return c
    raise KeyError(f"no card {number!r}: the roadmap numbers its cards 1-{len(CARDS)}")


def existing_notebooks(root: Path = REPO_ROOT) -> list[Path]:
    """The notebooks of the course map that exist in this checkout, in roadmap order."""
    return [root / c.notebook for c in CARDS if (root / c.notebook).exists()]


def repository_url() -> str:
    """The repository URL declared once in pyproject.toml's [project.urls] (Repository)."""
    pyproject = REPO_ROOT / "pyproject.toml"
    if pyproject.exists():
        import tomllib

        return tomllib.loads(pyproject.read_text())["project"]["urls"]["Repository"]
    from importlib.metadata import metadata

    for entry in metadata("genai-roadmap").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip() == "Repository":
            return url.strip()
    raise RuntimeError("genai-roadmap's metadata declares no Repository URL")


def colab_url(notebook: str) -> str:
    """The Colab link for a notebook path relative to the repository root."""
    gh = repository_url().removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{gh}/blob/main/{notebook}"


# ---------------------------------------------------------------------------- what a notebook says of itself
# The title cell of every notebook follows one skeleton (tests/test_structure.py checks it): a promise, "You will"
# bullets, a prerequisites line linking earlier notebooks, a runtime line; each exercise has a header
# `### Exercise N · name ★★ (10 min)`. The course map and the phase guides read them here, so they cannot drift.
_EXERCISE = re.compile(r"^###\s*Exercise\s+(?P<n>\d+)\s*·\s*(?P<name>.+?)\s+(?P<stars>★+)\s*\((?P<min>\d+)\s*min\)",
                       re.M)
_NOTEBOOK_LINK = re.compile(r"\]\((?:\.\./phase\d_\w+/)?(?P<number>\d\d)_\w+\.ipynb\)")


@dataclass(frozen=True)
class Exercise:
    number: int
    name: str
    stars: int  # difficulty, 1-3
    minutes: int


@dataclass(frozen=True)
class NotebookHeader:
    promise: str                 # "By the end you will have built ..."
    objectives: tuple[str, ...]  # the "You will" bullets
    prerequisites: tuple[int, ...]  # card numbers linked from the prerequisites line
    prerequisites_text: str      # that line as written (Markdown), after "**Prerequisites:**"
    exercises: tuple[Exercise, ...]


def notebook_header(c: Card, root: Path = REPO_ROOT) -> NotebookHeader:
    """Read a card's notebook: its promise, objectives, prerequisites and exercises."""
    path = root / c.notebook
    if not path.exists():
        raise FileNotFoundError(f"{c.notebook}: no such notebook in {root}")
    return _read_header(path, path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_header(path: Path, mtime_ns: int) -> NotebookHeader:
    """The header of the notebook at `path`, read once per version of the file (the map, the routes and the
    guides each ask for every card's header)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    title = nb.cells[0].source
    paragraphs = [" ".join(p.split()) for p in title.split("\n\n")]
    promise = next((p for p in paragraphs if p.startswith("By the end")), "")
    objectives, prerequisites_text = [], ""
    for p in title.split("\n\n"):
        if p.startswith("**You will**"):  # bullets may wrap onto indented continuation lines
            bullets = ("\n" + p.removeprefix("**You will**").strip()).split("\n- ")[1:]
            objectives = [" ".join(b.split()).rstrip(";.") for b in bullets]
        if p.startswith("**Prerequisites:**"):
            prerequisites_text = " ".join(p.removeprefix("**Prerequisites:**").split())
    prerequisites = tuple(sorted({int(m["number"]) for m in _NOTEBOOK_LINK.finditer(prerequisites_text)}))
    exercises = tuple(Exercise(int(m["n"]), m["name"], len(m["stars"]), int(m["min"]))
                      for cell in nb.cells if cell.cell_type == "markdown" for m in _EXERCISE.finditer(cell.source))
    return NotebookHeader(promise, tuple(objectives), prerequisites, prerequisites_text, exercises)


# ---------------------------------------------------------------------------- README course map
README_START, README_END = "<!-- course-map:start -->", "<!-- course-map:end -->"
GUIDE_START, GUIDE_END = "<!-- phase-guide:start -->", "<!-- phase-guide:end -->"
BENCHMARK_CSV = REPO_ROOT / "benchmarks" / "notebooks.csv"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def benchmark_times(csv_path: Path = BENCHMARK_CSV) -> dict[str, float]:
    """Notebook path -> measured seconds on 2 CPU cores, from the benchmark table (if it exists)."""
    from genai_roadmap.benchmark import read_csv  # benchmark imports this module: import here

    return {row.notebook: row.seconds for row in read_csv(csv_path)}


def _relative(target: str, start_phase: str | None) -> str:
    """A repository path as a link from the README (start_phase None) or from a phase folder's guide."""
    return target if start_phase is None else posixpath.relpath(target, start_phase)


def _prerequisite_links(header: NotebookHeader, start_phase: str | None) -> str:
    if not header.prerequisites:
        return "none"
    return ", ".join(f"[{n:02d}]({_relative(card(n).notebook, start_phase)})" for n in header.prerequisites)


def course_map_markdown(root: Path = REPO_ROOT) -> str:
    """The README's course map: every card by phase, with what you build, prerequisites, Colab badge, runtime."""
    times = benchmark_times()
    lines = ["**Routes.** Phase 1 is everyone's start. After it, follow a goal: each route below is its last "
             "notebooks plus everything they need (the *Needs* column), in order.", "", routes_markdown(root)]
    for phase, subtitle in PHASES.items():
        lines += [f"### [{phase}]({phase}/README.md) · {subtitle}", "",
                  "| # | Card (notebook) | What you build | Needs | Colab | CPU runtime |", "|---|---|---|---|---|---|"]
        for c in (c for c in CARDS if c.phase == phase):
            if not (root / c.notebook).exists():
                lines.append(f"| {c.number:02d} | {c.title} (*coming*) | {c.builds} | | | |")
                continue
            header = notebook_header(c, root)
            colab = f"[![Open In Colab]({BADGE})]({colab_url(c.notebook)})"
            runtime = f"{times[c.notebook]:.0f} s" if c.notebook in times else ""
            lines.append(f"| {c.number:02d} | [{c.title}]({c.notebook}) | {c.builds} | "
                         f"{_prerequisite_links(header, None)} | {colab} | {runtime} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def route(goals: tuple[int, ...], root: Path = REPO_ROOT) -> list[int]:
    """The goal cards and every card they need (transitively, by the notebooks' prerequisites), in order."""
    needed: set[int] = set()
    todo = list(goals)
    while todo:
        n = todo.pop()
        if n not in needed:
            needed.add(n)
            if (root / card(n).notebook).exists():  # a card still to come has no prerequisites line yet
                todo.extend(notebook_header(card(n), root).prerequisites)
    return sorted(needed)


def routes_markdown(root: Path = REPO_ROOT) -> str:
    """The README's learner routes, each with its cards, exercise minutes and runtime."""
    times = benchmark_times()
    lines = []
    for goal, ends in ROUTES.items():
        cards = route(ends, root)
        minutes = sum(e.minutes for n in cards if (root / card(n).notebook).exists()
                      for e in notebook_header(card(n), root).exercises)
        seconds = sum(times.get(card(n).notebook, 0) for n in cards)
        path = " → ".join(f"[{n:02d}]({card(n).notebook})" for n in cards)
        lines.append(f"- **{goal}** ({len(cards)} notebooks, about {minutes / 60:.0f} h of exercises, "
                     f"{seconds / 60:.0f} min of CPU): {path}")
    return "\n".join(lines) + "\n"


def _stars(n: int) -> str:
    return "★" * n + "☆" * (3 - n)


def phase_guide_markdown(phase: str, root: Path = REPO_ROOT) -> str:
    """The generated part of a phase guide: the phase's notebooks in order, objectives, exercises, runtimes."""
    if phase not in PHASES:
        raise KeyError(f"no phase {phase!r}: the course's phases are {', '.join(PHASES)}")
    times = benchmark_times()
    cards = [c for c in CARDS if c.phase == phase and (root / c.notebook).exists()]
    headers = {c.number: notebook_header(c, root) for c in cards}
    total_run = sum(times.get(c.notebook, 0) for c in cards)
    total_ex = sum(e.minutes for h in headers.values() for e in h.exercises)
    n_ex = sum(len(h.exercises) for h in headers.values())
    outside = sorted({n for h in headers.values() for n in h.prerequisites if card(n).phase != phase})
    lines = ["## The notebooks, in order", "",
             f"{len(cards)} notebooks, {n_ex} exercises (about {total_ex} minutes of exercise work); running all of "
             f"them takes about {total_run / 60:.0f} minutes of CPU time on 2 cores "
             "(`make benchmark`; the first run of a notebook that needs a course model builds it once).", "",
             "**Before this phase:** " + (", ".join(f"[{n:02d} · {card(n).title}]({_relative(card(n).notebook, phase)})"
                                                    for n in outside) if outside else "nothing: start here."), "",
             "| # | Notebook | What you build | Needs | Exercises | CPU runtime |", "|---|---|---|---|---|---|"]
    for c in cards:
        h = headers[c.number]
        runtime = f"{times[c.notebook]:.0f} s" if c.notebook in times else ""
        lines.append(f"| {c.number:02d} | [{c.title}]({_relative(c.notebook, phase)}) | {c.builds} | "
                     f"{_prerequisite_links(h, phase)} | {len(h.exercises)} ({sum(e.minutes for e in h.exercises)} min)"
                     f" | {runtime} |")
    for c in cards:
        h = headers[c.number]
        lines += ["", f"### {c.number:02d} · {c.title}", "", h.promise, "",
                  f"[Open the notebook]({_relative(c.notebook, phase)}) · "
                  f"[![Open In Colab]({BADGE})]({colab_url(c.notebook)})", "", "**You will**"]
        lines += [f"- {o}" for o in h.objectives]
        lines += ["", f"**Prerequisites:** {h.prerequisites_text}", "",
                  "| Exercise | Difficulty | Minutes |", "|---|---|---|"]
        lines += [f"| {e.number} · {e.name} | {_stars(e.stars)} | {e.minutes} |" for e in h.exercises]
    return "\n".join(lines).rstrip() + "\n"


def _fill(path: Path, start: str, end: str, body: str) -> bool:
    """Rewrite the text between `start` and `end` in a file; return whether anything changed."""
    text = path.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} section to fill: add those two lines where the "
                         "generated part goes")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{body}{end}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


def update_readme(readme: Path = REPO_ROOT / "README.md") -> bool:
    """Rewrite the course map between the README's markers; return whether anything changed."""
    return _fill(readme, README_START, README_END, course_map_markdown())


def update_phase_guides(root: Path = REPO_ROOT) -> list[str]:
    """Rewrite the generated part of every phase guide (phaseN_*/README.md); return the guides that changed."""
    changed = []
    for phase in PHASES:
        guide = root / phase / "README.md"
        if not guide.exists():
            raise FileNotFoundError(f"{guide}: no phase guide; write its objectives, assignment and rubric, with "
                                    f"the lines {GUIDE_START} and {GUIDE_END} where the generated part goes")
        if _fill(guide, GUIDE_START, GUIDE_END, phase_guide_markdown(phase, root)):
            changed.append(f"{phase}/README.md")
    return changed


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["readme"]:
        raise SystemExit("usage: python -m genai_roadmap.course readme   "
                         "(rewrites README.md's course map and the phase guides' generated parts)")
    print("README.md course map " + ("updated" if update_readme() else "already current"))
    guides = update_phase_guides()
    print("phase guides " + (f"updated: {', '.join(guides)}" if guides else "already current"))
