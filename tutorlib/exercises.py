'''Exercises and core cells that check themselves: the conventions, the check helper and the contract checker.

Notebooks 01-05 teach with two kinds of cells, marked by cell tags. Their solutions sit between
nbgrader's markers, each alone on its line: ``### BEGIN SOLUTION`` and ``### END SOLUTION``.
``python -m tutorlib.student`` (``make student``) writes student copies to ``student/notebooks/`` with
every marked region replaced by one line that raises ``NotImplementedError`` and with the outputs
cleared. ``tests/test_student_copies.py`` runs each student copy under the smoke profile and requires
every core and check cell to fail there with its own message, and every untagged cell to succeed.
``contract(path)`` checks the rules below without running anything.

Tags
----
``core``               a paper's core piece that the student writes
``exercise``           the solution cell of an exercise
``exercise-check``     the cell that checks that exercise, right after its solution cell
``exercise-optional``  the solution cell of an optional exercise (real data or a GPU): not checked, not counted

Markers appear only in ``core``, ``exercise`` and ``exercise-optional`` cells (code cells), and each such
cell has at least one region; a region never opens inside another. Code outside the markers stays in
the student copy: use it for what the student is given (a function signature, a guard, a plot).

One rule for names
------------------
A name bound by a ``core``, ``exercise`` or ``exercise-optional`` cell is used by that cell only, and,
for an exercise, by its check cell. In the student copy those cells fail, so anything else reading their
names would fail too. Hence: the rest of the notebook uses the library, never the student's function; a
core cell asserts on inputs made by earlier ordinary (untagged) cells; an exercise never builds on the
result of another exercise (give it what it needs in an ordinary cell before it). An ordinary cell may
bind such a name again for its own use.

Core cells
----------
1. A markdown cell right above the core cell gives the equation in LaTeX and the line
   ``Implemented in `tutorlib/<package>/<file>.py`, `<function>` `` (backquotes as shown).
2. The core cell defines the student's function (called ``my_<function>``, never the library's name)
   with its body, and only its body, between the markers.
3. After the markers, still in the same cell, the cell calls the student's function and asserts that it
   equals the library's version on a small batch: ``assert ...`` or ``torch.testing.assert_close(...)``.
   The batch comes from earlier untagged cells (or is built in this cell), never from a core cell or an
   exercise, so that in the student copy each core cell fails through its own stub.

The student copy replaces the body by ``raise NotImplementedError("TODO: write the body of
my_<function> from the equation above; this cell compares it with <function> in tutorlib/...")``.

Example (markdown cell, then the code cell tagged ``core``)::

    The symmetric InfoNCE loss over $N$ matching pairs, with $S = X T^\\top / \\tau$:

    $$\\mathcal{L} = \\tfrac12\\big(\\mathrm{CE}(S, I) + \\mathrm{CE}(S^\\top, I)\\big)$$

    Implemented in `tutorlib/simat/heads.py`, `info_nce`.

    def my_info_nce(image, text, tau):
        ### BEGIN SOLUTION
        logits = image @ text.T / tau
        labels = torch.arange(len(image))
        return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        ### END SOLUTION

    torch.testing.assert_close(my_info_nce(image_batch, text_batch, 0.1), info_nce(image_batch, text_batch, 0.1))

Exercises
---------
Exercises are numbered 1, 2, ... per notebook in order of appearance, optional ones included; the
student copy's stub says ``exercise N``. Each exercise is three cells in a row:

1. A markdown cell with the heading ``### Exercise N: <title>`` and three lines ``**Goal:**``,
   ``**Hint:**`` and ``**Expected outcome:**``. The expected outcome is a range or a property that holds
   under every profile, smoke and dry included (CI runs smoke; under dry every training stops after 2
   steps): a property of the computation ("F1 = 2|L| / (|L| + 24)", "a loss below log N for a perfect
   match", "scores in [0, 100]") or a comparison within the run, never a quality that needs training.
2. The solution cell (tag ``exercise``), the solution between the markers. It binds new names (no earlier
   cell binds them, so a student copy cannot pass the check with an old value) and it is cheap: seconds
   under smoke, well under a minute under standard.
3. The check cell (tag ``exercise-check``): imports and ``check_exercise`` calls only, each with the
   exercise's number, a ``lambda`` for the condition, the expected outcome in words and a ``lambda``
   for what the student got. A condition reads at least one name bound between the solution's markers
   (otherwise the check could pass in the student copy).

Example (markdown, then solution cell tagged ``exercise``, then check cell tagged ``exercise-check``)::

    ### Exercise 2: the loss of a perfect match

    **Goal:** compute `aligned_loss`, the InfoNCE loss when every text embedding equals its image's.

    **Hint:** call `info_nce(image_batch, image_batch, tau=0.1)`.

    **Expected outcome:** a loss below $\\log N$, the loss of guessing.

    ### BEGIN SOLUTION
    aligned_loss = info_nce(image_batch, image_batch, tau=0.1).item()
    ### END SOLUTION

    check_exercise(2, lambda: aligned_loss < math.log(len(image_batch)),
                   "a loss below log N (guessing)", got=lambda: aligned_loss)

``check_exercise`` raises ``ExerciseNotDone`` (an AssertionError) whose message starts with
``exercise 2:``: "exercise 2: not done yet (NameError: name 'aligned_loss' is not defined); expected a
loss below log N (guessing)" when the solution cell failed or was not run, "exercise 2: expected a loss
below log N (guessing), got 2.31" when the value is wrong, "exercise 2: checking the answer raised
TypeError: ..." when the answer has the wrong type or shape. On success it prints "exercise 2: done".

Optional exercises
------------------
An exercise that needs real data or a GPU is tagged ``exercise-optional``, its heading says so
(``### Exercise 4 (optional: needs a GPU): <title>``), it has no check cell and is not counted. Its
markers sit inside an ``if`` that is false where the requirement is missing, so that both copies run
headlessly (the stub keeps the indentation)::

    if device.type == "cuda":          # or: if real_data_root:  (a parameter, empty by default)
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

Counts and checks
-----------------
Each of notebooks 01-05 has at least three ``core`` cells and at least three checked exercises
(``tests/test_teaching_contract.py``, marker ``teaching_contract``). ``tests/teaching_example.ipynb``
is a small notebook that follows every rule. To check a notebook while writing it::

    python -c "from tutorlib.exercises import contract; print(contract('notebooks/02_simat_delta_retrieval.ipynb'))"
    pytest tests/test_teaching_contract.py -k 02          # the rules, and the counts
    pytest tests/test_student_copies.py -k 02             # runs its student copy under smoke
    python -m tutorlib.student --out /tmp/student         # look at the student copies
'''
from __future__ import annotations

