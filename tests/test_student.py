"""genai_roadmap.student: solutions stripped, outputs cleared, nbgrader metadata, and never a lost file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from genai_roadmap.student import MarkerError, StudentError, main, strip_notebook, write_student_versions

EXERCISE = '''def double(x):
    """x -> 2 * x."""
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION
'''


def notebook(*exercise_sources: str, extra_cells=()) -> nbformat.NotebookNode:
    """A small course-like notebook: title, setup, then (exercise, check) pairs, with outputs."""
    cells = [new_markdown_cell("# 01 · Demo\n\nA demo."),
             new_code_cell("import math", metadata={"tags": ["setup"]}, execution_count=1)]
    for n, src in enumerate(exercise_sources, start=1):
        cells.append(new_markdown_cell(f"### Exercise {n} · thing ★ · 5 min"))
        cells.append(new_code_cell(src, metadata={"tags": ["exercise"], "execution": {"iopub.status.idle": "2026-01-01T00:00:00Z"}},
                                   execution_count=2 * n))
        cells.append(new_code_cell(f"check.thing_{n}(thing_{n})", metadata={"tags": ["check"]},
                                   execution_count=2 * n + 1,
                                   outputs=[new_output("stream", name="stdout", text="✓ passed\n")]))
    cells.extend(extra_cells)
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def write(path: Path, nb: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path):
    """A tmp course folder with one phase folder holding two notebooks and a non-course notebook."""
    phase = tmp_path / "course" / "phase1_foundations"
    write(phase / "02_second.ipynb", notebook(EXERCISE))
    write(phase / "01_first.ipynb", notebook(EXERCISE, EXERCISE))
    write(phase / "scratch.ipynb", notebook(EXERCISE))
    return phase


# ---------------------------------------------------------------------------------------------- stripping

def test_region_replaced_at_marker_indentation():
    src = ("def f(x, flag):\n"
           "    y = x + 1\n"
           "    ### BEGIN SOLUTION\n"
           "    if flag:\n"
           "        return y\n"
           "    ### END SOLUTION\n"
           "    return 0\n"
           "\n"
           "class A:\n"
           "    def g(self):\n"
           "        ### BEGIN SOLUTION\n"
           "        return 1\n"
           "        ### END SOLUTION")
    student = strip_notebook(notebook(src), "01_demo.ipynb")
    assert student.cells[3].source == ("def f(x, flag):\n"
                                       "    y = x + 1\n"
                                       "    raise NotImplementedError\n"
                                       "    return 0\n"
                                       "\n"
                                       "class A:\n"
                                       "    def g(self):\n"
                                       "        raise NotImplementedError")


def test_stub_is_valid_python_and_raises():
    student = strip_notebook(notebook(EXERCISE), "01_demo.ipynb")
    assert student.cells[3].source == 'def double(x):\n    """x -> 2 * x."""\n    raise NotImplementedError\n'
    namespace: dict = {}
    exec(student.cells[3].source, namespace)
    with pytest.raises(NotImplementedError):
        namespace["double"](3)


def test_your_code_here_kept_or_added_once():
    with_comment = EXERCISE.replace("    ### BEGIN", "    # YOUR CODE HERE\n    ### BEGIN")
    kept = strip_notebook(notebook(with_comment), "nb").cells[3].source
    assert kept.endswith("    # YOUR CODE HERE\n    raise NotImplementedError\n")
    assert strip_notebook(notebook(with_comment), "nb", your_code_here=True).cells[3].source == kept
    added = strip_notebook(notebook(EXERCISE), "nb", your_code_here=True).cells[3].source
    assert added == kept


def test_outputs_and_counts_cleared_and_source_untouched():
    nb = notebook(EXERCISE)
    before = nbformat.writes(nb)
    student = strip_notebook(nb, "01_demo.ipynb")
    assert nbformat.writes(nb) == before, "strip_notebook must not change its input"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        assert "execution" not in cell.metadata
    assert student.cells[1].source == "import math"
    assert student.cells[0].source == nb.cells[0].source
    assert student.metadata.kernelspec.name == "python3"
    nbformat.validate(student)


def test_nbgrader_metadata():
    student = strip_notebook(notebook(EXERCISE, EXERCISE), "phase1_foundations/01_demo.ipynb")
    meta = [c.metadata["nbgrader"] for c in student.cells]
    assert meta[3] == {"grade": False, "grade_id": "01_demo-exercise-1", "locked": False,
                       "schema_version": 3, "solution": True, "task": False}
    assert meta[4] == {"grade": True, "grade_id": "01_demo-check-1", "locked": True, "points": 1,
                       "schema_version": 3, "solution": False, "task": False}
    assert meta[6]["grade_id"] == "01_demo-exercise-2" and meta[7]["grade_id"] == "01_demo-check-2"
    for i in (0, 1, 2, 5):  # markdown and setup: read-only
        assert meta[i] == {"grade": False, "grade_id": f"01_demo-cell-{i}", "locked": True,
                           "schema_version": 3, "solution": False, "task": False}
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids)), "nbgrader needs unique grade ids"
    assert student.cells[3].metadata["tags"] == ["exercise"], "tags are kept"


# ------------------------------------------------------------------------------------------ bad markers

BAD = {
    "end without begin": ("def f():\n    return 1\n    ### END SOLUTION\n", "without a `### BEGIN SOLUTION`"),
    "begin without end": ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "without a `### END SOLUTION`"),
    "nested begin": ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n"
                     "    ### END SOLUTION\n", "nested BEGIN"),
    "near miss": ("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\n", "isn't one"),
    "lower case": ("def f():\n    ### begin solution\n    return 1\n    ### end solution\n", "isn't one"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_markers_refused_naming_notebook_and_cell(case):
    source, problem = BAD[case]
    nb = notebook(EXERCISE, source)
    with pytest.raises(MarkerError) as info:
        strip_notebook(nb, "phase1_foundations/01_demo.ipynb")
    message = str(info.value)
    assert "phase1_foundations/01_demo.ipynb" in message
    assert "cell 6" in message and "`def f():`" in message
    assert problem in message
    assert info.value.cell_index == 6 and info.value.first_line == "def f():"
    assert isinstance(info.value, ValueError)


def test_marker_in_markdown_refused():
    nb = notebook(EXERCISE, extra_cells=[new_markdown_cell("Solution:\n```\n### BEGIN SOLUTION\n```")])
    with pytest.raises(MarkerError, match=r"01_demo.ipynb: cell 5 \(`Solution:`\): a solution marker in a markdown"):
        strip_notebook(nb, "01_demo.ipynb")


def test_nothing_to_strip_refused():
    with pytest.raises(MarkerError, match="nothing to strip"):
        strip_notebook(notebook(), "01_demo.ipynb")


# ------------------------------------------------------------------------------------------------ files

def test_writes_phase_layout_and_expands_folders_sorted(course, tmp_path):
    out = tmp_path / "student"
    lines: list[str] = []
    written = write_student_versions([course], out, log=lines.append)
    assert written == [out / "phase1_foundations" / "01_first.ipynb", out / "phase1_foundations" / "02_second.ipynb"]
    assert len(lines) == 2 and "01_first.ipynb (2 exercises)" in lines[0]
    student = nbformat.read(written[0], as_version=4)
    assert "BEGIN SOLUTION" not in nbformat.writes(student)
    assert student.cells[3].metadata.nbgrader.solution is True
    assert not (out / "phase1_foundations" / "scratch.ipynb").exists(), "folders expand to NN_*.ipynb only"


def test_explicit_notebook_and_duplicates(course, tmp_path):
    out = tmp_path / "student"
    written = write_student_versions([course / "02_second.ipynb", course, course / "scratch.ipynb"], out)
    assert [p.name for p in written] == ["02_second.ipynb", "01_first.ipynb", "scratch.ipynb"]


@pytest.mark.parametrize("where", ["same", "inside"])
def test_refuses_out_in_source_folder(course, where):
    out = course if where == "same" else course / "student"
    before = sorted(course.rglob("*"))
    with pytest.raises(StudentError, match="folder of the source notebooks"):
        write_student_versions([course / "01_first.ipynb"], out)
    assert sorted(course.rglob("*")) == before, "nothing written"


def test_refuses_existing_target_and_writes_nothing(course, tmp_path):
    out = tmp_path / "student"
    target = write(out / "phase1_foundations" / "02_second.ipynb", notebook(EXERCISE))
    learner_work = target.read_bytes()
    with pytest.raises(StudentError, match="already exists.*never overwrites"):
        write_student_versions([course], out)
    assert target.read_bytes() == learner_work
    assert not (out / "phase1_foundations" / "01_first.ipynb").exists(), "validate all before writing anything"


def test_refuses_writing_over_sources_from_repo_root(course):
    with pytest.raises(StudentError, match="would be the source notebook itself"):
        write_student_versions([course], course.parent)


def test_one_bad_notebook_blocks_all(course, tmp_path):
    write(course / "03_bad.ipynb", notebook(BAD["begin without end"][0]))
    out = tmp_path / "student"
    with pytest.raises(MarkerError, match="03_bad.ipynb: cell 3"):
        write_student_versions([course], out)
    assert not out.exists()


def test_all_problems_listed(course, tmp_path):
    write(course / "03_bad.ipynb", notebook(BAD["nested begin"][0]))
    write(course / "04_empty.ipynb", notebook())
    with pytest.raises(StudentError) as info:
        write_student_versions([course], tmp_path / "student")
    assert "2 problems" in str(info.value) and "03_bad" in str(info.value) and "04_empty" in str(info.value)


def test_same_name_from_two_places_refused(tmp_path):
    a = write(tmp_path / "a" / "phase1_foundations" / "01_x.ipynb", notebook(EXERCISE))
    b = write(tmp_path / "b" / "phase1_foundations" / "01_x.ipynb", notebook(EXERCISE))
    with pytest.raises(StudentError, match="would both be written"):
        write_student_versions([a, b], tmp_path / "student")


@pytest.mark.parametrize("bad", ["missing.ipynb", "notes.txt", "empty_folder"])
def test_bad_arguments(tmp_path, bad):
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(StudentError):
        write_student_versions([tmp_path / bad], tmp_path / "student")


# ------------------------------------------------------------------------------------------------- main

def test_main_exit_codes(course, tmp_path, capsys):
    out = tmp_path / "student"
    assert main([str(course), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3 and printed[-1] == f"2 student notebooks written to {out}"

    assert main([str(course), "--out", str(out)]) == 2, "second run: targets exist"
    err = capsys.readouterr().err
    assert "error:" in err and "already exists" in err

    assert main([str(course / "01_first.ipynb"), "--out", str(course)]) == 2
    assert main([str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "s2")]) == 2
    with pytest.raises(SystemExit) as info:
        main([str(course)])  # --out is required
    assert info.value.code == 2


def test_module_runs_as_script(course, tmp_path):
    out = tmp_path / "student"
    done = subprocess.run([sys.executable, "-m", "genai_roadmap.student", str(course / "01_first.ipynb"),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (out / "phase1_foundations" / "01_first.ipynb").exists()
    again = subprocess.run([sys.executable, "-m", "genai_roadmap.student", str(course / "01_first.ipynb"),
                            "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
