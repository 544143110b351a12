"""Every notebook in JupyterLab, as a student uses it: Run All, then every control of its explorer.

Checked per notebook, all problems reported together: no cell fails or prints a traceback; the explorer
(the last cell calling a `*_explorer(...)` function) shows its widget; every control, changed once (then
the explorer's button pressed, where it has one), redraws the picture without an error; every picture
drawn is at least 256 px wide in the page. The explorer's cell is saved as runs/browser/<notebook>.png,
what was measured as runs/browser/<notebook>.json.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from tests.browser.lab_driver import MIN_IMAGE_WIDTH, Control, NotebookInLab, Report, changes

from tutorlib.paths import notebooks_dir, runs_dir
from tutorlib.runner import find_notebooks

pytestmark = pytest.mark.browser

# Problems of explorers that live in a system's package, measured by this test and left to that package:
# each entry is a regular expression that must match a problem of its notebook. The test fails on any
# other problem, and on an entry that no longer matches anything (the problem is fixed: delete the entry).
KNOWN_PROBLEMS = {
    "05_idc_difference_captioning": [r"idc_explorer.*draws pictures \[.*\] px wide",
                                     r"idc_explorer.*'decoding': no change redrew the picture"],
}


def check_pictures(nb: NotebookInLab, report: Report, where: str) -> None:
    pictures = nb.pictures()
    widths = [picture.panel_widths() for picture in pictures]
    report.measured["picture_widths"] = widths
    report.measured["image_widths"] = [round(picture.rendered_width, 1) for picture in pictures]
    if not pictures:
        report.add(where, "shows no picture")
    for number, (picture, drawn) in enumerate(zip(pictures, widths)):
        if not drawn:
            report.add(where, f"image {number} ({picture.rendered_width:.0f} px wide) draws no picture panel")
        elif min(drawn) < MIN_IMAGE_WIDTH:
            report.add(where, f"image {number} draws pictures {drawn} px wide in the page (at least "
                              f"{MIN_IMAGE_WIDTH} each); the image is {picture.rendered_width:.0f} px wide")


def check_control(nb: NotebookInLab, report: Report, where: str, control: Control, controls: list[Control],
                  apply: Control | None) -> None:
    then = f", then {apply}" if apply is not None else ""
    tried = []
    for what, change in changes(nb, control, controls):
        tried.append(what)
        errors_before = len(nb.kernel_errors())

        def action(change=change) -> None:
            change()
            if apply is not None:
                nb.locator(apply).click()

        try:
            redrawn = nb.act(action, f"{control} ({what}{then})")
        except TimeoutError as error:
            report.add(f"{where}, {control}", str(error))
            return
        errors = nb.kernel_errors()[errors_before:] or nb.explorer_errors()
        if errors:
            report.add(f"{where}, {control}", f"{what}{then} raised: {'; '.join(errors)}")
            return
        if redrawn and nb.pictures():
            report.measured["controls"][str(control)] = f"redrawn after {what}{then}"
            return
    report.add(f"{where}, {control}", f"no change redrew the picture (tried: {', '.join(tried)}{then})")


def check_explorer(nb: NotebookInLab, report: Report, screenshot: Path | None) -> None:
    explorer = nb.mark_explorer()
    if explorer is None:
        report.add("explorer", "no code cell calls a *_explorer(...) function")
        return
    where = f"explorer (cell {explorer['index']}: {explorer['source'].strip()[:60]})"
    if not explorer["widget"]:
        report.add(where, "shows no widget")
        return
    controls = nb.controls()
    report.measured["controls"] = {}
    if not controls:
        report.add(where, "has no controls")
    buttons = [c for c in controls if c.kind == "button"]
    apply = buttons[-1] if buttons else None  # an explorer with a button draws when it is pressed
    if apply is not None and not nb.pictures():
        try:
            if not nb.act(lambda: nb.locator(apply).click(), f"a click on {apply}"):
                report.add(f"{where}, {apply}", "a click drew no picture")
        except TimeoutError as error:
            report.add(f"{where}, {apply}", str(error))
    if screenshot is not None:
        nb.screenshot(screenshot)
    check_pictures(nb, report, where)
    for control in controls:
        if control is not apply:  # the button is pressed after every other change
            check_control(nb, report, where, control, controls, apply)


def check_notebook(chromium, lab, name: str, screenshot: Path | None = None) -> Report:
    """Open `name` in JupyterLab, Run All, check its cells and its explorer (saved to `screenshot`)."""
    report = Report(name)
    page = chromium.new_page()
    try:
        nb = NotebookInLab(page, lab.url, lab.token, name)
        result = nb.run_all()
        report.measured["run_all_seconds"] = result["seconds"]
        if not result["ok"]:
            report.add("Run All", result.get("error", "stopped before the last cell"))
        for problem in nb.cell_problems():
            report.add("cell", problem)
        check_explorer(nb, report, screenshot)
    finally:
        page.close()
    return report


def split_known(report: Report, known: list[str]) -> tuple[list[str], list[str]]:
    """(problems no known pattern matches, known patterns that matched no problem)."""
    new = [p for p in report.problems if not any(re.search(k, p) for k in known)]
    fixed = [k for k in known if not any(re.search(k, p) for p in report.problems)]
    return new, fixed


@pytest.mark.parametrize("name", find_notebooks(notebooks_dir()))
def test_notebook_in_jupyterlab(name, lab, chromium, shut_down_kernels):
    report = check_notebook(chromium, lab, name, runs_dir() / "browser" / f"{name}.png")
    report.save(runs_dir() / "browser" / f"{name}.json")
    new, fixed = split_known(report, KNOWN_PROBLEMS.get(name, []))
    assert not new, f"{name} in JupyterLab:\n  " + "\n  ".join(report.problems)
    assert not fixed, f"{name}: these known problems no longer occur, delete them from KNOWN_PROBLEMS: {fixed}"
    if report.problems:
        pytest.xfail(f"{name}, known problems:\n  " + "\n  ".join(report.problems))


# A notebook with one of each defect the checks must catch.
FAULTY_CELLS = [
    "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nfrom IPython.display import display",
    '''def show(word, steps, colour):
    if colour == "blue":
        raise ValueError("no blue here")
    figure, axis = plt.subplots(figsize=(1.5, 1.5))
    axis.imshow([[0.2, 0.8], [0.6, 0.4]], cmap="magma" if colour == "red" else "viridis")
    axis.axis("off")
    display(figure)
    plt.close(figure)

def faulty_explorer():
    return widgets.interactive(show, word=widgets.Text("a"),
                               steps=widgets.IntSlider(0, 0, 3, continuous_update=False),
                               colour=widgets.Dropdown(options=["red", "blue"]))''',
    "faulty_explorer()",
    'raise RuntimeError("the last cell fails")',
]


def test_the_checks_catch_a_faulty_notebook(lab, chromium, shut_down_kernels):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in FAULTY_CELLS])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    body = json.dumps({"type": "notebook", "format": "json", "content": notebook}).encode()
    lab.api("api/contents/zz_faulty.ipynb", method="PUT", body=body)
    problems = check_notebook(chromium, lab, "zz_faulty").problems
    expected = [r"Run All: stopped before the last cell",
                r"cell 3 \(raise RuntimeError.*RuntimeError: the last cell fails",
                r"faulty_explorer.*draws pictures \[1\d\d\.\d\] px wide",
                r"text 'word': no change redrew the picture \(tried: text ''\)",
                r"slider 'steps': no change redrew the picture \(tried: key ArrowRight, key End\)",
                r"dropdown 'colour': option 'blue' raised: ValueError: no blue here"]
    assert [[p for p in problems if re.search(e, p)] != [] for e in expected] == [True] * len(expected), problems
    assert len(problems) == len(expected), problems