import ast
import re
import symtable
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tutorlib.teaching import (CHECK, CORE, EXERCISE, MARKED_TAGS, OPTIONAL, TeachingCell, TeachingFormatError,
                               describe_cell, enclosing_line, read_notebook, teaching_cells)


class ExerciseNotDone(AssertionError):
    """An exercise's check failed; the message starts with ``exercise N:``.

    Used by the exercise-check cells of notebooks 01-05.
    """


def check_exercise(number: int, passed: Callable[[], object], expected: str, got: Callable[[], object]) -> None:
    """Check exercise ``number``: ``passed()`` must be true; otherwise raise ExerciseNotDone.

    ``passed`` and ``got`` are functions without arguments (write ``lambda: ...``) so that the student's
    names are read here: a name the solution cell did not bind, or a NotImplementedError, means "not done
    yet"; any other error while checking, or a false condition, fails the exercise with ``expected``
    and what ``got()`` returns. On success prints ``exercise N: done``.

    Used by the exercise-check cells of notebooks 01-05.
    """
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise TypeError(f"number must be the exercise's number (1, 2, ...), got {number!r}")
    for parameter, value in (("passed", passed), ("got", got)):
        if not callable(value):
            raise TypeError(f"{parameter} must be a function without arguments (lambda: ...), got {value!r}")
    if not isinstance(expected, str) or not expected.strip():
        raise TypeError(f"expected must describe the expected outcome in words, got {expected!r}")
    try:
        ok = bool(passed())
    except (NameError, NotImplementedError) as error:
        raise ExerciseNotDone(
            f"exercise {number}: not done yet ({type(error).__name__}: {error}); expected {expected}. "
            "Write the solution in the exercise's cell, run it, then run this check again.") from error
    except Exception as error:  # a wrong answer may be of the wrong type or shape
        raise ExerciseNotDone(
            f"exercise {number}: checking the answer raised {type(error).__name__}: {error}; "
            f"expected {expected}") from error
    if not ok:
        try:
            answer = repr(got())
        except Exception as error:
            answer = f"an answer that cannot be shown ({type(error).__name__}: {error})"
        raise ExerciseNotDone(f"exercise {number}: expected {expected}, got {answer}")
    print(f"exercise {number}: done")


