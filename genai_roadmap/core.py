"""What every notebook needs and none teaches: seeding, device, cache directory, a timer."""
from __future__ import annotations

import os
import random
import sys
import time
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "GENAI_ROADMAP_CACHE"


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and PyTorch so a notebook gives the same numbers on every run."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def get_device(prefer: str = "cpu"):
    """The torch device to use: 'cpu' by default (the course runs there); 'auto' picks a GPU if present."""
    import torch

    if prefer == "cpu":
        return torch.device("cpu")
    if prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if prefer == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"get_device('cuda'): torch {torch.__version__} sees no CUDA GPU (a CPU build, no driver, "
                           "or a CPU-only runtime). The course runs on the CPU: use get_device() or "
                           "get_device('auto'); on Colab pick Runtime -> Change runtime type -> a GPU")
    if prefer == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise RuntimeError("get_device('mps'): no Apple-silicon GPU (MPS) is available to torch here; use get_device() "
                           "(the CPU) or get_device('auto')")
    if prefer in ("cuda", "mps"):
        return torch.device(prefer)
    raise ValueError(f"prefer must be 'cpu', 'auto', 'cuda' or 'mps', got {prefer!r}")


def cache_dir(*parts: str) -> Path:
    """The course cache (models, data), outside the repository.

    Defaults to ~/.cache/genai_roadmap; set GENAI_ROADMAP_CACHE to move it.
    """
    root = os.environ.get(CACHE_ENV)
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "genai_roadmap"
    path = path.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Timer:
    """A context manager that measures wall time: `with Timer() as t: ...; t.seconds`."""

    def __init__(self, label: str | None = None):
        self.label = label
        self.seconds = float("nan")

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start
        if self.label:
            print(f"{self.label}: {self.seconds:.2f} s")


def outdated_packages() -> list[str]:
    """Installed packages older than this package's declared minimums, each with the command that fixes it.

    Reads the requirements the installed `genai-roadmap` declares (pyproject's ranges); empty when all are met
    or the package's metadata is not installed.
    """
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement
    from packaging.version import Version

    try:
        declared = requires("genai-roadmap") or []
    except PackageNotFoundError:
        return []
    problems = []
    for line in declared:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra (test), not needed by the notebooks
        try:
            have = version(req.name)
        except PackageNotFoundError:
            problems.append(f"{req.name} is not installed (needs {req.specifier}): pip install '{req}'")
            continue
        if req.specifier and not req.specifier.contains(Version(have), prereleases=True):
            problems.append(f"{req.name} {have} does not satisfy {req.specifier}: pip install '{req}'")
    return problems


def versions_line() -> str:
    """One line naming the versions a notebook ran with, for bug reports; warns about too-old packages."""
    import warnings

    import numpy as np
    import torch

    problems = outdated_packages()
    if problems:
        warnings.warn("some installed packages are not the versions the course needs, so cells may fail:\n  "
                      + "\n  ".join(problems) + "\n(or reinstall everything: `make install`, or "
                      "`pip install -c constraints.txt -e .` in the course folder)", stacklevel=2)

    parts = [f"python {sys.version.split()[0]}", f"torch {torch.__version__}", f"numpy {np.__version__}"]
    try:
        import transformers

        parts.append(f"transformers {transformers.__version__}")
    except ImportError:
        pass
    return " · ".join(parts)


def on_colab() -> bool:
    return "google.colab" in sys.modules


def kv_cache(output):
    """The KV cache (a transformers `Cache`) of a model output from `model(ids, use_cache=True)`.

    transformers renamed the output field `past_key_values` to `cache` in v5 (Colab's 5.9 still has only
    `past_key_values`; newer releases keep it as a deprecated alias that warns), so read whichever is there.
    """
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@contextmanager
def quiet_loading():
    """Hide transformers' "Loading weights" progress bar inside the block (small models load in a blink)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
