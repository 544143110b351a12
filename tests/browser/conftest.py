"""One JupyterLab server and one headless Chromium for the browser tests, always shut down afterwards.

JupyterLab serves a temporary copy of the notebooks under the smoke profile (its kernels inherit the
environment), with its own settings, workspaces and data folders; Chromium is Debian's, driven by
Playwright (whose own browser download is not used), with a fresh profile.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tutorlib.lab import running_lab
from tutorlib.paths import notebooks_dir, repo_root

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}  # a laptop screen, JupyterLab's file browser open
LAB_SETTINGS = {
    # every cell in the page at once (no virtual scrolling), so the explorer's controls can be found
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # no news or update prompts over the notebook
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def _missing(reason: str) -> None:
    """Skip outside CI; in CI (CI=true) a missing browser is a failure, not a silent skip."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """A Playwright browser context of headless Chromium with a fresh user-data dir."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the browser tests need Playwright: pip install -e '.[dev]'")
    if not Path(CHROMIUM).is_file():
        _missing(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium "
                 "(Debian's package; Playwright's own browser download is not used)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """JupyterLab on a copy of the notebooks, kernels under TUTORLIB_PROFILE=smoke with their own data."""
    root = tmp_path_factory.mktemp("lab-root")
    for notebook in notebooks_dir().glob("*.ipynb"):
        shutil.copy(notebook, root)
    scratch = tmp_path_factory.mktemp("lab-data")
    environment = {"TUTORLIB_PROFILE": "smoke", "TUTORLIB_PROGRESS": "0", "TUTORLIB_DATA": str(scratch / "data"),
                   "TUTORLIB_RUNS": str(scratch / "runs"),
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root()), os.environ.get("PYTHONPATH")]))}
    with running_lab(root, environment, ["--LabApp.expose_app_in_browser=True"], LAB_SETTINGS) as server:
        yield server


@pytest.fixture
def shut_down_kernels(lab):
    """After a test, every kernel of the server is shut down (a notebook's models leave with it)."""
    yield
    for session in json.loads(lab.api("api/sessions")):
        lab.api(f"api/sessions/{session['id']}", method="DELETE")
