"""The course map: the 23 roadmap cards as data, the one place they are written down.

README tables, the structure tests and the student tools read this module instead of repeating it.
"""
from __future__ import annotations

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

    @property
    def notebook(self) -> str:
        """Path of the card's notebook, relative to the repository root."""
        return f"{self.phase}/{self.number:02d}_{self.slug}.ipynb"


def _card(number: int, phase: str, title: str, slug: str, topics: str) -> Card:
    return Card(number, phase, title, slug, tuple(t.strip() for t in topics.split(",")))


CARDS: tuple[Card, ...] = (
    _card(1, "phase1_foundations", "Math & Statistics", "math_and_statistics",
          "linear algebra, probability, calculus, information theory"),
    _card(2, "phase1_foundations", "Deep Learning", "deep_learning",
          "backprop, optimizers, loss functions, regularization"),
    _card(3, "phase1_foundations", "Tokenization & Embeddings", "tokenization_and_embeddings",
          "BPE, SentencePiece, word2vec, semantic spaces"),
    _card(4, "phase1_foundations", "Transformers", "transformers",
          "attention, positional encoding, encoder/decoder, KV-cache"),
    _card(5, "phase2_tooling", "PyTorch / JAX", "pytorch_and_jax",
          "tensor ops, autograd, distributed training primitives"),
    _card(6, "phase2_tooling", "Hugging Face", "hugging_face",
          "Transformers, PEFT, Datasets, Inference API"),
    _card(7, "phase2_tooling", "LangChain / LlamaIndex", "langchain_and_llamaindex",
          "chains, agents, document loaders, RAG pipelines"),
    _card(8, "phase2_tooling", "Vector DBs", "vector_databases",
          "Pinecone, Weaviate, Qdrant, pgvector, FAISS"),
    _card(9, "phase2_tooling", "Experiment Tracking", "experiment_tracking",
          "W&B, MLflow, LangSmith, Comet"),
    _card(10, "phase3_architecture", "RAG Systems", "rag_systems",
          "retrieval-augmented generation, chunking strategies, hybrid search"),
    _card(11, "phase3_architecture", "Fine-Tuning", "fine_tuning",
          "LoRA, QLoRA, instruction tuning, RLHF, DPO"),
    _card(12, "phase3_architecture", "Agentic Systems", "agentic_systems",
          "tool use, ReAct, planning loops, multi-agent orchestration"),
    _card(13, "phase3_architecture", "Multimodal", "multimodal",
          "vision-language, image generation, audio-LLM, cross-modal fusion"),
    _card(14, "phase3_architecture", "Prompt Engineering", "prompt_engineering",
          "chain-of-thought, few-shot, system prompts, structured output, DSPy"),
    _card(15, "phase4_production", "Inference Optimization", "inference_optimization",
          "quantization, vLLM, TensorRT-LLM, speculative decoding"),
    _card(16, "phase4_production", "LLMOps", "llmops",
          "prompt versioning, A/B testing, drift detection, evals"),
    _card(17, "phase4_production", "Safety & Guardrails", "safety_and_guardrails",
          "jailbreak defense, PII redaction, output filtering, red-teaming"),
    _card(18, "phase4_production", "Cost Engineering", "cost_engineering",
          "token budgets, caching, batching, model routing, fallbacks"),
    _card(19, "phase4_production", "Evaluation", "evaluation",
          "RAGAS, MT-Bench, custom evals, human-in-the-loop scoring"),
    _card(20, "phase5_frontier", "Pre-training at Scale", "pretraining_at_scale",
          "data pipelines, distributed training, MoE, FSDP/Megatron"),
    _card(21, "phase5_frontier", "Reasoning Models", "reasoning_models",
          "chain-of-thought distillation, o1-style test-time compute, MCTS"),
    _card(22, "phase5_frontier", "Interpretability", "interpretability",
          "mechanistic interpretability, activation steering, sparse autoencoders"),
    _card(23, "phase5_frontier", "Long-context & Memory", "long_context_and_memory",
          "1M+ tokens, RoPE scaling, external memory, retrieval augmentation"),
)


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


# ---------------------------------------------------------------------------- README course map
README_START, README_END = "<!-- course-map:start -->", "<!-- course-map:end -->"
BENCHMARK_CSV = REPO_ROOT / "benchmarks" / "notebooks.csv"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def benchmark_times(csv_path: Path = BENCHMARK_CSV) -> dict[str, float]:
    """Notebook path -> measured seconds on 2 CPU cores, from the benchmark table (if it exists)."""
    from genai_roadmap.benchmark import read_csv  # benchmark imports this module: import here

    return {row.notebook: row.seconds for row in read_csv(csv_path)}


def course_map_markdown(root: Path = REPO_ROOT) -> str:
    """The README's course map: every card by phase, with its notebook, Colab badge and measured runtime."""
    times = benchmark_times()
    lines = []
    for phase, subtitle in PHASES.items():
        lines += [f"### {phase} · {subtitle}", "",
                  "| # | Card | Topics | Notebook | Colab | CPU runtime |", "|---|---|---|---|---|---|"]
        for c in (c for c in CARDS if c.phase == phase):
            exists = (root / c.notebook).exists()
            nb = f"[{c.notebook.split('/')[1]}]({c.notebook})" if exists else "*coming*"
            colab = f"[![Open In Colab]({BADGE})]({colab_url(c.notebook)})" if exists else ""
            runtime = f"{times[c.notebook]:.0f} s" if c.notebook in times else ""
            lines.append(f"| {c.number:02d} | {c.title} | {', '.join(c.topics)} | {nb} | {colab} | {runtime} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def update_readme(readme: Path = REPO_ROOT / "README.md") -> bool:
    """Rewrite the course map between the README's markers; return whether anything changed."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} section to fill")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    new = f"{head}{README_START}\n{course_map_markdown()}{README_END}{tail}"
    if new != text:
        readme.write_text(new)
    return new != text


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["readme"]:
        raise SystemExit("usage: python -m genai_roadmap.course readme   (rewrites README.md's course map)")
    print("README.md course map " + ("updated" if update_readme() else "already current"))
