"""Every course notebook follows the skeleton in the conventions (header, setup, exercises, sections).

One test per part of the skeleton, parametrised by card over the notebooks that exist, so a failure
names the notebook, the cell and what to change. These tests only read the committed notebooks.
"""
from __future__ import annotations

import posixpath
import re
from functools import lru_cache

import nbformat
import pytest

from genai_roadmap.course import CARDS, PHASES, REPO_ROOT, Card, card, colab_url, repository_url
from genai_roadmap.student import BEGIN, END, MarkerError, strip_solutions

EXISTING = [c for c in CARDS if (REPO_ROOT / c.notebook).exists()]
LAST_CARD = max(c.number for c in CARDS)
BADGE = re.compile(r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
                   r"\((?P<url>[^)\s]+)\)")
RUNTIME = re.compile(r"\*\*Runtime:\*\*\s*about (?P<seconds>\d+) s on 2 CPU cores")
BULLET = re.compile(r"^\s{0,3}(?:[-*+]|\d+[.)])\s+\S")
LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def by_card(cards):
    return pytest.mark.parametrize("card", cards, ids=[c.notebook.split("/")[-1].removesuffix(".ipynb") for c in cards])


parametrize_existing = by_card(EXISTING)


@lru_cache(maxsize=None)
def load(notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(REPO_ROOT / notebook, as_version=4)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def where(c: Card, index: int, cell=None) -> str:
    first = next((ln.strip() for ln in (cell.source if cell else "").splitlines() if ln.strip()), "")
    return f"{c.notebook} cell {index}" + (f" (`{first[:60]}`)" if first else "")


def code_cells(nb) -> list[tuple[int, nbformat.NotebookNode]]:
    return [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


def markdown_lines(cell) -> list[str | None]:
    """The cell's lines, with None for the lines of fenced code blocks (their `#` are comments)."""
    out, fenced = [], False
    for line in cell.source.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            out.append(None)
        else:
            out.append(None if fenced else line)
    return out


def headers(nb, level: int | None = 2) -> list[tuple[tuple[int, int], int, str]]:
    """((cell index, line index), level, text) of the markdown headers, in order (all levels if None)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for j, line in enumerate(markdown_lines(cell)):
            m = re.match(r"(#{1,6}) (.*)", line or "")
            if m and (level is None or len(m[1]) == level):
                found.append(((i, j), len(m[1]), m[2].strip()))
    return found


def bullets_after(text: str, marker: str) -> int:
    """How many list items follow the line holding `marker` (blank lines and continuations allowed)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if marker in ln), None)
    if start is None:
        return 0
    count = 0
    for line in lines[start + 1:]:
        if BULLET.match(line):
            count += 1
        elif not line.strip() or (count and line.startswith(("  ", "\t"))):
            continue
        else:
            break
    return count


