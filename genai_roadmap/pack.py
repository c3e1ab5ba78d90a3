"""Student packs: a phase (or several) ready to hand out, with everything its notebooks need.

    python -m genai_roadmap.pack phase3_architecture --out ~/handout-phase3
    python -m genai_roadmap.pack phase3_architecture --out ~/handout-phase3 --answer-key ~/key-phase3
    make student PHASE=phase3_architecture OUT=~/handout-phase3

The pack (the `--out` folder, which must be new or empty):

    README.md             for the students: set-up, the notebooks and exercises, how checks work, submitting
    pack.json             what was packed: source commit, notebooks, exercises, nbgrader grade ids and points
    <phase>/NN_*.ipynb    the student versions (genai_roadmap.student: solutions out, checks in, nbgrader metadata)
    course_package/       the support package the notebooks import (pyproject.toml, constraints.txt, genai_roadmap/),
                          installed with `pip install -c course_package/constraints.txt ./course_package`

No solution is in the pack. The answer key stays with the instructor: the committed notebooks, or with
`--answer-key DIR` the same notebooks as nbgrader *source* notebooks (solutions kept between nbgrader's markers,
the student versions' cell metadata), ready for `nbgrader generate_assignment` and `nbgrader autograde`.
Like the student tool, this never overwrites anything: a non-empty `--out` or `--answer-key` is refused, and
nothing is written unless every input is valid.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import nbformat

from genai_roadmap import course
from genai_roadmap.student import StudentError, expand, plan, strip_notebook

PACKAGE_FILES = ("pyproject.toml", "constraints.txt", "README.md")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _empty_or_new(path: Path, flag: str) -> None:
    if path.exists() and not path.is_dir():
        raise StudentError(f"{flag} {path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise StudentError(f"{flag} {path}: the folder is not empty; this tool never overwrites or mixes into "
                           "existing files (they may hold a learner's work): choose a new or empty folder")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def answer_key(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The nbgrader source version of a course notebook: the student version's metadata, the solutions kept.

    nbgrader's `generate_assignment` turns it into the student version (it strips the same markers) and
    records the check cells' sources, which `autograde` restores before grading.
    """
    student = strip_notebook(nb, name)  # validates the markers, assigns grade ids
    key = copy.deepcopy(nb)
    for cell, stripped in zip(key.cells, student.cells):
        cell.metadata = stripped.metadata
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return key


def _exercise_rows(header: course.NotebookHeader) -> str:
    return ", ".join(f"{e.number} · {e.name} ({'★' * e.stars}, {e.minutes} min)" for e in header.exercises)


def student_readme(phases: list[str], notebooks: list[tuple[Path, course.Card | None]], commit: str | None) -> str:
    """The pack's README for students."""
    names = " and ".join(f"Phase {list(course.PHASES).index(p) + 1} · {course.PHASES[p].split(':')[0]}"
                         for p in phases)
    times = course.benchmark_times()
    rows = []
    for target, c in notebooks:
        rel = f"{target.parent.name}/{target.name}"
        if c is None:
            rows.append(f"| [{target.name}]({rel}) | | |")
            continue
        header = course.notebook_header(c)
        runtime = f"{times[c.notebook]:.0f} s" if c.notebook in times else ""
        rows.append(f"| [{c.number:02d} · {c.title}]({rel}) | {_exercise_rows(header)} | {runtime} |")
    source = f"commit `{commit[:10]}`" if commit else "a working copy"
    return f"""# GenAI Roadmap Lab · {names}: student pack

Notebooks from [GenAI Roadmap Lab]({course.repository_url()}) ({source}), with the exercise solutions taken
out. Each notebook runs offline on an ordinary CPU in a few minutes; nothing downloads at run time.

## Set up, once

Needs Python 3.11 or newer and about 3 GB of disk. In this folder:

```bash
python3 -m venv .venv
source .venv/bin/activate          # Windows: .venv\\Scripts\\activate
pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu   # the CPU build (macOS: drop --index-url)
pip install -c course_package/constraints.txt ./course_package
jupyter lab
```

Install PyTorch first and on its own: a plain `pip install torch` pulls a CUDA build of several GB.
**On Google Colab** instead: upload a notebook (File → Upload notebook) and run it; its first cell installs the
support package there.

The first notebook that needs a course model trains it once (a few minutes, with a progress bar) and caches it
under `~/.cache/genai_roadmap`; later notebooks load it in seconds.

## The notebooks

| Notebook | Exercises (difficulty, minutes) | CPU runtime |
|---|---|---|
""" + "\n".join(rows) + """

## How the exercises work

- Each exercise is a function with a docstring (inputs, outputs, shapes) whose body is
  `raise NotImplementedError`: replace that line with your code and run the cell.
- Run the **check** cell right after it. It compares your function with a trusted reference (PyTorch, faiss,
  peft, ...) and prints a `✓` line, or says what is probably wrong. Hints are in the collapsed *Hint* blocks.
- Do not edit the check cells: your instructor's grader runs its own copy of them.
- Cells after an exercise may use your function: if a check fails, fix the exercise before going on.
- Before you hand in: *Kernel → Restart Kernel and Run All Cells*, and see that every check prints `✓`.

## Handing in

Hand in the notebooks as your instructor asks (the executed `.ipynb` files). If a cell fails in a way its
message does not explain, note the message and the cell, and say so when you hand in.
"""


