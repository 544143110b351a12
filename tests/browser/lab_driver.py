"""Driving one notebook in JupyterLab with Playwright: Run All, then every control of its explorer.

The waits follow JupyterLab's own UI tests (Galata): the notebook's kernel status, never a fixed sleep
where the kernel has something to report. Every wait is bounded and names what it waited for.
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.browser.image_panels import image_panels

if TYPE_CHECKING:  # Playwright is imported by the fixture that launches the browser (or skips without it)
    from playwright.sync_api import Page

HOOKS = Path(__file__).with_name("lab_hooks.js")
MIN_IMAGE_WIDTH = 256       # CSS pixels: the smallest picture an explorer may show
OPEN_TIMEOUT = 120.0        # seconds to load JupyterLab and start the kernel
RUN_TIMEOUT = 600.0         # seconds for Run All under the smoke profile (budget: 2 minutes a notebook)
KERNEL_START_TIMEOUT = 60.0  # seconds until the kernel starts handling a control's change
ACTION_TIMEOUT = 60.0       # seconds for a click, key press or fill to find its element ready
REDRAW_TIMEOUT = 300.0      # seconds until the kernel is idle again after a change
DRAW_SETTLE = 5.0           # seconds for the page to show the new picture once the kernel is idle


@dataclass
class Control:
    """One control of an explorer: its position among the controls, widget kind and label."""

    index: int
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} '{self.name}'"


@dataclass
class Picture:
    """An image in an explorer's output: its PNG bytes and the width it is rendered at in the page."""

    png: bytes
    natural_width: int
    rendered_width: float

    def panel_widths(self) -> list[float]:
        """Rendered width (CSS pixels) of each picture drawn inside the PNG."""
        scale = self.rendered_width / self.natural_width
        return [round(panel.width * scale, 1) for panel in image_panels(self.png)]


@dataclass
class Report:
    """Everything found wrong with one notebook, gathered rather than stopping at the first, and what
    was measured on the way (written beside the screenshot as <notebook>.json)."""

    notebook: str
    problems: list[str] = field(default_factory=list)
    measured: dict = field(default_factory=dict)

    def add(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"notebook": self.notebook, "problems": self.problems, **self.measured},
                                   indent=1))


