"""The course map is the one source of truth: it must agree with the roadmap and the files."""
import re
from pathlib import Path

import pytest

from genai_roadmap import course

ROADMAP = course.REPO_ROOT.parent / "shared" / "ROADMAP.md"


def test_23_cards_in_order_with_their_phase_folders():
    assert [c.number for c in course.CARDS] == list(range(1, 24))
    for c in course.CARDS:
        assert c.phase in course.PHASES
        assert (course.REPO_ROOT / c.phase).is_dir(), f"missing phase folder {c.phase}"
        assert re.fullmatch(r"phase[1-5]_\w+/\d\d_[a-z0-9_]+\.ipynb", c.notebook)
    assert len({c.notebook for c in course.CARDS}) == 23


def test_card_lookup_says_what_is_wrong():
    assert course.card(4).title == "Transformers"
    with pytest.raises(KeyError, match="1-23"):
        course.card(24)


@pytest.mark.skipif(not ROADMAP.exists(), reason="shared/ROADMAP.md is not beside this checkout")
def test_course_map_matches_the_roadmap():
    rows = re.findall(r"^\| (\d\d) \| (phase\w+) \| ([^|]+?) \| ([^|]+?) \|$", ROADMAP.read_text(), re.M)
    assert len(rows) == 23
    for (num, phase, title, topics), c in zip(rows, course.CARDS):
        assert (int(num), phase, title, topics) == (c.number, c.phase, c.title, ", ".join(c.topics))


def test_repository_url_is_declared_once_and_used_for_colab():
    url = course.repository_url()
    assert url.startswith("https://github.com/")
    assert course.colab_url("phase1_foundations/04_transformers.ipynb") == (
        "https://colab.research.google.com/github/" + url.removeprefix("https://github.com/")
        + "/blob/main/phase1_foundations/04_transformers.ipynb")


def test_no_stray_notebooks_outside_phase_folders():
    root = course.REPO_ROOT
    stray = [p for p in root.rglob("*.ipynb")
             if not any(part.startswith(".") for part in p.relative_to(root).parts)
             and p.parent.name not in course.PHASES]
    assert not stray, f"notebooks outside the phase folders: {stray}"


def test_every_phase_folder_is_real(tmp_path: Path):
    assert sorted(course.PHASES) == sorted(p.name for p in course.REPO_ROOT.glob("phase[1-5]_*"))


def test_readme_course_map_is_current():
    readme = (course.REPO_ROOT / "README.md").read_text()
    section = readme.split(course.README_START, 1)[1].split(course.README_END, 1)[0]
    assert section.strip() == course.course_map_markdown().strip(), \
        "README's course map is stale: run `python -m genai_roadmap.course readme`"
    assert "make test" in readme and "make lab" in readme
