"""The notebooks keep the teaching conventions of tutorlib.exercises (checked without running them).

``test_notebook_teaches_with_core_cells_and_exercises`` carries the marker ``teaching_contract``: it
holds once notebooks 01-05 have their core cells and exercises, and until then the test run leaves it
out (``-m "not teaching_contract"``). Run it alone with ``pytest -m teaching_contract``.
"""
import pytest

from tutorlib.exercises import contract
from tutorlib.paths import notebooks_dir
from tutorlib.runner import find_notebooks

TAUGHT = ("01", "02", "03", "04", "05")
# The least number of core cells and of checked exercises in each of notebooks 01-05.
AT_LEAST = 3


@pytest.mark.parametrize("name", find_notebooks(notebooks_dir()))
def test_teaching_cells_follow_the_conventions(name):
    report = contract(notebooks_dir() / f"{name}.ipynb")
    assert report.problems == []


def test_every_taught_notebook_is_there():
    assert [name[:2] for name in find_notebooks(notebooks_dir(), TAUGHT)] == list(TAUGHT)


@pytest.mark.teaching_contract
@pytest.mark.parametrize("name", find_notebooks(notebooks_dir(), TAUGHT))
def test_notebook_teaches_with_core_cells_and_exercises(name):
    report = contract(notebooks_dir() / f"{name}.ipynb")
    assert min(report.core, report.checked) >= AT_LEAST, (
        f"{name} has {report.core} core cells and {report.checked} checked exercises; "
        f"each notebook 01-05 needs at least {AT_LEAST} of each (see tutorlib/exercises.py)")
