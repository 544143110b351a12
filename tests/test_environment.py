"""pyproject.toml, environment.yml, the Makefile and CI must describe the same installation."""
import re
import tomllib

import yaml

from tutorlib.paths import repo_root

CONDA_NAMES = {"torch": "pytorch", "open-clip-torch": "open-clip-torch"}


def normalise(requirement: str) -> tuple[str, str]:
    """(name, version specifier) with names lower-cased, ``_`` as ``-`` and pip names mapped to conda's."""
    match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*)", requirement)
    name = match.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), re.sub(r"\s+", "", match.group(2))


def runtime_requirements() -> dict[str, str]:
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    return dict(normalise(requirement) for requirement in project["dependencies"])


def conda_environment() -> tuple[dict[str, str], list[str]]:
    dependencies = yaml.safe_load((repo_root() / "environment.yml").read_text())["dependencies"]
    conda = dict(normalise(item) for item in dependencies if isinstance(item, str))
    pip = [entry for item in dependencies if isinstance(item, dict) for entry in item.get("pip", [])]
    return conda, pip


def test_normalise_maps_pip_names_to_conda():
    assert normalise("open_clip_torch>=2.24") == ("open-clip-torch", ">=2.24")
    assert normalise("torch >=2.4, <2.15") == ("pytorch", ">=2.4,<2.15")
    assert normalise("Pillow") == ("pillow", "")


def test_every_runtime_dependency_is_in_environment_yml_with_same_bounds():
    conda, _ = conda_environment()
    required = runtime_requirements()
    assert sorted(set(required) - set(conda)) == []
    assert {name: conda[name] for name in required} == required


def test_pip_section_installs_the_project():
    _, pip = conda_environment()
    assert any(re.fullmatch(r"(-e\s+)?\.(\[[\w,]+\])?", entry.strip()) for entry in pip), pip


def test_makefile_has_test_and_run_and_ci_calls_make_test():
    makefile = (repo_root() / "Makefile").read_text()
    for target in ("test", "run"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), f"Makefile lacks a {target} target"
    ci_script = (repo_root() / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci_script, re.MULTILINE)
