"""Both directions of the teaching cells: the instructor copy passes every check, the student copy fails each.

A student copy runs under the smoke profile with errors allowed, up to its last core or check cell
(later cells cannot change how those end; the instructor copy's full smoke run is tests/test_notebooks.py).
In it every ``core`` cell must fail with its TODO stub, every ``exercise`` cell with
``NotImplementedError("exercise N")``, every ``exercise-check`` cell with ``ExerciseNotDone("exercise N: ...")``,
an ``exercise-optional`` cell may fail only with its own stub, and an untagged cell must not fail at all.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tutorlib.paths import notebooks_dir, repo_root
from tutorlib.runner import CELL_TIMEOUT, find_notebooks
from tutorlib.student import core_stub_message, student_copy
from tutorlib.teaching import CHECK, CORE, EXERCISE, OPTIONAL, TeachingCell, describe_cell, teaching_cells

FIXTURE = Path(__file__).parent / "teaching_example.ipynb"


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def with_teaching_cells() -> list[str]:
    """The notebooks that have core or check cells."""
    return [name for name in find_notebooks(notebooks_dir())
            if any(cell.tag in (CORE, CHECK) for cell in teaching_cells(read(notebooks_dir() / f"{name}.ipynb"), name))]


def execute(notebook: nbformat.NotebookNode, folder: Path) -> nbformat.NotebookNode:
    """Run ``notebook`` in place under the smoke profile, errors allowed, from the repository root."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUTORLIB_PROFILE", "smoke")
        patch.setenv("TUTORLIB_PROGRESS", "0")
        patch.setenv("TUTORLIB_DATA", str(folder / "data"))
        patch.setenv("TUTORLIB_RUNS", str(folder / "runs"))
        NotebookClient(notebook, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(repo_root())}}).execute()
    return notebook


def error_of(cell) -> tuple[str, str] | None:
    """(exception name, message) of the error a code cell raised, None when it ran through."""
    return next(((output.ename, output.evalue) for output in cell.get("outputs", [])
                 if output.output_type == "error"), None)


def expected_error(cell: TeachingCell) -> tuple[str, str]:
    """(exception name, text its message contains) for a tagged cell of a student copy."""
    if cell.tag == CORE:
        return "NotImplementedError", core_stub_message(cell)
    if cell.tag == CHECK:
        return "ExerciseNotDone", f"exercise {cell.exercise}:"
    return "NotImplementedError", f"exercise {cell.exercise}"


def surprises(executed: nbformat.NotebookNode, teaching: list[TeachingCell], name: str) -> list[str]:
    """Every cell of an executed student copy that did not end as the conventions say it must.

    ``teaching`` holds the teaching cells of the instructor copy (a student copy has no markers left).
    """
    tagged = {cell.index: cell for cell in teaching}
    found = []
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        where, error = describe_cell(name, index, cell.source), error_of(cell)
        teaching = tagged.get(index)
        if teaching is None:
            if error is not None:
                found.append(f"{where}: an untagged cell failed: {error[0]}: {error[1]}")
            continue
        ename, text = expected_error(teaching)
        if teaching.tag == OPTIONAL and error is None:
            continue
        if error is None or error[0] != ename or text not in error[1]:
            found.append(f"{where}: expected {ename} with {text!r}, got {error}")
    return found


def up_to_last_check(notebook: nbformat.NotebookNode, teaching: list[TeachingCell]) -> nbformat.NotebookNode:
    """The notebook cut after its last core or check cell."""
    last = max(cell.index for cell in teaching if cell.tag in (CORE, CHECK))
    notebook.cells = notebook.cells[:last + 1]
    return notebook


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    """The fixture notebook's instructor and student copies, each executed once."""
    instructor = execute(read(FIXTURE), tmp_path_factory.mktemp("instructor"))
    student = execute(student_copy(read(FIXTURE), FIXTURE.name), tmp_path_factory.mktemp("student"))
    return instructor, student


def test_fixture_has_two_core_cells_and_two_checked_exercises():
    tags = [cell.tag for cell in teaching_cells(read(FIXTURE), FIXTURE.name)]
    assert tags.count(CORE) == 2 and tags.count(CHECK) == 2 and tags.count(EXERCISE) == 2
    assert tags.count(OPTIONAL) == 1


def test_instructor_copy_passes_every_check(fixture_runs):
    instructor, _ = fixture_runs
    errors = {index: error_of(cell) for index, cell in enumerate(instructor.cells) if error_of(cell)}
    assert errors == {}
    checks = [cell for cell in teaching_cells(instructor, FIXTURE.name) if cell.tag == CHECK]
    for check in checks:
        printed = "".join(output.get("text", "") for output in instructor.cells[check.index].outputs)
        assert printed == f"exercise {check.exercise}: done\n"


def test_student_copy_fails_every_check_with_its_message(fixture_runs):
    _, student = fixture_runs
    teaching = teaching_cells(read(FIXTURE), FIXTURE.name)
    assert surprises(student, teaching, FIXTURE.name) == []
    # What the student sees: a check that says which exercise is not done yet and what it expects.
    first_check = next(cell for cell in teaching if cell.tag == CHECK)
    assert error_of(student.cells[first_check.index]) == ("ExerciseNotDone", "exercise 1: not done yet (NameError: name 'aligned_loss' "
                               "is not defined); expected a loss below log N (guessing). Write the solution in "
                               "the exercise's cell, run it, then run this check again.")


def test_the_surprise_check_can_fail(fixture_runs):
    # Read against the student-copy expectations, the instructor run has every tagged cell wrong.
    instructor, _ = fixture_runs
    teaching = teaching_cells(read(FIXTURE), FIXTURE.name)
    found = surprises(instructor, teaching, FIXTURE.name)
    checked = [cell for cell in teaching if cell.tag != OPTIONAL]
    assert len(found) == len(checked) == 6
    assert all("got None" in problem for problem in found)


def test_an_ordinary_cell_that_uses_the_students_function_is_caught(tmp_path):
    notebook = read(FIXTURE)
    notebook.cells.append(nbformat.v4.new_code_cell("print(my_info_nce(image_batch, text_batch, 0.1))"))
    executed = execute(student_copy(notebook, FIXTURE.name), tmp_path)
    found = surprises(executed, teaching_cells(notebook, FIXTURE.name), FIXTURE.name)
    assert found == [f'teaching_example.ipynb, cell {len(notebook.cells)} ("print(my_info_nce(image_batch, '
                     'text_batch, 0.1))"): an untagged cell failed: NotImplementedError: TODO: write the body of '
                     'my_info_nce from the equation above; this cell compares it with info_nce in '
                     'tutorlib/simat/heads.py']


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory):
    """One data cache for the notebooks' student copies: a later notebook loads the models an earlier one trained."""
    return tmp_path_factory.mktemp("student-copies")


@pytest.mark.notebooks
@pytest.mark.parametrize("name", with_teaching_cells())
def test_every_check_fails_in_the_student_copy(name, shared_folder):
    instructor = read(notebooks_dir() / f"{name}.ipynb")
    teaching = teaching_cells(instructor, name)
    executed = execute(up_to_last_check(student_copy(instructor, name), teaching), shared_folder)
    assert surprises(executed, teaching, name) == []
