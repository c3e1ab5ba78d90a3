"""The install files agree: pyproject's ranges, environment.yml's pip section, constraints.txt's pins."""
import re
import tomllib

import yaml

from genai_roadmap.course import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _deps(with_test: bool = True) -> dict[str, str]:
    reqs = list(PYPROJECT["project"]["dependencies"])
    if with_test:
        reqs += PYPROJECT["project"]["optional-dependencies"]["test"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def test_environment_yml_has_every_dependency_with_the_same_range():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip_deps = {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-e")}
    deps = _deps()
    torch = deps.pop("torch")
    assert any(d.startswith("pytorch=") and "cpu" in d for d in conda), "environment.yml: CPU pytorch"
    assert "2.13" in next(d for d in conda if d.startswith("pytorch=")) and "2.13" in torch or "<2.14" in torch
    assert pip_deps == deps, "environment.yml's pip section and pyproject's dependencies differ"
    assert "-e ." in pip


def test_constraints_pin_every_dependency_and_not_torch():
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_name(name)] = version
    assert "torch" not in pins, "torch is installed first by the Makefile, not through constraints"
    missing = set(_deps()) - set(pins) - {"torch"}
    assert not missing, f"constraints.txt pins none of {sorted(missing)}: run `make freeze`"


def test_makefile_installs_cpu_torch_first_and_tests_offline():
    make = (REPO_ROOT / "Makefile").read_text()
    torch_line = make.index("pip install -q torch==$(TORCH_VERSION)")
    assert torch_line < make.index("-c constraints.txt -e")
    assert "TORCH_VERSION := 2.13.0" in make
    assert "HF_HUB_OFFLINE=1" in make and "TRANSFORMERS_OFFLINE=1" in make
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
