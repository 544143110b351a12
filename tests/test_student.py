"""Student copies: solutions and core bodies replaced by stubs, outputs cleared, files written atomically."""
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tutorlib.student import main, replace_regions, student_copy, write_student_copies
from tutorlib.teaching import BEGIN, END, Region, TeachingFormatError

FIXTURE = Path(__file__).parent / "teaching_example.ipynb"


def fixture() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE, as_version=4)


def test_regions_become_one_stub_line_at_their_indentation():
    source = "a = 1\nif a:\n    ### BEGIN SOLUTION\n    b = 2\n    c = 3\n    ### END SOLUTION\n    print(b)\nd = 4"
    stubbed = replace_regions(source, [Region(2, 5, "    ")], "raise NotImplementedError('x')")
    assert stubbed == "a = 1\nif a:\n    raise NotImplementedError('x')\n    print(b)\nd = 4"
    at_the_end = replace_regions("### BEGIN SOLUTION\nb = 2\n### END SOLUTION", [Region(0, 2, "")], "stub")
    assert at_the_end == "stub"


def test_the_student_copy_has_stubs_instead_of_solutions():
    original = fixture()
    copy = student_copy(original, FIXTURE.name)
    sources = [cell.source for cell in copy.cells]
    assert all(BEGIN not in source and END not in source for source in sources)
    assert "logits = image @ text.T / tau" not in "".join(sources)
    assert copy.cells[4].source.splitlines()[1] == (
        '    raise NotImplementedError("TODO: write the body of my_info_nce from the equation above; '
        'this cell compares it with info_nce in tutorlib/simat/heads.py")')
    assert copy.cells[8].source == 'raise NotImplementedError("exercise 1")'
    assert copy.cells[11].source == 'raise NotImplementedError("exercise 2")'
    assert copy.cells[14].source.splitlines()[:2] == [
        "if torch.cuda.is_available():", '    raise NotImplementedError("exercise 3")']
    # Everything else, tags included, is the instructor's.
    for before, after in zip(original.cells, copy.cells):
        assert before.metadata.get("tags") == after.metadata.get("tags")
        if before.source.count(BEGIN) == 0:
            assert before.source == after.source
    for cell in copy.cells:
        if cell.cell_type == "code":
            compile(cell.source, "cell", "exec")  # every stubbed cell is still Python


def test_the_student_copy_drops_outputs_and_the_instructor_run_and_leaves_the_original():
    original = fixture()
    cell = original.cells[9]
    cell.outputs = [new_output("stream", name="stdout", text="exercise 1: done\n")]
    cell.execution_count = 7
    cell.metadata["execution"] = {"iopub.status.idle": "2024-01-01"}
    cell.metadata["papermill"] = {"duration": 1.0}
    original.metadata["papermill"] = {"parameters": {}}
    original.metadata["widgets"] = {"state": {}}
    copy = student_copy(original, FIXTURE.name)
    assert copy.cells[9].outputs == [] and copy.cells[9].execution_count is None
    assert set(copy.cells[9].metadata) == {"tags"}
    assert set(copy.metadata) == {"kernelspec", "language_info"}
    assert original.cells[9].execution_count == 7 and BEGIN in original.cells[8].source


def test_a_cell_with_markers_but_no_tag_is_an_error_naming_notebook_and_cell():
    notebook = new_notebook(cells=[new_markdown_cell("hi"), new_code_cell(f"{BEGIN}\nx = 1\n{END}")])
    with pytest.raises(TeachingFormatError, match=r"lesson.ipynb, cell 2 .*no tag"):
        student_copy(notebook, "lesson.ipynb")


def write_notebook(path: Path, notebook) -> Path:
    nbformat.write(notebook, str(path))
    return path


def test_copies_of_every_notebook_are_written(tmp_path):
    source = tmp_path / "notebooks"
    source.mkdir()
    write_notebook(source / "a.ipynb", fixture())
    write_notebook(source / "b.ipynb", new_notebook(cells=[new_code_cell("print(1)")]))
    out = tmp_path / "student" / "notebooks"
    assert write_student_copies(source, out) == [out / "a.ipynb", out / "b.ipynb"]
    assert sorted(path.name for path in out.iterdir()) == ["a.ipynb", "b.ipynb"]  # no temporary left
    written = nbformat.read(out / "a.ipynb", as_version=4)
    nbformat.validate(written)
    assert written.cells[8].source == 'raise NotImplementedError("exercise 1")'


def test_a_broken_notebook_leaves_every_copy_as_it_was(tmp_path):
    source, out = tmp_path / "notebooks", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    write_notebook(source / "a.ipynb", fixture())
    write_notebook(source / "b.ipynb", new_notebook(cells=[new_code_cell(f"{BEGIN}\nx = 1\n")]))
    (out / "a.ipynb").write_text("old copy")
    with pytest.raises(TeachingFormatError, match="b.ipynb, cell 1"):
        write_student_copies(source, out)
    assert [path.name for path in out.iterdir()] == ["a.ipynb"]
    assert (out / "a.ipynb").read_text() == "old copy"


@pytest.mark.parametrize("text", ["not json", json.dumps({"a": 1}), "[1]"])
def test_a_file_that_is_no_notebook_is_an_error_naming_it(tmp_path, text):
    (tmp_path / "bad.ipynb").write_text(text)
    with pytest.raises(TeachingFormatError, match=r"bad.ipynb: cannot be read as a notebook"):
        write_student_copies(tmp_path, tmp_path / "out")


def test_command_line_writes_copies_and_reports_errors(tmp_path, capsys):
    source = tmp_path / "notebooks"
    source.mkdir()
    write_notebook(source / "a.ipynb", fixture())
    assert main(["--notebooks", str(source), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "a.ipynb").is_file()
    assert "wrote" in capsys.readouterr().out
    assert main(["--notebooks", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no student copies written: no notebooks (*.ipynb) in" in capsys.readouterr().err
    write_notebook(source / "b.ipynb", new_notebook(cells=[new_code_cell(f"{END}\n")]))
    assert main(["--notebooks", str(source), "--out", str(tmp_path / "out")]) == 1
    assert "b.ipynb, cell 1" in capsys.readouterr().err
