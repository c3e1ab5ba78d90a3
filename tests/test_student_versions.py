"""The student versions work: run only the colab/setup/exercise/check cells, stubs fail their checks cleanly.

For each course notebook, the student version (made by genai_roadmap.student) is executed keeping only the
cells tagged colab, setup, exercise and check, in order. Every check must then fail with CheckFailed (the
stub's NotImplementedError, turned into "not implemented yet"), never with NameError or ImportError, which
would mean an exercise needs a cell the learner may not have run. The same subset of the committed notebook
must run without an error and every check must print its "✓" line: the solutions pass their checks and
need nothing but the setup cell and earlier exercises.

The self-tests at the bottom run the same machinery on a tiny notebook built here, so this file is useful
(and fast) before any course notebook exists.
"""
from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from genai_roadmap.course import CARDS, REPO_ROOT, Card
from genai_roadmap.student import write_student_versions

RUN_TAGS = ("colab", "setup", "exercise", "check")
CELL_TIMEOUT = 120
STUB_FAILURES = {"CheckFailed", "NotImplementedError", "AssertionError"}
NOT_SELF_CONTAINED = {"NameError", "ImportError", "ModuleNotFoundError", "UnboundLocalError"}

EXISTING = [c for c in CARDS if (REPO_ROOT / c.notebook).exists()]


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def run_subset(nb: nbformat.NotebookNode, workdir: Path) -> list[tuple[int, nbformat.NotebookNode]]:
    """Execute only the colab/setup/exercise/check code cells of `nb`, in order, in a fresh python3 kernel.

    Errors are recorded in the outputs, not raised. Returns (index in `nb`, executed cell) pairs. The
    kernel runs in `workdir`, so nothing a cell writes lands in the repository.
    """
    keep = [(i, copy.deepcopy(c)) for i, c in enumerate(nb.cells)
            if c.cell_type == "code" and set(tags(c)) & set(RUN_TAGS)]
    for _, cell in keep:
        cell.outputs, cell.execution_count = [], None
    subset = new_notebook(cells=[c for _, c in keep], metadata=copy.deepcopy(nb.metadata))
    client = NotebookClient(subset, kernel_name="python3", timeout=CELL_TIMEOUT, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return [(i, cell) for (i, _), cell in zip(keep, subset.cells)]


def _errors(cell) -> list[nbformat.NotebookNode]:
    return [o for o in cell.outputs if o.output_type == "error"]


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.get("name") == "stdout")


def _where(name: str, index: int, cell) -> str:
    first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    return f"{name} cell {index} (`{first[:60]}`)"


def student_problems(name: str, executed: list[tuple[int, nbformat.NotebookNode]]) -> list[str]:
    """What is wrong with an executed student-version subset (empty when every check failed cleanly)."""
    problems = []
    for index, cell in executed:
        errors = _errors(cell)
        error = f"{errors[0].ename}: {errors[0].evalue}" if errors else ""
        where = _where(name, index, cell)
        kind = set(tags(cell)) & set(RUN_TAGS)
        if errors and errors[0].ename in NOT_SELF_CONTAINED:
            problems.append(f"{where}: {error}; the exercise must need only the setup cell and earlier exercises")
        elif "check" in kind:
            if not errors:
                problems.append(f"{where}: the check passed on the stub (printed {_stdout(cell).strip()!r})")
            elif errors[0].ename not in STUB_FAILURES:
                problems.append(f"{where}: the check failed with {error}; it should raise CheckFailed on the stub")
        elif "exercise" in kind:
            if errors and errors[0].ename != "NotImplementedError":
                problems.append(f"{where}: the stubbed exercise cell raised {error}")
        elif errors:
            problems.append(f"{where}: {error}")
    return problems


def committed_problems(name: str, executed: list[tuple[int, nbformat.NotebookNode]]) -> list[str]:
    """What is wrong with an executed subset of the committed notebook (empty when all checks passed)."""
    problems = []
    for index, cell in executed:
        errors = _errors(cell)
        where = _where(name, index, cell)
        if errors:
            problems.append(f"{where}: {errors[0].ename}: {errors[0].evalue} (run with only the "
                            "colab/setup/exercise/check cells; does it use a name from another cell?)")
        elif "check" in tags(cell) and not any(ln.startswith("✓") for ln in _stdout(cell).splitlines()):
            problems.append(f"{where}: the check printed no `✓` line")
    return problems


