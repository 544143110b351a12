"""The exercise check helper and the contract checker of the teaching conventions."""
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from tutorlib.exercises import ExerciseNotDone, check_exercise, contract
from tutorlib.teaching import TeachingFormatError

FIXTURE = Path(__file__).parent / "teaching_example.ipynb"
# Cells of the fixture notebook (counted from 0) that the mutations below change.
CORE_MARKDOWN, CORE, SECOND_CORE, EXERCISE_MARKDOWN, SOLUTION, CHECK = 3, 4, 6, 7, 8, 9
SECOND_SOLUTION, OPTIONAL_MARKDOWN, OPTIONAL, LAST = 11, 13, 14, 16


def test_a_right_answer_passes_and_says_so(capsys):
    answer = 0.3
    check_exercise(2, lambda: 0.2 <= answer <= 0.4, "a value in [0.2, 0.4]", got=lambda: answer)
    assert capsys.readouterr().out == "exercise 2: done\n"


def test_a_wrong_answer_fails_with_expected_and_got():
    answer = 0.9
    with pytest.raises(ExerciseNotDone) as raised:
        check_exercise(2, lambda: 0.2 <= answer <= 0.4, "a value in [0.2, 0.4]", got=lambda: answer)
    assert str(raised.value) == "exercise 2: expected a value in [0.2, 0.4], got 0.9"
    assert isinstance(raised.value, AssertionError)


def test_a_missing_name_means_not_done_yet():
    with pytest.raises(ExerciseNotDone) as raised:
        check_exercise(3, lambda: undefined_answer > 0, "a positive value", got=lambda: undefined_answer)  # noqa: F821
    assert str(raised.value).startswith(
        "exercise 3: not done yet (NameError: name 'undefined_answer' is not defined); expected a positive value.")
    assert isinstance(raised.value.__cause__, NameError)


def test_a_stub_that_raises_means_not_done_yet():
    def student_function():
        raise NotImplementedError("exercise 1")

    with pytest.raises(ExerciseNotDone, match=r"^exercise 1: not done yet \(NotImplementedError: exercise 1\)"):
        check_exercise(1, lambda: student_function() == 4, "4", got=student_function)


def test_an_answer_of_the_wrong_kind_fails_with_the_exercise_message():
    answer = "text"
    with pytest.raises(ExerciseNotDone, match=r"^exercise 4: checking the answer raised TypeError: .*; expected a number"):
        check_exercise(4, lambda: answer > 0, "a number above 0", got=lambda: answer)


def test_an_answer_that_cannot_be_shown_still_fails_clearly():
    with pytest.raises(ExerciseNotDone, match=r"^exercise 1: expected x, got an answer that cannot be shown \(ZeroDivisionError"):
        check_exercise(1, lambda: False, "x", got=lambda: 1 / 0)


@pytest.mark.parametrize("arguments, message", [
    ((0, lambda: True, "x", lambda: 1), "number must be the exercise's number"),
    ((True, lambda: True, "x", lambda: 1), "number must be the exercise's number"),
    ((1, True, "x", lambda: 1), "passed must be a function without arguments"),
    ((1, lambda: True, "x", 1), "got must be a function without arguments"),
    ((1, lambda: True, " ", lambda: 1), "expected must describe the expected outcome"),
])
def test_misuse_of_the_helper_is_a_type_error_naming_the_parameter(arguments, message):
    with pytest.raises(TypeError, match=message):
        check_exercise(*arguments)


def read_fixture() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE, as_version=4)


def test_the_fixture_keeps_the_contract():
    report = contract(FIXTURE)
    assert (report.notebook, report.core, report.checked, report.optional) == ("teaching_example.ipynb", 2, 2, 1)
    assert report.problems == []


def replace(index, old, new):
    def mutate(notebook):
        assert old in notebook.cells[index].source
        notebook.cells[index].source = notebook.cells[index].source.replace(old, new)
    return mutate


def insert(index, source):
    def mutate(notebook):
        notebook.cells.insert(index, new_code_cell(source))
    return mutate