@dataclass
class TeachingContract:
    """What ``contract`` found in one notebook: counts of teaching cells and every broken rule.

    ``checked`` counts exercise-check cells (optional exercises are in ``optional``, not counted there).
    """

    notebook: str
    core: int
    checked: int
    optional: int
    problems: list[str] = field(default_factory=list)


_HEADING = re.compile(r"^#+\s*Exercise\s+(\d+)\b(.*)$", re.MULTILINE)
_EXERCISE_LINES = ("**Goal:**", "**Hint:**", "**Expected outcome:**")


def _python(source: str) -> str:
    """A cell's source as plain Python (IPython magics and shell escapes turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names bound at module level, global names read anywhere) by a piece of Python source."""
    table = symtable.symtable(source, "cell", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    read = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    pending = list(table.get_children())
    while pending:
        scope = pending.pop()
        read |= {s.get_name() for s in scope.get_symbols() if s.is_global() and s.is_referenced()}
        pending += scope.get_children()
    return bound, read


def _region_bindings(source: str, cell: TeachingCell) -> set[str]:
    """Module-level names bound between the markers of an exercise's solution cell."""
    lines = source.splitlines()
    bound = set()
    for region in cell.regions:
        body = textwrap.dedent("\n".join(lines[region.begin + 1:region.end]))
        bound |= _names(_python(body))[0]
    return bound


def _core_problems(source: str, cell: TeachingCell, above: str, where: str) -> list[str]:
    problems = []
    if "$" not in above:
        problems.append(f"{where}: the markdown cell above a core cell must give the equation in LaTeX ($...$)")
    if cell.function == cell.library_function:
        problems.append(f"{where}: the student's function must not take the library's name "
                        f"{cell.library_function!r} (call it my_{cell.library_function})")
    after = [node for node in ast.parse(source).body if node.lineno > cell.regions[0].end + 1]
    calls = [node for statement in after for node in ast.walk(statement) if isinstance(node, ast.Call)]
    asserts = [node for node in after if isinstance(node, ast.Assert)] + [
        call for call in calls if _called_name(call) == "assert_close"]
    names = {node.id for statement in after for node in ast.walk(statement) if isinstance(node, ast.Name)} | {
        node.attr for statement in after for node in ast.walk(statement) if isinstance(node, ast.Attribute)}
    if not asserts:
        problems.append(f"{where}: after the solution, a core cell must assert (assert or assert_close) "
                        f"that {cell.function} equals the library's {cell.library_function}")
    if not any(_called_name(call) == cell.function for call in calls) or cell.library_function not in names:
        problems.append(f"{where}: after the solution, a core cell must call {cell.function} and compare it "
                        f"with {cell.library_function}")
    return problems


def _called_name(call: ast.Call) -> str | None:
    function = call.func
    return function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)


def _check_problems(source: str, number: int | None, solution_bindings: set[str], where: str) -> list[str]:
    """Rules of a check cell: imports and check_exercise(N, lambda, expected, got=lambda) calls only."""
    problems, calls = [], []
    for statement in ast.parse(source).body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) \
                and _called_name(statement.value) == "check_exercise":
            calls.append(statement.value)
        else:
            problems.append(f"{where}: line {statement.lineno}: a check cell holds only imports and "
                            "check_exercise(...) calls (anything else would fail outside the check)")
    if not calls:
        problems.append(f"{where}: a check cell must call check_exercise")
    conditions_read = set()
    for call in calls:
        arguments = dict(zip(("number", "passed", "expected", "got"), call.args))
        arguments.update({keyword.arg: keyword.value for keyword in call.keywords})
        given = arguments.get("number")
        if not (isinstance(given, ast.Constant) and given.value == number):
            problems.append(f"{where}: line {call.lineno}: check_exercise's first argument must be "
                            f"this exercise's number, {number}")
        if not all(isinstance(arguments.get(name), ast.Lambda) for name in ("passed", "got")):
            problems.append(f"{where}: line {call.lineno}: pass the condition and the answer as lambdas, "
                            "so that a missing name fails inside the check with the exercise's message")
        elif "passed" in arguments:
            conditions_read |= _names(ast.unparse(arguments["passed"]))[1]
    if calls and not conditions_read & solution_bindings:
        problems.append(f"{where}: no condition reads a name bound between the solution's markers, "
                        "so the check cannot fail in the student copy")
    return problems


