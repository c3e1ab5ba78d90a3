"""GenAI Roadmap Lab's support package: what every notebook needs but none teaches."""
from genai_roadmap.core import Timer, cache_dir, get_device, kv_cache, on_colab, seed_everything, versions_line

__version__ = "0.1.0"
__all__ = ["Timer", "cache_dir", "get_device", "kv_cache", "on_colab", "seed_everything", "versions_line"]