# (a change to the fixture, the cell (counted from 1) named in the problem, what the problem says)
BROKEN = {
    "no LaTeX": (replace(CORE_MARKDOWN, "$", ""), CORE + 1, "equation in LaTeX"),
    "library's name": (replace(CORE, "my_info_nce", "info_nce"), CORE + 1, "must not take the library's name"),
    "no assert": (replace(CORE, "torch.testing.assert_close(", "print("), CORE + 1, "must assert"),
    "not compared": (replace(CORE, ", info_nce(image_batch, text_batch, 0.1))", ", torch.tensor(1.0))"),
                     CORE + 1, "must call my_info_nce and compare it with info_nce"),
    "heading number": (replace(EXERCISE_MARKDOWN, "Exercise 1", "Exercise 5"), SOLUTION + 1,
                       "heading '### Exercise 1: <title>'"),
    "no hint": (replace(EXERCISE_MARKDOWN, "**Hint:**", "Hint"), SOLUTION + 1, "lacks **Hint:**"),
    "check number": (replace(CHECK, "check_exercise(1,", "check_exercise(3,"), CHECK + 1,
                     "first argument must be this exercise's number, 1"),
    "no lambda": (replace(CHECK, "lambda: aligned_loss <", "aligned_loss <"), CHECK + 1, "as lambdas"),
    "more than checks": (replace(CHECK, "check_exercise(1", "print(aligned_loss)\ncheck_exercise(1"), CHECK + 1,
                         "holds only imports and check_exercise(...) calls"),
    "check cannot fail": (replace(CHECK, "aligned_loss < math.log(len(image_batch))", "True"), CHECK + 1,
                          "no condition reads a name bound between the solution's markers"),
    "cell between": (insert(CHECK, "x = 1"), SOLUTION + 1, "next cell must be its check cell"),
    "old name": (replace(SOLUTION, "aligned_loss = info_nce", "aligned_loss = labels = info_nce"), SOLUTION + 1,
                 "binds `labels`, which teaching_example.ipynb, cell 3"),
    "uses core function": (replace(LAST, "info_nce(image_batch", "my_info_nce(image_batch"), LAST + 1,
                           "reads `my_info_nce`, which teaching_example.ipynb, cell 5"),
    "builds on an exercise": (replace(SECOND_SOLUTION, "torch.ones_like(labels)", "torch.ones_like(labels) * aligned_loss"),
                              SECOND_SOLUTION + 1, "reads `aligned_loss`, which teaching_example.ipynb, cell 9"),
    "optional without guard": (replace(OPTIONAL, "if torch.cuda.is_available():", "with torch.no_grad():"),
                               OPTIONAL + 1, "inside a top-level `if`"),
    "optional not said": (replace(OPTIONAL_MARKDOWN, " (optional: needs a GPU)", ""), OPTIONAL + 1,
                          "exactly when its heading says '(optional"),
    "syntax error": (replace(LAST, "print(", "print(("), LAST + 1, "cannot be parsed"),
    "unbalanced": (replace(SOLUTION, "### END SOLUTION", ""), SOLUTION + 1, "is never closed"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_each_broken_rule_is_a_problem_naming_the_cell(case, tmp_path):
    mutate, cell, message = BROKEN[case]
    notebook = read_fixture()
    mutate(notebook)
    path = tmp_path / "teaching_example.ipynb"
    nbformat.write(notebook, str(path))
    problems = contract(path).problems
    assert any(f"teaching_example.ipynb, cell {cell} " in problem and message in problem for problem in problems), problems


def test_magics_do_not_break_the_contract_checker(tmp_path):
    notebook = read_fixture()
    notebook.cells.insert(1, new_code_cell("%matplotlib inline\n!echo hello"))
    path = tmp_path / "magics.ipynb"
    nbformat.write(notebook, str(path))
    assert contract(path).problems == []


def test_an_ordinary_cell_may_bind_a_teaching_name_again(tmp_path):
    notebook = read_fixture()
    notebook.cells.append(new_code_cell("aligned_loss = 0.5\nprint(aligned_loss)"))
    path = tmp_path / "again.ipynb"
    nbformat.write(notebook, str(path))
    assert contract(path).problems == []


def test_a_file_that_is_no_notebook_is_an_error_naming_it(tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text("{")
    with pytest.raises(TeachingFormatError, match="broken.ipynb: cannot be read as a notebook"):
        contract(path)