def _exercise_problems(cells, cell: TeachingCell, where: str) -> list[str]:
    problems = []
    above = cells[cell.index - 1] if cell.index > 0 else None
    heading = _HEADING.search(above.source) if above is not None and above.cell_type == "markdown" else None
    if heading is None or int(heading.group(1)) != cell.exercise:
        problems.append(f"{where}: the markdown cell right above must have the heading '### Exercise "
                        f"{cell.exercise}: <title>'")
    else:
        missing = [line for line in _EXERCISE_LINES if line not in above.source]
        if missing:
            problems.append(f"{where}: the exercise's markdown lacks {', '.join(missing)}")
        if ("(optional" in heading.group(2)) != (cell.tag == OPTIONAL):
            problems.append(f"{where}: an exercise is tagged {OPTIONAL!r} exactly when its heading says "
                            "'(optional: needs ...)'")
    following = cells[cell.index + 1] if cell.index + 1 < len(cells) else None
    followed_by_check = following is not None and CHECK in following.metadata.get("tags", [])
    if cell.tag == EXERCISE and not followed_by_check:
        problems.append(f"{where}: the next cell must be its check cell (tag {CHECK!r})")
    if cell.tag == OPTIONAL:
        if followed_by_check:
            problems.append(f"{where}: an optional exercise is not checked; remove the check cell after it")
        for region in cell.regions:
            guard = enclosing_line(cells[cell.index].source, region) or ""
            if not re.match(r"if\b", guard):
                problems.append(f"{where}: an optional exercise's markers must sit inside a top-level `if` that "
                                "is false where its requirement (a GPU, real data) is missing")
    return problems


def contract(notebook_path: Path | str) -> TeachingContract:
    """Check the teaching conventions (this module's docstring) in one notebook, without running it.

    Counts core, check and optional exercise cells and lists every broken rule, each message naming the
    notebook and cell. A notebook whose markers are unbalanced or misplaced gets that one problem; a file
    that is not a notebook raises TeachingFormatError.
    """
    path = Path(notebook_path)
    notebook = read_notebook(path)
    cells = notebook.cells
    counts = {tag: sum(tag in cell.metadata.get("tags", []) for cell in cells) for tag in (CORE, CHECK, OPTIONAL)}
    report = TeachingContract(path.name, counts[CORE], counts[CHECK], counts[OPTIONAL])
    try:
        tagged = {cell.index: cell for cell in teaching_cells(notebook, path.name)}
    except TeachingFormatError as error:
        report.problems.append(str(error))
        return report

    owners: dict[str, int] = {}  # name -> index of the last cell that bound it
    solution_bindings: dict[int, set[str]] = {}  # exercise number -> names bound between its markers
    for index, raw in enumerate(cells):
        if raw.cell_type != "code":
            continue
        where = describe_cell(path.name, index, raw.source)
        cell = tagged.get(index)
        try:
            source = _python(raw.source)
            bound, read = _names(source)
            if cell is not None and cell.tag == CORE:
                report.problems += _core_problems(source, cell, cells[index - 1].source, where)
            elif cell is not None and cell.tag in (EXERCISE, OPTIONAL):
                report.problems += _exercise_problems(cells, cell, where)
                solution_bindings[cell.exercise] = _region_bindings(raw.source, cell)
            elif cell is not None and cell.tag == CHECK:
                previous = tagged.get(index - 1)
                if previous is None or previous.tag != EXERCISE:
                    report.problems.append(f"{where}: a check cell must come right after its exercise's "
                                           f"solution cell (tag {EXERCISE!r})")
                report.problems += _check_problems(source, cell.exercise,
                                                   solution_bindings.get(cell.exercise, set()), where)
        except SyntaxError as error:
            report.problems.append(f"{where}: cannot be parsed ({error.msg}, line {error.lineno})")
            continue
        if cell is not None and cell.tag in (EXERCISE, OPTIONAL):
            for name in sorted(solution_bindings[cell.exercise] & owners.keys()):
                report.problems.append(
                    f"{where}: the solution binds `{name}`, which "
                    f"{describe_cell(path.name, owners[name], cells[owners[name]].source)} already binds; "
                    "use a new name so that the student copy cannot pass the check with the old value")
        for name in sorted(read - bound):
            owner = tagged.get(owners.get(name, -1))
            if owner is None or owner.tag not in MARKED_TAGS or owner.index == index:
                continue
            if cell is not None and cell.tag == CHECK and owner.index == index - 1:
                continue
            report.problems.append(
                f"{where}: reads `{name}`, which {describe_cell(path.name, owner.index, cells[owner.index].source)}"
                f" ({owner.tag}) binds; in the student copy that cell fails, so only it (and an exercise's "
                "check) may use its names")
        owners.update(dict.fromkeys(bound, index))
    return report