def write_pack(paths: Iterable[str | Path], out: str | Path, *, answer_key_dir: str | Path | None = None,
               log: Callable[[str], None] | None = None) -> Path:
    """Write a student pack for these phase folders (or notebooks) to `out`; return `out`.

    Validates everything first (markers, targets, empty folders) and writes nothing if anything is wrong.
    """
    out_dir = Path(out).expanduser().resolve()
    key_dir = Path(answer_key_dir).expanduser().resolve() if answer_key_dir is not None else None
    _empty_or_new(out_dir, "--out")
    sources = expand(paths, log)
    for src in sources:
        if _inside(out_dir, src.parent):
            raise StudentError(f"--out {out}: is inside the folder of the source notebooks ({src.parent}); "
                               "a pack must go to a separate folder, e.g. --out ~/handout")
    if key_dir is not None:
        _empty_or_new(key_dir, "--answer-key")
        if _inside(key_dir, out_dir) or _inside(out_dir, key_dir):
            raise StudentError(f"--answer-key {answer_key_dir}: must not be inside the pack (--out {out}) nor hold "
                               "it: the pack goes to students, the answer key stays with you")
        if any(_inside(key_dir, src.parent) for src in sources):
            raise StudentError(f"--answer-key {answer_key_dir}: is inside a source notebooks' folder; "
                               "choose a separate folder")
    planned = plan(sources, out_dir)  # raises StudentError listing every problem; writes nothing
    package_root = Path(course.__file__).resolve().parent
    repo_root = package_root.parent
    missing = [f for f in PACKAGE_FILES if not (repo_root / f).exists()]
    if missing:
        raise StudentError(f"cannot pack the support package: {', '.join(missing)} not found beside "
                           f"{package_root}; run this from a checkout of the course repository")
    keys = [(target, answer_key(nbformat.read(src, as_version=4), src.name)) for src, target, _ in planned] \
        if key_dir is not None else []

    by_path = {(repo_root / c.notebook).resolve(): c for c in course.CARDS}
    commit = _git_commit(repo_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"source": course.repository_url(), "commit": commit,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "notebooks": []}
    notebooks = []
    for src, target, student in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "x", encoding="utf-8") as f:
            f.write(nbformat.writes(student))
        grades = [c.metadata["nbgrader"] for c in student.cells if c.cell_type == "code"]
        manifest["notebooks"].append({
            "path": f"{target.parent.name}/{target.name}",
            "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
            "exercises": [g["grade_id"] for g in grades if g["solution"]],
            "checks": {g["grade_id"]: g["points"] for g in grades if g["grade"]},
            "points": sum(g.get("points", 0) for g in grades if g["grade"]),
        })
        notebooks.append((target, by_path.get(src)))
        if log:
            log(f"wrote {target.parent.name}/{target.name}")
    shutil.copytree(package_root, out_dir / "course_package" / "genai_roadmap", ignore=_SKIP)
    for name in PACKAGE_FILES:
        shutil.copy2(repo_root / name, out_dir / "course_package" / name)
    phases = list(dict.fromkeys(t.parent.name for t, _ in notebooks))
    (out_dir / "README.md").write_text(student_readme(phases, notebooks, commit))
    (out_dir / "pack.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if log:
        log("wrote README.md, pack.json and course_package/ (the support package)")
    if key_dir is not None:
        for target, key in keys:
            path = key_dir / target.parent.name / target.name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as f:
                f.write(nbformat.writes(key))
        if log:
            log(f"wrote the answer key ({len(keys)} nbgrader source notebooks) to {key_dir}")
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genai_roadmap.pack",
        description="Write a student pack: student notebooks (solutions out, checks in, nbgrader metadata), the "
                    "support package they import and a README for students. Never overwrites a file.")
    parser.add_argument("paths", nargs="+", metavar="PHASE_OR_NOTEBOOK",
                        help="phase folders (their NN_*.ipynb notebooks) or notebooks")
    parser.add_argument("--out", required=True, metavar="DIR", help="a new or empty folder for the pack")
    parser.add_argument("--answer-key", metavar="DIR",
                        help="also write nbgrader source notebooks (with solutions) here: a new or empty folder "
                             "outside the pack")
    args = parser.parse_args(argv)
    try:
        out = write_pack(args.paths, args.out, answer_key_dir=args.answer_key, log=print)
    except StudentError as e:
        print(f"genai_roadmap.pack: error: {e}", file=sys.stderr)
        return 2
    print(f"student pack ready in {out}: hand out the whole folder"
          + (f"; the answer key is in {args.answer_key}" if args.answer_key else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
