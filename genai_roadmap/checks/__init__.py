"""Exercise checks, one module per notebook topic.

Each check calls the learner's function on small seeded inputs, compares with a trusted reference
(torch, peft, faiss, a reference implementation) and one hand-worked case, prints one pass line, and on
failure raises :class:`CheckFailed` with what is probably wrong.
"""
from genai_roadmap.checks._common import CheckFailed

__all__ = ["CheckFailed"]
