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


# ------------------------------------------------------------------ what the notebooks say, read by the map and guides

EXISTING = [c for c in course.CARDS if (course.REPO_ROOT / c.notebook).exists()]


@pytest.mark.parametrize("c", EXISTING, ids=[f"{c.number:02d}" for c in EXISTING])
def test_notebook_header_parses(c):
    import nbformat

    h = course.notebook_header(c)
    assert h.promise.startswith("By the end you will have"), f"{c.notebook}: no promise sentence"
    assert 3 <= len(h.objectives) <= 5, f"{c.notebook}: {len(h.objectives)} `You will` bullets read"
    assert all(n < c.number for n in h.prerequisites)
    assert [e.number for e in h.exercises] == list(range(1, len(h.exercises) + 1)), \
        f"{c.notebook}: exercise headers `### Exercise N · name ★★ (10 min)` must number 1, 2, ..."
    assert all(1 <= e.stars <= 3 and 0 < e.minutes <= 30 for e in h.exercises)
    nb = nbformat.read(course.REPO_ROOT / c.notebook, as_version=4)
    solution_cells = sum(1 for x in nb.cells if x.cell_type == "code" and "### BEGIN SOLUTION" in x.source)
    assert len(h.exercises) == solution_cells, \
        f"{c.notebook}: {len(h.exercises)} exercise headers for {solution_cells} solution cells"
    assert len(c.builds) <= 110, f"card {c.number}: `builds` should be a short phrase for the course map"


def test_routes_start_with_phase_1_and_hold_every_prerequisite():
    for goal, ends in course.ROUTES.items():
        cards = course.route(ends)
        assert set(range(1, 5)) <= set(cards) and set(ends) <= set(cards), goal
        for n in cards:
            assert set(course.notebook_header(course.card(n)).prerequisites) <= set(cards), (goal, n)


@pytest.mark.parametrize("phase", list(course.PHASES))
def test_phase_guide_is_current_and_complete(phase):
    guide = course.REPO_ROOT / phase / "README.md"
    assert guide.exists(), f"{phase}/README.md: no phase guide"
    text = guide.read_text()
    section = text.split(course.GUIDE_START, 1)[1].split(course.GUIDE_END, 1)[0]
    assert section.strip() == course.phase_guide_markdown(phase).strip(), \
        f"{phase}/README.md is stale: run `python -m genai_roadmap.course readme`"
    for heading in ("## Learning objectives", "## As a course module", "## Suggested assignment",
                    "## Grading rubric (100 points)", "## The notebooks, in order"):
        assert heading in text, f"{phase}/README.md: no `{heading}` section"
    rubric = text.split("## Grading rubric (100 points)", 1)[1].split("\n\n", 2)[1]
    points = [int(row.split("|")[2]) for row in rubric.splitlines()[2:]]
    assert sum(points) == 100, f"{phase}/README.md: the rubric's points add up to {sum(points)}, not 100"
    assert f"make student PHASE={phase}" in text
    for c in (c for c in course.CARDS if c.phase == phase):
        assert f"]({Path(c.notebook).name})" in section, f"{phase}/README.md does not link {c.notebook}"


def test_guides_refuse_a_file_without_markers(tmp_path):
    bare = tmp_path / "README.md"
    bare.write_text("# no markers\n")
    with pytest.raises(ValueError, match="phase-guide:start"):
        course._fill(bare, course.GUIDE_START, course.GUIDE_END, "x\n")
    with pytest.raises(KeyError, match="phase1_foundations"):
        course.phase_guide_markdown("phase9_nothing")