def student_version(source: Path, tmp_path: Path) -> nbformat.NotebookNode:
    (written,) = write_student_versions([source], tmp_path / "student")
    return nbformat.read(written, as_version=4)


# ------------------------------------------------------------------------------------ course notebooks

by_card = pytest.mark.parametrize("card", EXISTING, ids=[Path(c.notebook).stem for c in EXISTING])


@pytest.mark.slow
@by_card
def test_student_version_checks_fail_cleanly(card: Card, tmp_path):
    student = student_version(REPO_ROOT / card.notebook, tmp_path)
    executed = run_subset(student, tmp_path)
    assert any("check" in tags(c) for _, c in executed), f"{card.notebook}: no check cells ran"
    problems = student_problems(f"student {card.notebook}", executed)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@by_card
def test_committed_exercises_pass_their_checks_alone(card: Card, tmp_path):
    nb = nbformat.read(REPO_ROOT / card.notebook, as_version=4)
    executed = run_subset(nb, tmp_path)
    problems = committed_problems(card.notebook, executed)
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------- self-test on a tiny notebook

SETUP = '''import types
from genai_roadmap.checks._common import call, expect, passed

def _double(fn):
    expect(call("double", fn, 3) == 6, "double", "multiply by 2?")
    passed("double")

def _square(fn):
    expect(call("square", fn, 3) == 9, "square", "x * x?")
    passed("square")

check = types.SimpleNamespace(double=_double, square=_square)
'''


def tiny_notebook(check_2: str = "check.square(square)", exercise_2_extra: str = "") -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# 01 · Tiny"),
        new_code_cell('import sys\nif "google.colab" in sys.modules:\n    pass', metadata={"tags": ["colab"]}),
        new_code_cell(SETUP, metadata={"tags": ["setup"]}),
        new_code_cell("HELPER = 3\nraise RuntimeError('untagged cells are not run')"),
        new_markdown_cell("### Exercise 1 · double ★"),
        new_code_cell('def double(x):\n    """x -> 2x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n'
                      "    ### END SOLUTION\n", metadata={"tags": ["exercise"]}),
        new_code_cell("check.double(double)", metadata={"tags": ["check"]}),
        new_markdown_cell("### Exercise 2 · square ★★"),
        new_code_cell(exercise_2_extra + 'def square(x):\n    """x -> x * x, using double for nothing."""\n'
                      "    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION\n", metadata={"tags": ["exercise"]}),
        new_code_cell(check_2, metadata={"tags": ["check"]}),
    ]
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def _write(tmp_path: Path, nb) -> Path:
    path = tmp_path / "course" / "phase1_foundations" / "01_tiny.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_machinery_on_a_good_tiny_notebook(tmp_path):
    source = _write(tmp_path, tiny_notebook())
    student = run_subset(student_version(source, tmp_path), tmp_path)
    assert [i for i, _ in student] == [1, 2, 5, 6, 8, 9], "only colab/setup/exercise/check cells run"
    assert student_problems("tiny", student) == []
    assert {_errors(c)[0].ename for i, c in student if i in (6, 9)} == {"CheckFailed"}

    committed = run_subset(nbformat.read(source, as_version=4), tmp_path)
    assert committed_problems("tiny", committed) == []
    assert _stdout(committed[-1][1]).startswith("✓ square passed")


def test_machinery_catches_a_name_from_an_untagged_cell(tmp_path):
    source = _write(tmp_path, tiny_notebook(check_2="print(HELPER)\ncheck.square(square)"))
    student = student_problems("tiny", run_subset(student_version(source, tmp_path), tmp_path))
    assert len(student) == 1 and "NameError" in student[0] and "cell 9" in student[0]
    committed = committed_problems("tiny", run_subset(nbformat.read(source, as_version=4), tmp_path))
    assert len(committed) == 1 and "NameError" in committed[0]


def test_machinery_catches_a_check_that_passes_on_the_stub(tmp_path):
    source = _write(tmp_path, tiny_notebook(check_2="print('✓ square passed')"))
    problems = student_problems("tiny", run_subset(student_version(source, tmp_path), tmp_path))
    assert len(problems) == 1 and "passed on the stub" in problems[0]


def test_machinery_catches_an_exercise_needing_an_import_not_in_setup(tmp_path):
    source = _write(tmp_path, tiny_notebook(exercise_2_extra="from definitely_not_installed import thing\n"))
    problems = student_problems("tiny", run_subset(student_version(source, tmp_path), tmp_path))
    assert problems and "ModuleNotFoundError" in problems[0] and "cell 8" in problems[0]
