"""Student copies of the notebooks: ``python -m tutorlib.student [--out student/notebooks]`` (``make student``).

Each notebook of ``notebooks/`` is copied with every solution region (``### BEGIN SOLUTION`` ...
``### END SOLUTION``, markers included) replaced by one line at the BEGIN marker's indentation:

- in an exercise (``exercise``, ``exercise-optional``): ``raise NotImplementedError("exercise N")``;
- in a ``core`` cell: ``raise NotImplementedError("TODO: write the body of <function> ...")``, naming
  the library function the cell compares it with;

and with outputs, execution counts and the records of the instructor's run (papermill's cell and notebook
metadata, execution timings, widget state) removed. The conventions are in ``tutorlib.exercises``.

Plain nbformat rather than nbgrader: nbgrader's ClearSolutions wants its own cell metadata (a grade id
per cell) instead of tags, writes one fixed stub for every cell, and brings a database and a server
extension that a copy does not need.

Every copy is made in memory before any file is written, so a notebook that breaks the conventions
leaves the output folder as it was; each file is then replaced in one step. Existing copies in the output
folder are overwritten: work on a copy elsewhere.
"""
from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

from tutorlib.paths import atomic_write, notebooks_dir, repo_root
from tutorlib.teaching import CORE, Region, TeachingCell, TeachingFormatError, read_notebook, teaching_cells

# Records of the instructor's run that a fresh copy must not carry.
CELL_RUN_RECORDS = ("papermill", "execution")
NOTEBOOK_RUN_RECORDS = ("papermill", "widgets")


def core_stub_message(cell: TeachingCell) -> str:
    """What a core cell's stub raises: the function to write and the library version it is checked against."""
    return (f"TODO: write the body of {cell.function} from the equation above; this cell compares it with "
            f"{cell.library_function} in {cell.library_path}")


def stub_line(cell: TeachingCell) -> str:
    """The statement that replaces each solution region of ``cell``."""
    message = core_stub_message(cell) if cell.tag == CORE else f"exercise {cell.exercise}"
    return f'raise NotImplementedError("{message}")'


def replace_regions(source: str, regions: Sequence[Region], line: str) -> str:
    """``source`` with each region (markers included) replaced by ``line`` at the region's indentation."""
    lines = source.splitlines(keepends=True)
    kept, start = [], 0
    for region in regions:
        kept += lines[start:region.begin]
        ending = "\n" if lines[region.end].endswith(("\n", "\r")) else ""
        kept.append(f"{region.indent}{line}{ending}")
        start = region.end + 1
    return "".join(kept + lines[start:])


def student_copy(notebook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """A student copy of ``notebook`` (called ``name`` in errors); the notebook itself is left unchanged.

    Raises TeachingFormatError naming the notebook and cell when its teaching cells break the conventions.
    """
    result = copy.deepcopy(notebook)
    for cell in teaching_cells(result, name):
        if cell.regions:
            target = result.cells[cell.index]
            target.source = replace_regions(target.source, cell.regions, stub_line(cell))
    for target in result.cells:
        if target.cell_type == "code":
            target.outputs = []
            target.execution_count = None
        for key in CELL_RUN_RECORDS:
            target.metadata.pop(key, None)
    for key in NOTEBOOK_RUN_RECORDS:
        result.metadata.pop(key, None)
    return result


def write_student_copies(notebooks: Path, out: Path) -> list[Path]:
    """Write the student copy of every ``notebooks/*.ipynb`` to ``out/`` under the same name; return the paths.

    Nothing is written unless every notebook can be copied.
    """
    sources = sorted(Path(notebooks).glob("*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {notebooks}")
    copies = [(Path(out) / path.name, student_copy(read_notebook(path), path.name)) for path in sources]
    for target, notebook in copies:
        with atomic_write(target) as temporary:
            nbformat.write(notebook, str(temporary))
    return [target for target, _ in copies]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when a notebook breaks the conventions)."""
    parser = argparse.ArgumentParser(prog="python -m tutorlib.student", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=repo_root() / "student" / "notebooks",
                        help="folder for the student copies (default: student/notebooks)")
    parser.add_argument("--notebooks", type=Path, default=notebooks_dir(),
                        help="folder of the instructor notebooks (default: notebooks)")
    arguments = parser.parse_args(argv)
    try:
        written = write_student_copies(arguments.notebooks, arguments.out)
    except (TeachingFormatError, FileNotFoundError) as error:
        print(f"no student copies written: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