class NotebookInLab:
    """One notebook open in its own JupyterLab page (own workspace, so no other notebook is restored)."""

    def __init__(self, page: Page, server_url: str, token: str, name: str) -> None:
        self.page, self.name = page, name
        page.set_default_timeout(ACTION_TIMEOUT * 1000)
        page.add_init_script(path=str(HOOKS))
        page.goto(f"{server_url}lab/workspaces/test-{name}/tree/{name}.ipynb?reset&token={token}",
                  timeout=OPEN_TIMEOUT * 1000)
        self._wait("labTest.opened()", OPEN_TIMEOUT, "JupyterLab to open the notebook and start its kernel")
        page.evaluate("labTest.listen()")

    def _wait(self, expression: str, seconds: float, what: str, arg=None) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(expression if arg is None else f"(arg) => {expression}", arg=arg,
                                        timeout=seconds * 1000, polling=250)
        except PlaywrightTimeout:
            raise TimeoutError(f"{self.name}: waited {seconds:.0f} s for {what}") from None

    def run_all(self) -> dict:
        """Clear the outputs and Run All; once the run is over and the kernel idle, returns {"ok": bool,
        "seconds": wall time, "error": why it stopped (when it did)}."""
        start = time.perf_counter()
        self.page.evaluate("labTest.startRunAll()")
        self._wait("labTest.runResult !== undefined", RUN_TIMEOUT, "Run All to finish")
        self._wait("labTest.status() === 'idle'", RUN_TIMEOUT, "the kernel to be idle after Run All")
        return {**self.page.evaluate("labTest.runResult"), "seconds": round(time.perf_counter() - start, 1)}

    def cell_problems(self) -> list[str]:
        return self.page.evaluate("labTest.cellProblems()")

    def kernel_errors(self) -> list[str]:
        return self.page.evaluate("labTest.errors")

    def mark_explorer(self) -> dict | None:
        """{"index", "source", "widget"} of the explorer cell (None when the notebook has none)."""
        return self.page.evaluate("labTest.markExplorer()")

    def controls(self) -> list[Control]:
        return [Control(**entry) for entry in self.page.evaluate("labTest.controls()")]

    def pictures(self) -> list[Picture]:
        return [Picture(base64.b64decode(image["src"].partition(",")[2]), image["naturalWidth"], image["width"])
                for image in self.page.evaluate("labTest.images()")
                if image["src"].startswith("data:image/png;base64,") and image["naturalWidth"]]

    def explorer_errors(self) -> list[str]:
        return self.page.evaluate("labTest.explorerErrors()")

    def _sources(self) -> str:
        return json.dumps([image["src"] for image in self.page.evaluate("labTest.images()")])

    def wait_for_kernel(self, busy_before: int, idle_before: int, what: str) -> None:
        """After an action: the kernel took it up (busy) and finished (idle)."""
        self._wait("labTest.busy > arg", KERNEL_START_TIMEOUT, f"the kernel to take up {what}", busy_before)
        self._wait("labTest.idle > arg && labTest.status() === 'idle'", REDRAW_TIMEOUT,
                   f"the kernel to finish {what}", idle_before)

    def act(self, action, what: str) -> bool:
        """Run `action` (a function of the page), wait for the kernel, and say whether the pictures changed."""
        before = self._sources()
        busy, idle = self.page.evaluate("[labTest.busy, labTest.idle]")
        action()
        self.wait_for_kernel(busy, idle, what)
        # An output being redrawn is empty for a moment: only a non-empty set of other pictures counts.
        changed = "(s => s !== '[]' && s !== arg)(JSON.stringify(labTest.images().map(i => i.src)))"
        try:
            self._wait(changed, DRAW_SETTLE, f"the picture to change after {what}", before)
        except TimeoutError:
            return False
        return True

    def locator(self, control: Control):
        return self.page.locator(f'[data-test-explorer] [data-test-control="{control.index}"]')

    def screenshot(self, path: Path) -> None:
        """The explorer's cell (its code, controls and pictures) as a PNG."""
        path.parent.mkdir(parents=True, exist_ok=True)
        cell = self.page.locator("[data-test-explorer-cell]")
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(path))


def changes(nb: NotebookInLab, control: Control, others: list[Control]) -> list[tuple[str, callable]]:
    """The ways to change `control`, tried in turn until one redraws: (what it does, action)."""
    node = nb.locator(control)
    if control.kind == "slider":
        handle = node.locator(".noUi-handle")
        up = float(handle.get_attribute("aria-valuenow")) < float(handle.get_attribute("aria-valuemax"))
        keys = ("ArrowRight", "End") if up else ("ArrowLeft", "Home")
        return [(f"key {key}", lambda key=key: handle.press(key)) for key in keys]
    if control.kind == "dropdown":
        select = node.locator("select")
        options = [text.replace("\xa0", " ") for text in select.locator("option").all_text_contents()]
        current = select.evaluate("s => s.selectedIndex")
        picks = [(current + step) % len(options) for step in range(1, min(len(options), 4))]
        return [(f"option '{options[i]}'", lambda i=i: select.select_option(index=i)) for i in picks]
    if control.kind == "toggle-buttons":
        buttons = node.locator("button.widget-toggle-button:not(.mod-active)")
        return [(f"button '{buttons.nth(i).inner_text()}'", lambda i=i: buttons.nth(i).click())
                for i in range(min(buttons.count(), 3))]
    if control.kind in ("checkbox", "toggle", "button"):
        target = node.locator("input") if control.kind == "checkbox" else node
        return [("click", lambda: target.click())]
    field = node.locator("input, textarea").first
    if control.kind == "number":
        value = float(field.input_value() or 0)
        values = [str(int(value + step)) if value.is_integer() else str(value + step) for step in (1, 7)]
    else:  # free text: the text of the other text boxes, then nothing
        current = field.input_value()
        texts = [nb.locator(other).locator("input, textarea").first.input_value() for other in others
                 if other.kind == "text" and other.index != control.index]
        values = list(dict.fromkeys(t for t in texts + [""] if t != current))[:2]

    def fill(text: str) -> None:
        field.fill(text)
        field.press("Enter")

    return [(f"text '{text}'", lambda text=text: fill(text)) for text in values]
