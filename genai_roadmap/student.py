"""Student versions of the course notebooks: the solutions taken out, nothing else changed.

    python -m genai_roadmap.student phase1_foundations/04_transformers.ipynb --out ~/genai-student
    python -m genai_roadmap.student phase1_foundations phase2_tooling --out ~/genai-student
    genai-student phase*/ --out student        # the console script; student/ is git-ignored

Each code cell's `### BEGIN SOLUTION` ... `### END SOLUTION` region (nbgrader's markers, lines of their
own, indented like the code) becomes one line `raise NotImplementedError` at the BEGIN marker's
indentation; outputs and execution counts are cleared; and every cell gets nbgrader (schema 3) metadata:
solution cells are "Autograded answer" cells, the `check`-tagged cells "Autograder tests" worth 1 point,
everything else "Read-only". So a student version works as it is, and an instructor can also hand it to
nbgrader.

The course's ground rule is that no tool of ours overwrites a learner's notebook or loses work, so this
tool never overwrites anything: it refuses (exit code 2, nothing written) when the output folder is, or
is inside, a source notebook's folder, when a file it would write already exists, and when a notebook's
markers are malformed. Everything is validated before the first file is written.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Callable, Iterable

import nbformat
from nbformat import NotebookNode

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
YOUR_CODE_HERE = "# YOUR CODE HERE"
STUB = "raise NotImplementedError"
CHECK_TAG = "check"
NOTEBOOK_PATTERN = re.compile(r"^\d{2}_.+\.ipynb$")

# A line that looks like it was meant to be a marker. Anything matching this that is not exactly BEGIN
# or END (a typo, "# BEGIN SOLUTION", "### Begin Solution") is refused: stripping would silently
# leave the solution in the student version.
_NEAR_MARKER = re.compile(r"(BEGIN|END)[ _]+SOLUTION", re.IGNORECASE)
_GRADE_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class StudentError(ValueError):
    """An input the tool refuses: the message says which and what to do instead."""


class MarkerError(StudentError):
    """A notebook's solution markers are malformed (or it has none).

    Attributes name the notebook, the cell index (counting from 0, as nbformat does; None when the
    problem is the whole notebook) and the first line of that cell, so the author can find it.
    """

    def __init__(self, notebook: str, cell_index: int | None, first_line: str, problem: str):
        self.notebook = notebook
        self.cell_index = cell_index
        self.first_line = first_line
        self.problem = problem
        where = notebook if cell_index is None else f"{notebook}: cell {cell_index} (`{first_line}`)"
        super().__init__(f"{where}: {problem}")


# ------------------------------------------------------------------------------------------------------
# One notebook


def _source(cell: NotebookNode) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _first_line(text: str, width: int = 60) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= width else line[: width - 1] + "…"
    return ""


def _is_marker(line: str, marker: str) -> bool:
    return line.strip() == marker


def strip_solutions(source: str, *, notebook: str = "<notebook>", cell_index: int = 0,
                    your_code_here: bool = False) -> tuple[str, int]:
    """Replace each solution region of one code cell's source; return (new source, number of regions).

    The region, markers included, becomes `raise NotImplementedError` at the BEGIN marker's indentation
    (with `# YOUR CODE HERE` above it when `your_code_here` and the line above BEGIN isn't that already).
    Raises MarkerError for END without BEGIN, BEGIN without END, a BEGIN inside an open region, or a line
    that looks like a marker but isn't exactly one.
    """
    first = _first_line(source)

    def refuse(problem: str) -> MarkerError:
        return MarkerError(notebook, cell_index, first, problem)

    out: list[str] = []
    open_at: int | None = None  # line number (1-based) of the open region's BEGIN
    indent = ""
    regions = 0
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        if _is_marker(line, BEGIN):
            if open_at is not None:
                raise refuse(f"line {number}: `{BEGIN}` inside the region opened on line {open_at} "
                             f"(nested BEGIN; close the first region with `{END}`)")
            open_at = number
            indent = line[: len(line) - len(line.lstrip())]
            continue
        if _is_marker(line, END):
            if open_at is None:
                raise refuse(f"line {number}: `{END}` without a `{BEGIN}` before it")
            newline = line[len(line.rstrip("\r\n")):]
            above = out[-1].strip() if out else ""
            if your_code_here and above != YOUR_CODE_HERE:
                out.append(f"{indent}{YOUR_CODE_HERE}\n")
            out.append(f"{indent}{STUB}{newline}")
            open_at = None
            regions += 1
            continue
        if _NEAR_MARKER.search(line):
            raise refuse(f"line {number}: `{line.strip()}` looks like a solution marker but isn't one; "
                         f"write exactly `{BEGIN}` / `{END}` on a line of its own")
        if open_at is None:
            out.append(line)
    if open_at is not None:
        raise refuse(f"line {open_at}: `{BEGIN}` without a `{END}` after it")
    return "".join(out), regions


def _grade_prefix(name: str) -> str:
    stem = Path(name).stem if name.endswith(".ipynb") else Path(name).name
    return _GRADE_ID_UNSAFE.sub("-", stem).strip("-") or "notebook"


def _nbgrader(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def strip_notebook(nb: NotebookNode, name: str, *, your_code_here: bool = False) -> NotebookNode:
    """The student version of `nb` (which is left unchanged). `name` names it in errors and grade ids.

    Solution cells (code cells with markers) become nbgrader solution cells `<stem>-exercise-N`; cells
    tagged `check` become graded, locked test cells `<stem>-check-N` worth 1 point; all other cells are
    locked read-only cells `<stem>-cell-<index>`. Raises MarkerError if the markers are malformed, a
    non-code cell contains one, or there is no solution region at all ("nothing to strip").
    """
    student = copy.deepcopy(nb)
    prefix = _grade_prefix(name)
    exercises = checks = 0
    for index, cell in enumerate(student.cells):
        source = _source(cell)
        meta = cell.setdefault("metadata", {})
        for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
            meta.pop(key, None)
        if cell.cell_type != "code":
            if _NEAR_MARKER.search(source):
                raise MarkerError(name, index, _first_line(source),
                                  f"a solution marker in a {cell.cell_type} cell; markers belong in code cells "
                                  "(the student version would show this cell as it is)")
            meta["nbgrader"] = _nbgrader(f"{prefix}-cell-{index}", grade=False, solution=False, locked=True)
            continue
        new_source, regions = strip_solutions(source, notebook=name, cell_index=index,
                                              your_code_here=your_code_here)
        cell.source = new_source
        cell.outputs = []
        cell.execution_count = None
        tags = meta.get("tags", [])
        if regions:
            exercises += 1
            meta["nbgrader"] = _nbgrader(f"{prefix}-exercise-{exercises}", grade=False, solution=True, locked=False)
        elif CHECK_TAG in tags:
            checks += 1
            meta["nbgrader"] = _nbgrader(f"{prefix}-check-{checks}", grade=True, solution=False, locked=True,
                                         points=1)
        else:
            meta["nbgrader"] = _nbgrader(f"{prefix}-cell-{index}", grade=False, solution=False, locked=True)
    if exercises == 0:
        raise MarkerError(name, None, "", f"nothing to strip: no `{BEGIN}` ... `{END}` region in any code cell")
    return student


# ------------------------------------------------------------------------------------------------------
# Many notebooks, written to a folder


def _display(path: Path) -> str:
    """The path as a learner would write it: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def expand(paths: Iterable[str | Path], log: Callable[[str], None] | None = None) -> list[Path]:
    """Notebook arguments as resolved paths: folders become their `NN_*.ipynb` notebooks, sorted.

    Duplicates are dropped. A folder without such notebooks is noted (via `log`) and skipped; a missing
    path, a file that isn't a notebook, or no notebook at all is a StudentError.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and NOTEBOOK_PATTERN.match(p.name))
            if not inside and log:
                log(f"note: no NN_*.ipynb notebooks in {raw}; skipped")
            found.extend(p.resolve() for p in inside)
        elif path.is_file():
            if path.suffix != ".ipynb":
                raise StudentError(f"{raw}: not a notebook (.ipynb) or a folder of notebooks")
            found.append(path.resolve())
        else:
            raise StudentError(f"{raw}: no such notebook or folder")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise StudentError("no notebooks to convert: give notebooks or phase folders holding NN_*.ipynb files")
    return unique


def plan(paths: Iterable[str | Path], out: str | Path, *, your_code_here: bool = False,
         log: Callable[[str], None] | None = None) -> list[tuple[Path, Path, NotebookNode]]:
    """Validate everything and return (source, target, student notebook) triples; write nothing.

    Raises StudentError (one problem) or a StudentError listing every problem found.
    """
    sources = expand(paths, log)
    out_dir = Path(out).expanduser().resolve()
    problems: list[StudentError] = []

    if out_dir.exists() and not out_dir.is_dir():
        problems.append(StudentError(f"--out {out}: exists and is not a folder"))
    for folder in dict.fromkeys(src.parent for src in sources):
        if out_dir == folder or out_dir.is_relative_to(folder):
            problems.append(StudentError(
                f"--out {out}: is {'' if out_dir == folder else 'inside '}the folder of the source notebooks "
                f"({_display(folder)}); student versions must go to a separate folder, e.g. --out student"))

    planned: list[tuple[Path, Path, NotebookNode]] = []
    targets: dict[Path, Path] = {}
    source_set = set(sources)
    for src in sources:
        target = out_dir / src.parent.name / src.name
        if target in targets:
            problems.append(StudentError(f"{_display(src)} and {_display(targets[target])} would both be written "
                                         f"to {_display(target)}; convert them into separate --out folders"))
            continue
        targets[target] = src
        if target.resolve() in source_set:
            problems.append(StudentError(
                f"--out {out}: {_display(target)} would be the source notebook itself; "
                "choose a new or empty --out folder, e.g. --out student"))
        elif target.exists() or target.is_symlink():
            problems.append(StudentError(
                f"{_display(target)} already exists; this tool never overwrites a notebook (it may hold a "
                "learner's work): choose a new or empty --out folder, or move that file away yourself"))
        try:
            nb = nbformat.read(src, as_version=4)
        except Exception as e:  # unreadable JSON, wrong format: name the file
            problems.append(StudentError(f"{_display(src)}: cannot be read as a notebook ({e})"))
            continue
        try:
            student = strip_notebook(nb, _display(src), your_code_here=your_code_here)
            nbformat.validate(student)
        except StudentError as e:
            problems.append(e)
            continue
        except nbformat.ValidationError as e:
            problems.append(StudentError(f"{_display(src)}: the student version is not a valid notebook ({e})"))
            continue
        planned.append((src, target, student))

    if len(problems) == 1:
        raise problems[0]
    if problems:
        error = StudentError(f"{len(problems)} problems, nothing written:\n" + "\n".join(f"  - {p}" for p in problems))
        error.problems = problems
        raise error
    return planned


def write_student_versions(paths: Iterable[str | Path], out: str | Path, *, your_code_here: bool = False,
                           log: Callable[[str], None] | None = None) -> list[Path]:
    """Write the student version of each notebook (or phase folder's notebooks) to out/<phase>/<name>.

    Validates every input first (see `plan`) and writes nothing if anything is wrong. Files are created
    exclusively, so even a file that appears between the check and the write is never overwritten.
    `log`, if given, receives one line per written file. Returns the written paths.
    """
    planned = plan(paths, out, your_code_here=your_code_here, log=log)
    written: list[Path] = []
    for src, target, student in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        text = nbformat.writes(student)
        try:
            with open(target, "x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            raise StudentError(f"{_display(target)} appeared while writing; left it untouched "
                               f"(already written: {', '.join(map(_display, written)) or 'nothing'})") from None
        written.append(target)
        if log:
            n = sum(1 for c in student.cells if c.metadata.get("nbgrader", {}).get("solution"))
            log(f"wrote {_display(target)} ({n} exercise{'s' if n != 1 else ''}) from {_display(src)}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genai-student",
        description="Write student versions of course notebooks: solutions replaced by "
                    "`raise NotImplementedError`, outputs cleared, nbgrader metadata added. "
                    "Never overwrites a file.")
    parser.add_argument("paths", nargs="+", metavar="NOTEBOOK_OR_FOLDER",
                        help="notebooks, or phase folders (their NN_*.ipynb notebooks, sorted)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where to write DIR/<phase folder>/<notebook>; must not be a source folder "
                             "and must not already hold those files")
    parser.add_argument("--your-code-here", action="store_true",
                        help="put nbgrader's `# YOUR CODE HERE` comment above each `raise NotImplementedError`")
    args = parser.parse_args(argv)

    def note(line: str) -> None:
        print(line, file=sys.stderr if line.startswith("note:") else sys.stdout)

    try:
        written = write_student_versions(args.paths, args.out, your_code_here=args.your_code_here, log=note)
    except StudentError as e:
        print(f"genai-student: error: {e}", file=sys.stderr)
        return 2
    print(f"{len(written)} student notebook{'s' if len(written) != 1 else ''} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
