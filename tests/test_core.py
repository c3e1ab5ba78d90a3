import os

import numpy as np
import pytest
import torch

import genai_roadmap as g


def test_seed_everything_makes_runs_repeat():
    g.seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    g.seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", None, True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        g.seed_everything(bad)


def test_device_defaults_to_cpu_and_rejects_unknown():
    assert g.get_device().type == "cpu"
    assert g.get_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="prefer must be"):
        g.get_device("tpu")


def test_cache_dir_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(g.core.CACHE_ENV, str(tmp_path / "c"))
    p = g.cache_dir("models")
    assert p == tmp_path / "c" / "models" and p.is_dir()


def test_cache_dir_default_is_outside_the_repo(monkeypatch):
    monkeypatch.delenv(g.core.CACHE_ENV, raising=False)
    from genai_roadmap.course import REPO_ROOT

    assert REPO_ROOT not in g.cache_dir().parents


def test_timer_measures_and_versions_line_names_torch():
    with g.Timer() as t:
        sum(range(1000))
    assert 0 <= t.seconds < 5
    assert "torch " + torch.__version__ in g.versions_line()
    assert os.environ.get("HF_HUB_OFFLINE", "1")  # tests run offline (set by make test)


def test_gpu_asked_for_but_absent_says_what_to_do(monkeypatch):
    import torch

    from genai_roadmap import core

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"sees no CUDA GPU.*get_device\(\)"):
        core.get_device("cuda")
    assert core.get_device("auto").type in ("cpu", "mps")


def test_outdated_packages_name_the_fix(monkeypatch):
    import importlib.metadata as md

    from genai_roadmap import core

    assert core.outdated_packages() == [], "this environment itself is outdated"
    real = md.version
    monkeypatch.setattr(md, "version", lambda name: "4.0.0" if name == "transformers" else real(name))
    (problem,) = core.outdated_packages()
    assert problem.startswith("transformers 4.0.0 does not satisfy") and "pip install 'transformers" in problem and ">=4." in problem
    with pytest.warns(UserWarning, match="transformers 4.0.0"):
        core.versions_line()


def test_kv_cache_reads_the_cache_under_either_field_name():
    """transformers 5.9 (Colab's) names a model output's cache `past_key_values`; later releases name it `cache`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from genai_roadmap import kv_cache

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(hidden_size=16, num_attention_heads=2, num_key_value_heads=1,
                                         num_hidden_layers=2, intermediate_size=32, vocab_size=32)).eval()
    with torch.no_grad():
        cache = kv_cache(model(torch.tensor([[1, 2, 3, 4]]), use_cache=True))
    assert len(cache.layers) == 2 and cache.layers[0].keys.shape == (1, 1, 4, 8)  # (B, n_kv_heads, T, d_head)
