"""Reading the teaching cells of a notebook: solution regions, tags, exercise numbers, core functions."""
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tutorlib.teaching import Region, TeachingFormatError, solution_regions, teaching_cells

CORE_MARKDOWN = "$$L = x$$\n\nImplemented in `tutorlib/simat/heads.py`, `info_nce`."


def code(source, *tags):
    cell = new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    return cell


def test_regions_are_found_with_their_indentation():
    source = "x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\nif x:\n    ### BEGIN SOLUTION\n    z = 3\n    ### END SOLUTION\n"
    assert solution_regions(source, "nb, cell 1") == [Region(1, 3, ""), Region(5, 7, "    ")]
    assert solution_regions("no markers here", "nb, cell 1") == []


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "the solution opened on line 1 is never closed"),
    ("x = 1\n### END SOLUTION\n", "line 2 closes a solution that no '### BEGIN SOLUTION' opened"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "line 2 opens a solution before the one opened on line 1"),
    ("x = 1  ### BEGIN SOLUTION\n### END SOLUTION\n", "line 1 must hold the marker alone"),
])
def test_unbalanced_or_misplaced_markers_are_errors_naming_the_cell(source, message):
    with pytest.raises(TeachingFormatError, match="nb.ipynb, cell 4") as raised:
        solution_regions(source, "nb.ipynb, cell 4")
    assert message in str(raised.value)


def test_exercises_are_numbered_in_order_and_checks_take_the_number_before_them():
    notebook = new_notebook(cells=[
        new_markdown_cell(CORE_MARKDOWN),
        code("def my_info_nce(a, b, tau):\n    ### BEGIN SOLUTION\n    return 0\n    ### END SOLUTION\nassert 1", "core"),
        code("### BEGIN SOLUTION\na = 1\n### END SOLUTION", "exercise"),
        code("check_exercise(1, lambda: a, 'a', got=lambda: a)", "exercise-check"),
        code("if False:\n    ### BEGIN SOLUTION\n    b = 1\n    ### END SOLUTION", "exercise-optional"),
        code("### BEGIN SOLUTION\nc = 1\n### END SOLUTION", "exercise"),
        code("check_exercise(3, lambda: c, 'c', got=lambda: c)", "exercise-check"),
        code("print(1)"),
    ])
    cells = teaching_cells(notebook, "nb.ipynb")
    assert [(cell.index, cell.tag, cell.exercise) for cell in cells] == [
        (1, "core", None), (2, "exercise", 1), (3, "exercise-check", 1), (4, "exercise-optional", 2),
        (5, "exercise", 3), (6, "exercise-check", 3)]
    core = cells[0]
    assert (core.function, core.library_path, core.library_function) == (
        "my_info_nce", "tutorlib/simat/heads.py", "info_nce")


@pytest.mark.parametrize("cells, message", [
    ([code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")], "has solution markers but no tag"),
    ([new_markdown_cell("### BEGIN SOLUTION\nx\n### END SOLUTION")], "markers belong in code cells"),
    ([code("x = 1", "exercise")], "is tagged 'exercise' but has no"),
    ([code("x = 1", "core", "exercise")], "a cell plays one role"),
    ([new_markdown_cell(CORE_MARKDOWN), code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "core")],
     "must be the body of the function"),
    ([new_markdown_cell("$$x$$"), code("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", "core")],
     "must say Implemented in"),
    ([new_markdown_cell(CORE_MARKDOWN),
      code("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
           "def g():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION", "core")],
     "exactly one solution region, found 2"),
])
def test_broken_teaching_cells_are_errors_naming_notebook_and_cell(cells, message):
    with pytest.raises(TeachingFormatError, match=rf"nb.ipynb, cell {len(cells)} ") as raised:
        teaching_cells(new_notebook(cells=cells), "nb.ipynb")
    assert message in str(raised.value)


def test_the_core_function_is_the_def_right_around_the_markers():
    notebook = new_notebook(cells=[new_markdown_cell(CORE_MARKDOWN), code(
        "import torch\n\n\ndef my_info_nce(image,\n                text, tau):\n    \"\"\"Doc.\"\"\"\n"
        "    # the equation above\n    ### BEGIN SOLUTION\n    return 0\n    ### END SOLUTION\n", "core")])
    [core] = teaching_cells(notebook, "nb.ipynb")
    assert core.function == "my_info_nce"
    inside_a_loop = new_notebook(cells=[new_markdown_cell(CORE_MARKDOWN), code(
        "def f(x):\n    for y in x:\n        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION\n", "core")])
    with pytest.raises(TeachingFormatError, match="must be the body of the function"):
        teaching_cells(inside_a_loop, "nb.ipynb")
