"""Student packs: everything a phase's notebooks need, no solution, nbgrader-ready, and the checks run from the pack."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from test_student_versions import run_subset, tags

from genai_roadmap import course
from genai_roadmap.pack import answer_key, main, write_pack
from genai_roadmap.student import BEGIN, StudentError

PHASE = "phase1_foundations"
FAST = "01_math_and_statistics.ipynb"  # ~13 s: the one whose checks the test runs from the pack


@pytest.fixture(scope="module")
def pack(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pack")
    out, key = root / "handout", root / "key"
    write_pack([course.REPO_ROOT / PHASE], out, answer_key_dir=key)
    return out, key


def test_pack_holds_notebooks_package_readme_and_manifest(pack):
    out, _ = pack
    phase_cards = [c for c in course.CARDS if c.phase == PHASE]
    assert sorted(p.name for p in (out / PHASE).iterdir()) == sorted(Path(c.notebook).name for c in phase_cards)
    for name in ("pyproject.toml", "constraints.txt", "genai_roadmap/__init__.py", "genai_roadmap/checks/_common.py"):
        assert (out / "course_package" / name).exists(), f"the pack lacks course_package/{name}"
    assert not list(out.rglob("__pycache__")), "caches were packed"
    readme = (out / "README.md").read_text()
    for c in phase_cards:
        assert c.title in readme and Path(c.notebook).name in readme
    assert "pip install -c course_package/constraints.txt ./course_package" in readme
    manifest = json.loads((out / "pack.json").read_text())
    assert [n["path"] for n in manifest["notebooks"]] == [c.notebook for c in phase_cards]
    assert all(n["points"] == len(n["checks"]) >= 3 for n in manifest["notebooks"])


def test_no_solution_in_the_pack_and_nbgrader_metadata(pack):
    out, key = pack
    for path in sorted((out / PHASE).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        text = path.read_text()
        assert BEGIN not in text, f"{path.name}: a solution marker was packed"
        source = nbformat.read(course.REPO_ROOT / PHASE / path.name, as_version=4)
        n_regions = sum(c.source.count(BEGIN) for c in source.cells if c.cell_type == "code")
        assert text.count("raise NotImplementedError") >= n_regions
        grades = [c.metadata["nbgrader"] for c in nb.cells]
        ids = [g["grade_id"] for g in grades]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate nbgrader grade ids"
        assert all(g["schema_version"] == 3 for g in grades)
        assert all(not g["locked"] for g in grades if g["solution"])
        assert all(g["locked"] and g["points"] == 1 for g in grades if g["grade"])
        assert [g["grade"] for g in grades] == ["check" in tags(c) for c in nb.cells]
        # the answer key: the same cells and metadata, with the solutions
        k = nbformat.read(key / PHASE / path.name, as_version=4)
        assert [c.metadata["nbgrader"] for c in k.cells] == grades
        assert sum(c.source.count(BEGIN) for c in k.cells) == n_regions


def test_checks_run_from_the_pack(pack, tmp_path, monkeypatch):
    """The pack's notebook with its own copy of the support package: stubs fail every check, solutions pass."""
    out, key = pack
    monkeypatch.setenv("PYTHONPATH", str(out / "course_package"))  # the kernel imports the packed package
    student = nbformat.read(out / PHASE / FAST, as_version=4)
    probe = nbformat.v4.new_code_cell("import genai_roadmap; print('from', genai_roadmap.__file__)",
                                      metadata={"tags": ["setup"]})
    student.cells.insert(2, probe)
    executed = run_subset(student, tmp_path)
    printed = "".join(o.get("text", "") for _, c in executed for o in c.outputs)
    assert f"from {out / 'course_package'}" in printed, "the kernel did not import the packed support package"
    checks = [c for _, c in executed if "check" in tags(c)]
    assert len(checks) >= 3
    for cell in checks:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors and errors[0].ename in {"CheckFailed", "NotImplementedError"}, \
            f"a check did not fail cleanly on the stub: {[e.ename for e in errors]}"

    solved = nbformat.read(key / PHASE / FAST, as_version=4)
    solved.cells.insert(2, probe)
    executed = run_subset(solved, tmp_path)
    for _, cell in executed:
        assert not [o for o in cell.outputs if o.output_type == "error"], f"`{cell.source[:60]}` failed"
    assert all(any(line.startswith("✓") for o in c.outputs for line in o.get("text", "").splitlines())
               for _, c in executed if "check" in tags(c))


def test_refuses_non_empty_out_and_key_inside_pack(pack, tmp_path, capsys):
    out, _ = pack
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(StudentError, match="not empty"):
        write_pack([course.REPO_ROOT / PHASE], out)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before, "a refused pack wrote something"
    with pytest.raises(StudentError, match="must not be inside the pack"):
        write_pack([course.REPO_ROOT / PHASE], tmp_path / "new", answer_key_dir=tmp_path / "new" / "key")
    assert not (tmp_path / "new").exists()
    with pytest.raises(StudentError, match="inside the folder of the source notebooks"):
        write_pack([course.REPO_ROOT / PHASE], course.REPO_ROOT / PHASE / "handout")
    assert main([str(course.REPO_ROOT / PHASE), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_answer_key_keeps_solutions_and_clears_outputs():
    nb = nbformat.read(course.REPO_ROOT / PHASE / FAST, as_version=4)
    key = answer_key(nb, FAST)
    assert [c.source for c in key.cells] == [c.source for c in nb.cells]
    assert all(not c.outputs for c in key.cells if c.cell_type == "code")
    assert all("nbgrader" in c.metadata for c in key.cells)
    assert any(c.outputs for c in nb.cells if c.cell_type == "code")  # the input notebook is left as it was


def test_module_runs(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "genai_roadmap.pack", str(course.REPO_ROOT / PHASE), "--out",
                           str(tmp_path / "h")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "student pack ready" in done.stdout
