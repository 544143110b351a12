"""Every notebook runs end to end under the dry profile (papermill), from an empty data cache: full's models and
batch sizes, smoke's data, two steps per training, so that every shape and dtype of the GPU path is exercised on
the CPU. `make test` runs them under smoke a second time through nbval, which also compares outputs."""
import json

import pytest

from tutorlib.paths import notebooks_dir
from tutorlib.runner import find_notebooks, run_notebooks

NOTEBOOKS = find_notebooks(notebooks_dir())


def test_there_are_notebooks():
    assert "00_shapes_world" in NOTEBOOKS


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_under_dry_profile(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("TUTORLIB_PROFILE", raising=False)
    [result] = run_notebooks([name], "dry", runs=tmp_path / "runs")
    assert result.ok, result.error
    metrics = json.loads((tmp_path / "runs" / f"{name}.metrics.json").read_text())
    assert metrics["profile"] == "dry" and metrics["notebook"] == name
    assert metrics["claim"]["statement"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_follows_the_contract(name):
    import nbformat
    import papermill

    path = notebooks_dir() / f"{name}.ipynb"
    cells = nbformat.read(path, as_version=4).cells
    assert sum("parameters" in c.metadata.get("tags", []) for c in cells) == 1
    parameters = papermill.inspect_notebook(str(path))
    source = next(c.source for c in cells if "parameters" in c.metadata.get("tags", []))
    # Every line is parsed by papermill (a second "=" in a help comment would hide the parameter).
    assert len(parameters) == len([line for line in source.splitlines() if line.strip()])
    assert {"profile", "seed", "device"} <= set(parameters)
    assert parameters["profile"]["default"] == '"auto"' and all(p["help"] for p in parameters.values())