def section(nb, title: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The (cell, line) where `## title` starts and where the section ends (next `## ` or the end)."""
    found = headers(nb)
    for k, (pos, _, text) in enumerate(found):
        if text == title or text.startswith(title + " "):
            end = found[k + 1][0] if k + 1 < len(found) else (len(nb.cells), 0)
            return pos, end
    return None


def section_markdown(nb, span) -> str:
    """The markdown text of a section (from its header line to the end, across cells)."""
    (c0, l0), (c1, l1) = span
    parts = []
    for i in range(c0, min(c1 + 1, len(nb.cells))):
        if nb.cells[i].cell_type != "markdown":
            continue
        lines = nb.cells[i].source.splitlines()
        lo = l0 if i == c0 else 0
        hi = l1 if i == c1 else len(lines)
        parts.extend(lines[lo:hi])
    return "\n".join(parts)


def section_code(nb, span) -> list[int]:
    (c0, _), (c1, _) = span
    return [i for i in range(c0 + 1, min(c1, len(nb.cells))) if nb.cells[i].cell_type == "code"]


def new_notebook_of(cell) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[cell])


def exercise_cells(nb) -> list[int]:
    return [i for i, cell in code_cells(nb) if "exercise" in tags(cell)]


# ---------------------------------------------------------------------------------------------- header

def check_header(card: Card, nb) -> None:
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{card.notebook}: the first cell must be the markdown title cell"
    lines = first.source.splitlines()
    title = f"# {card.number:02d} · {card.title}"
    assert lines and lines[0].strip() == title, f"{card.notebook}: first line must be `{title}`, got `{lines[0] if lines else ''}`"

    badge = BADGE.search(first.source)
    assert badge, f"{card.notebook}: no Colab badge `[![Open In Colab](...colab-badge.svg)](URL)` in the title cell"
    assert badge["url"] == colab_url(card.notebook), \
        f"{card.notebook}: the Colab badge links to {badge['url']}, expected {colab_url(card.notebook)}"

    n = bullets_after(first.source, "**You will**")
    assert 3 <= n <= 5, f"{card.notebook}: `**You will**` needs 3-5 bullets under it, found {n}"

    assert "**Prerequisites:**" in first.source, f"{card.notebook}: no `**Prerequisites:**` line in the title cell"
    earlier = {c.notebook for c in CARDS if c.number < card.number}
    for link in LINK.finditer(first.source):
        target = link["target"]
        if target.endswith(".ipynb") and "://" not in target:
            resolved = posixpath.normpath(posixpath.join(card.phase, target))
            assert resolved in earlier, \
                f"{card.notebook}: prerequisite link {target} is not an earlier notebook of the course map"

    runtime = RUNTIME.search(first.source)
    assert runtime, f"{card.notebook}: no `**Runtime:** about N s on 2 CPU cores` line in the title cell"
    assert 0 < int(runtime["seconds"]) <= 300, \
        f"{card.notebook}: stated runtime {runtime['seconds']} s; the budget is 120 s and the hard limit 300 s"


def check_colab_and_setup(card: Card, nb) -> None:
    code = code_cells(nb)
    assert len(code) >= 2, f"{card.notebook}: needs the colab and setup code cells"
    (i, colab), (j, setup) = code[0], code[1]
    assert "colab" in tags(colab), f"{where(card, i, colab)}: the first code cell must be tagged `colab`"
    assert '"google.colab" in sys.modules' in colab.source, \
        f"{where(card, i, colab)}: install only on Colab: `if \"google.colab\" in sys.modules:`"
    pip = [ln for ln in colab.source.splitlines() if "%pip install" in ln]
    assert len(pip) == 1 and repository_url() in pip[0], \
        f"{where(card, i, colab)}: one `%pip install` line installing git+{repository_url()}"
    assert [k for k, c in code if "colab" in tags(c)] == [i], f"{card.notebook}: one `colab` cell only"

    assert "setup" in tags(setup), f"{where(card, j, setup)}: the second code cell must be tagged `setup`"
    assert [k for k, c in code if "setup" in tags(c)] == [j], f"{card.notebook}: one `setup` cell only"
    assert "seed_everything(" in setup.source, f"{where(card, j, setup)}: the setup cell must call seed_everything(0)"
    assert re.search(r"^from genai_roadmap\.checks import \w+ as check\b", setup.source, re.M), \
        f"{where(card, j, setup)}: the setup cell must `from genai_roadmap.checks import <topic> as check`"


# ------------------------------------------------------------------------------------------- exercises

def check_exercises(card: Card, nb) -> None:
    exercises = exercise_cells(nb)
    least = 4 if card.number == 4 else 3
    assert len(exercises) >= least, f"{card.notebook}: {len(exercises)} `exercise` cells, needs at least {least}"
    setup = next(i for i, c in code_cells(nb) if "setup" in tags(c))

    for n, i in enumerate(exercises, start=1):
        cell = nb.cells[i]
        assert i > setup, f"{where(card, i, cell)}: exercises come after the setup cell"
        try:
            _, regions = strip_solutions(cell.source, notebook=card.notebook, cell_index=i)
        except MarkerError as e:
            pytest.fail(str(e))
        assert regions == 1, f"{where(card, i, cell)}: exactly one `{BEGIN}` ... `{END}` region, found {regions}"

        # The markdown cell right before: its last header is the exercise's (a reading of the previous
        # result may come first in the same cell).
        before = nb.cells[i - 1]
        own = headers(new_notebook_of(before), level=None) if before.cell_type == "markdown" else []
        header = f"{'#' * own[-1][1]} {own[-1][2]}" if own else ""
        assert re.match(rf"### Exercise {n} · \S", header), \
            f"{where(card, i, cell)}: the markdown cell before it must end with a `### Exercise {n} · <name>` " \
            f"header, got `{header}`"
        assert "★" in header, f"{where(card, i - 1, before)}: give the difficulty in stars (★, ★★, ★★★) in `{header}`"

        assert i + 1 < len(nb.cells), f"{where(card, i, cell)}: no check cell after the exercise"
        after = nb.cells[i + 1]
        assert after.cell_type == "code" and "check" in tags(after), \
            f"{where(card, i + 1, after)}: the cell right after exercise {n} must be a code cell tagged `check`"
        assert "check." in after.source, f"{where(card, i + 1, after)}: the check cell must call `check.<name>(...)`"
        defined = re.findall(r"^def (\w+)\(", cell.source, re.M)
        assert any(re.search(rf"\([^)]*\b{name}\b", after.source) for name in defined), \
            f"{where(card, i + 1, after)}: the check should be given the exercise's function ({', '.join(defined)})"

    # Markers anywhere else would be stripped, but the student-version test would never run that cell.
    for i, cell in enumerate(nb.cells):
        marked = BEGIN in cell.source or END in cell.source
        if marked and i not in exercises:
            pytest.fail(f"{where(card, i, cell)}: solution markers outside an `exercise`-tagged code cell")
        if "check" in tags(cell) and i - 1 not in exercises:
            pytest.fail(f"{where(card, i, cell)}: a `check` cell must come right after an `exercise` cell")


# -------------------------------------------------------------------------------------------- sections

def check_sections(card: Card, nb) -> None:
    numbered = [text for _, _, text in headers(nb) if re.match(r"\d+ · \S", text)]
    numbers = [int(text.split(" ")[0]) for text in numbered]
    assert numbers and numbers == list(range(1, len(numbers) + 1)), \
        f"{card.notebook}: numbered sections `## 1 · Title`, `## 2 · ...` in order, found {numbered}"

    spans = {}
    for title in ("Measured", "Going further", "Summary"):
        spans[title] = section(nb, title)
        assert spans[title], f"{card.notebook}: no `## {title}` section"
    assert spans["Measured"][0] < spans["Going further"][0] < spans["Summary"][0], \
        f"{card.notebook}: the sections go `## Measured`, `## Going further`, `## Summary`, in that order"

    asserting = [i for i in section_code(nb, spans["Measured"]) if re.search(r"^\s*assert\b", nb.cells[i].source, re.M)]
    assert asserting, f"{card.notebook}: `## Measured` needs a code cell (after the header) that asserts its numbers"

    text = section_markdown(nb, spans["Summary"])
    n = sum(1 for line in text.splitlines() if BULLET.match(line))
    assert 3 <= n <= 5, f"{card.notebook}: `## Summary` needs 3-5 bullets, found {n}"
    if card.number == LAST_CARD:
        return
    assert "Next:" in text, f"{card.notebook}: `## Summary` must end with `**Next:** [NN · Title](path)`"
    following = card_after(card)
    line = next(ln for ln in text.splitlines() if "Next:" in ln)
    links = [posixpath.normpath(posixpath.join(card.phase, m["target"])) for m in LINK.finditer(line)]
    expected = posixpath.relpath(following.notebook, card.phase)
    assert following.notebook in links, f"{card.notebook}: `Next:` should link to {expected}, got `{line.strip()}`"


def card_after(c: Card) -> Card:
    return card(c.number + 1)


# ------------------------------------------------------------------------------------------------ hygiene

PIP = re.compile(r"^\s*[!%]\s*(?:pip|conda|mamba|uv)\b|\bpip3?\s+install\b", re.M)
FROM_PRETRAINED = re.compile(r"""from_pretrained\(\s*(?P<prefix>[rRbBfF]*)(?P<q>["'])(?P<name>[^"']*)(?P=q)""")


def check_hygiene(card: Card, nb) -> None:
    for i, cell in code_cells(nb):
        assert not re.search(r"\bsys\.path\b", cell.source), \
            f"{where(card, i, cell)}: no sys.path edits; the package is installed (`pip install -e .`)"
        if "colab" not in tags(cell):
            assert not PIP.search(cell.source), f"{where(card, i, cell)}: no installs outside the colab cell"
        for m in FROM_PRETRAINED.finditer(cell.source):
            name = m["name"]
            local = name.startswith(("/", "./", "../", "~")) or ("f" in m["prefix"].lower() and name.startswith("{"))
            assert local, (f"{where(card, i, cell)}: from_pretrained(\"{name}\") would download from the hub; "
                           "load the course models from the cache (genai_roadmap.models) and name hub models "
                           "only in the `## Going further` markdown")


def check_executed(card: Card, nb) -> None:
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        f"{card.notebook}: kernelspec should be python3 (the kernel CI and learners have)"
    ran = [(i, cell) for i, cell in code_cells(nb) if cell.source.strip()]
    counts = [cell.execution_count for _, cell in ran]
    assert counts == list(range(1, len(ran) + 1)), \
        f"{card.notebook}: commit it executed top to bottom in a fresh kernel (execution counts {counts})"
    for i, cell in ran:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert not errors, f"{where(card, i, cell)}: committed with an error output ({errors[0].get('ename')})"
        if "check" in tags(cell):
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            assert any(line.startswith("✓") for line in text.splitlines()), \
                f"{where(card, i, cell)}: the committed check cell should show its `✓ ... passed` line"
    # A cell that draws must show its figure: a notebook executed with a non-inline backend
    # (MPLBACKEND=Agg) loses every plot silently.
    drawing = [i for i, cell in ran if re.search(r"\bplt\.(show|subplots|figure)\(|\bheatmap\(", cell.source)]
    shown = [i for i, cell in ran if any("image/png" in o.get("data", {}) for o in cell.outputs)]
    assert not drawing or shown, \
        f"{card.notebook}: cells {drawing[:3]} draw plots but no figure was saved: execute it with the inline " \
        "backend (not MPLBACKEND=Agg) and commit the outputs"
    missing = [i for i in drawing if "plt.show(" in nb.cells[i].source and i not in shown]
    assert not missing, f"{card.notebook}: cells {missing[:3]} call plt.show() but show no figure"



# -------------------------------------------------------------------- the committed notebooks

@parametrize_existing
def test_title_badge_you_will_prerequisites_runtime(card: Card):
    check_header(card, load(card.notebook))


@parametrize_existing
def test_colab_cell_then_setup_cell(card: Card):
    check_colab_and_setup(card, load(card.notebook))


@parametrize_existing
def test_exercises_with_header_markers_and_check(card: Card):
    check_exercises(card, load(card.notebook))


@parametrize_existing
def test_numbered_sections_measured_going_further_summary(card: Card):
    check_sections(card, load(card.notebook))


@parametrize_existing
def test_no_path_hacks_installs_or_hub_downloads(card: Card):
    check_hygiene(card, load(card.notebook))


@parametrize_existing
def test_executed_top_to_bottom_without_errors(card: Card):
    check_executed(card, load(card.notebook))


# ------------------------------------------------------------------------------------------ repository

def test_phase_folders_hold_only_course_notebooks():
    expected = {c.notebook for c in CARDS}
    by_number = {f"{c.number:02d}": c for c in CARDS}
    stray = []
    for phase in PHASES:
        assert (REPO_ROOT / phase).is_dir(), f"phase folder {phase}/ is missing"
        for path in sorted((REPO_ROOT / phase).glob("*.ipynb")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel not in expected:
                owner = by_number.get(path.name[:2])
                stray.append(rel + (f" (card {owner.number} is {owner.notebook})" if owner else ""))
    for path in sorted(REPO_ROOT.glob("[0-9][0-9]_*.ipynb")):
        stray.append(path.name + " (notebooks live in their phase folder)")
    assert not stray, "notebooks the course map (genai_roadmap/course.py) does not list: " + "; ".join(stray)


def test_readme_mentions_make_targets():
    readme = REPO_ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    text = readme.read_text(encoding="utf-8")
    if not text.strip():
        pytest.skip("README.md is still empty")
    for target in ("make test", "make lab"):
        assert target in text, f"README.md should tell the learner about `{target}`"


# ------------------------------------------------------- self-test: the checks on a made-up notebook

def conforming_notebook(c: Card) -> nbformat.NotebookNode:
    """A notebook that follows the skeleton, executed (counts and outputs), for testing the checks."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    prev = f"../{card(c.number - 1).notebook}" if c.number > 1 else "none"
    title = (f"# {c.number:02d} · {c.title}\n\nYou will have built a thing.\n\n"
             f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(c.notebook)})\n\n"
             "**You will**\n- build a\n- measure b\n- compare c\n\n"
             f"**Prerequisites:** [previous]({prev})\n\n**Runtime:** about 60 s on 2 CPU cores")
    colab = ('# On Colab, install the course\'s support package (locally, `make lab` already did).\nimport sys\n'
             'if "google.colab" in sys.modules:\n'
             f'    %pip install -q "genai-roadmap @ git+{repository_url()}"')
    setup = ("from genai_roadmap import seed_everything, get_device, versions_line\n"
             "from genai_roadmap.checks import demo as check\nseed_everything(0)")
    cells = [new_markdown_cell(title), new_code_cell(colab, metadata={"tags": ["colab"]}),
             new_code_cell(setup, metadata={"tags": ["setup"]}), new_markdown_cell("## 1 · Idea\n\nWhy."),
             new_code_cell("x = 1")]
    for n in range(1, 5):
        cells += [new_markdown_cell(f"### Exercise {n} · part {n} ★★ · 5 min\n\n<details><summary>Hint</summary>"
                                    "h</details>"),
                  new_code_cell(f'def part_{n}(x):\n    """x -> x."""\n    {BEGIN}\n    return x\n    {END}\n',
                                metadata={"tags": ["exercise"]}),
                  new_code_cell(f"check.part_{n}(part_{n})", metadata={"tags": ["check"]},
                                outputs=[new_output("stream", name="stdout", text=f"✓ part_{n} passed\n")])]
    nxt = f"**Next:** [next]({posixpath.relpath(card(c.number + 1).notebook, c.phase)})" if c.number < LAST_CARD else ""
    cells += [new_markdown_cell("## 2 · More"), new_markdown_cell("## Measured"),
              new_code_cell("print('| a |')\nassert 1 < 2"), new_markdown_cell("## Going further\n\nUse gpt2."),
              new_markdown_cell(f"## Summary\n\n- one\n- two\n- three\n\n{nxt}")]
    count = 0
    for cell in cells:
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


SKELETON_CHECKS = [check_header, check_colab_and_setup, check_exercises, check_sections, check_hygiene,
                   check_executed]


@by_card([card(4), card(1), card(LAST_CARD)])
def test_checks_accept_a_conforming_notebook(card: Card):
    nb = conforming_notebook(card)
    for check in SKELETON_CHECKS:
        check(card, nb)


def _swap(nb, old, new):
    for cell in nb.cells:
        cell.source = cell.source.replace(old, new)


MUTATIONS = {
    "wrong title": lambda nb: _swap(nb, "# 04 · Transformers", "# 04 · Transformer"),
    "badge to another notebook": lambda nb: _swap(nb, "04_transformers.ipynb)", "03_tokenization.ipynb)"),
    "two objectives": lambda nb: _swap(nb, "- compare c\n", ""),
    "no runtime": lambda nb: _swap(nb, "**Runtime:** about 60 s", "**Runtime:** a minute"),
    "runtime over the limit": lambda nb: _swap(nb, "about 60 s", "about 400 s"),
    "prerequisite to a later notebook": lambda nb: _swap(nb, "03_tokenization_and_embeddings", "05_x"),
    "install url": lambda nb: _swap(nb, repository_url(), "https://github.com/someone/else"),
    "no seeding": lambda nb: _swap(nb, "seed_everything(0)", "pass"),
    "three exercises in 04": lambda nb: nb.cells.__delitem__(slice(14, 17)),
    "two regions": lambda nb: _swap(nb, "    return x\n", f"    return x\n    {END}\n    {BEGIN}\n    pass\n"),
    "missing END": lambda nb: _swap(nb, f"    {END}\n", ""),
    "exercise misnumbered": lambda nb: _swap(nb, "### Exercise 2 ·", "### Exercise 3 ·"),
    "no stars": lambda nb: _swap(nb, " ★★ ", " "),
    "check untagged": lambda nb: nb.cells[7].metadata.update(tags=[]),
    "check gets another function": lambda nb: _swap(nb, "check.part_1(part_1)", "check.part_1(len)"),
    "no measured assert": lambda nb: _swap(nb, "assert 1 < 2", "pass"),
    "no going further": lambda nb: _swap(nb, "## Going further", "## Further"),
    "summary before measured": lambda nb: nb.cells.insert(len(nb.cells) - 4, nb.cells.pop()),
    "next to the wrong notebook": lambda nb: _swap(nb, "05_pytorch_and_jax", "06_hugging_face"),
    "sys.path": lambda nb: _swap(nb, "x = 1", "import sys; sys.path.insert(0, '..')"),
    "pip outside colab": lambda nb: _swap(nb, "x = 1", "%pip install faiss-cpu"),
    "hub id": lambda nb: _swap(nb, "x = 1", 'm = AutoModel.from_pretrained("gpt2")'),
    "not executed": lambda nb: nb.cells[4].update(execution_count=None),
    "error output": lambda nb: nb.cells[4].outputs.append(
        nbformat.v4.new_output("error", ename="NameError", evalue="x", traceback=[])),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_checks_reject_a_broken_notebook(mutation):
    c = card(4)
    nb = conforming_notebook(c)
    MUTATIONS[mutation](nb)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        for check in SKELETON_CHECKS:
            check(c, nb)


def test_local_from_pretrained_is_fine():
    c = card(4)
    nb = conforming_notebook(c)
    _swap(nb, "x = 1", 'm = AutoModel.from_pretrained("./tiny")\nn = AutoModel.from_pretrained(f"{path}/x")')
    check_hygiene(c, nb)


def test_checks_accept_headers_sharing_cells_and_ignore_fenced_code():
    c = card(4)
    nb = conforming_notebook(c)
    nb.cells[5].source = "The scores above read well.\n\n" + nb.cells[5].source  # reading, then the exercise
    going_further, summary = nb.cells[-2], nb.cells.pop()
    going_further.source += "\n\n```python\n## not a header: a comment in a code block\n```\n\n" + summary.source
    for check in SKELETON_CHECKS:
        check(c, nb)
    going_further.source = going_further.source.replace("## Summary", "```\n## Summary\n```")
    with pytest.raises(AssertionError, match="no `## Summary` section"):
        check_sections(c, nb)
