"""The teaching cells of a notebook: which cells are core cells and exercises, and where their solutions are.

A cell's role is its tag (``core``, ``exercise``, ``exercise-check``, ``exercise-optional``); its solution
is every region between a line ``### BEGIN SOLUTION`` and a line ``### END SOLUTION`` (nbgrader's markers).
The conventions that use these cells are in the docstring of ``tutorlib.exercises``; student copies
are written by ``tutorlib.student``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"

CORE = "core"
EXERCISE = "exercise"
CHECK = "exercise-check"
OPTIONAL = "exercise-optional"
# Tags of the cells whose solutions the student copy replaces.
MARKED_TAGS = (CORE, EXERCISE, OPTIONAL)
TEACHING_TAGS = (*MARKED_TAGS, CHECK)

# The line of the markdown cell above a core cell that names the library's version.
LIBRARY_REFERENCE = re.compile(r"Implemented in `(tutorlib/[\w/]+\.py)`, `(\w+)`")
_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)\s*\(")


class TeachingFormatError(ValueError):
    """A notebook's teaching cells break the conventions a student copy depends on."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``; a file that is not a notebook raises TeachingFormatError naming it."""
    try:
        return nbformat.read(path, as_version=4)
    # NotJSONError is a ValueError; JSON that is no notebook fails validation or lookups inside nbformat.
    except (ValueError, KeyError, AttributeError, nbformat.ValidationError) as error:
        raise TeachingFormatError(f"{path}: cannot be read as a notebook ({error})") from error


@dataclass(frozen=True)
class Region:
    """One solution: lines ``begin`` to ``end`` (0-based, both marker lines included) of a cell's source."""

    begin: int
    end: int
    indent: str  # the BEGIN marker's indentation, which the stub keeps


@dataclass(frozen=True)
class TeachingCell:
    """A tagged cell: its position, tag and solution regions, and what its stub must say.

    ``exercise`` is the exercise number of an exercise, optional exercise or check cell (None for a
    check cell that no exercise precedes); ``function`` is the function a core cell asks the student to
    write, ``library_path`` and ``library_function`` the library's version named in the markdown above.
    """

    index: int
    tag: str
    regions: tuple[Region, ...]
    exercise: int | None = None
    function: str | None = None
    library_path: str | None = None
    library_function: str | None = None


def describe_cell(notebook: str, index: int, source: str) -> str:
    """``<notebook>, cell <n> ("<first line>")``, cells counted from 1, for error messages."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    return f'{notebook}, cell {index + 1} ("{first}")'


def solution_regions(source: str, where: str) -> list[Region]:
    """The solution regions of a cell's source, in order.

    Raises TeachingFormatError naming ``where`` when a marker is not alone on its line, a BEGIN has no
    END, an END has no BEGIN, or a BEGIN comes before the previous region has ended.
    """
    regions, begin = [], None
    for number, line in enumerate(source.splitlines()):
        marker = line.strip()
        if (BEGIN in line or END in line) and marker not in (BEGIN, END):
            raise TeachingFormatError(f"{where}: line {number + 1} must hold the marker alone: {line.strip()!r}")
        if marker == BEGIN:
            if begin is not None:
                raise TeachingFormatError(
                    f"{where}: line {number + 1} opens a solution before the one opened on line "
                    f"{begin + 1} is closed with {END!r}")
            begin = number
        elif marker == END:
            if begin is None:
                raise TeachingFormatError(f"{where}: line {number + 1} closes a solution that no {BEGIN!r} opened")
            regions.append(Region(begin, number, line[: len(line) - len(line.lstrip())]))
            begin = None
    if begin is not None:
        raise TeachingFormatError(f"{where}: the solution opened on line {begin + 1} is never closed with {END!r}")
    return regions


def _teaching_tag(cell, where: str) -> str | None:
    tags = [tag for tag in cell.metadata.get("tags", []) if tag in TEACHING_TAGS]
    if len(tags) > 1:
        raise TeachingFormatError(f"{where}: has the tags {tags}; a cell plays one role")
    return tags[0] if tags else None


def enclosing_line(source: str, region: Region) -> str | None:
    """The nearest line above the region indented less than its BEGIN marker: the statement it sits in."""
    for line in reversed(source.splitlines()[: region.begin]):
        if line.strip() and not line.lstrip().startswith("#") and len(line) - len(line.lstrip()) < len(region.indent):
            return line
    return None


def _core_cell(cells, index: int, regions: list[Region], where: str) -> TeachingCell:
    if len(regions) != 1:
        raise TeachingFormatError(f"{where}: a core cell holds exactly one solution region, found {len(regions)}")
    match = _DEF.match(enclosing_line(cells[index].source, regions[0]) or "")
    if match is None:
        raise TeachingFormatError(
            f"{where}: the solution of a core cell must be the body of the function the student writes "
            f"(indented under its `def`)")
    above = cells[index - 1] if index > 0 else None
    reference = LIBRARY_REFERENCE.search(above.source) if above is not None and above.cell_type == "markdown" else None
    if reference is None:
        raise TeachingFormatError(
            f"{where}: the markdown cell right above a core cell must say "
            "Implemented in `tutorlib/<package>/<file>.py`, `<function>`")
    return TeachingCell(index, CORE, tuple(regions), function=match.group(2),
                        library_path=reference.group(1), library_function=reference.group(2))


def teaching_cells(notebook: nbformat.NotebookNode, name: str) -> list[TeachingCell]:
    """The tagged cells of ``notebook`` (called ``name`` in errors), in order, with exercises numbered.

    Exercises (``exercise`` and ``exercise-optional`` cells) are numbered 1, 2, ... in the order they
    appear; a check cell gets the number of the exercise before it. Raises TeachingFormatError naming the
    notebook and cell when markers are unbalanced, sit in a markdown cell or in an untagged cell, when a
    marked tag has no markers, or when a core cell does not say which function and library version it is.
    """
    cells, found, exercise = notebook.cells, [], 0
    for index, cell in enumerate(cells):
        where = describe_cell(name, index, cell.source)
        regions = solution_regions(cell.source, where)
        tag = _teaching_tag(cell, where)
        if regions and cell.cell_type != "code":
            raise TeachingFormatError(f"{where}: solution markers belong in code cells, not {cell.cell_type} cells")
        if regions and tag not in MARKED_TAGS:
            raise TeachingFormatError(
                f"{where}: has solution markers but no tag {MARKED_TAGS}; tag it or remove the markers")
        if tag in MARKED_TAGS and not regions:
            raise TeachingFormatError(
                f"{where}: is tagged {tag!r} but has no {BEGIN!r} ... {END!r} region; "
                "a student copy would show the solution")
        if tag == CHECK and cell.cell_type != "code":
            raise TeachingFormatError(f"{where}: a check cell must be a code cell")
        if tag == CORE:
            found.append(_core_cell(cells, index, regions, where))
        elif tag in (EXERCISE, OPTIONAL):
            exercise += 1
            found.append(TeachingCell(index, tag, tuple(regions), exercise=exercise))
        elif tag == CHECK:
            found.append(TeachingCell(index, tag, (), exercise=exercise or None))
    return found
