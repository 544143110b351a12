"""Where the repository, its data and its run outputs live.

Every path comes from the repository root or an environment variable, never from a relative
``../data``, so notebooks, tests and scripts agree wherever they are started from.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def repo_root() -> Path:
    """The folder holding ``pyproject.toml`` above this package.
    """
    package_dir = Path(__file__).resolve().parent
    for folder in package_dir.parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(f"no pyproject.toml found in any folder above {package_dir}")


def _folder_from_env(variable: str, default: Path) -> Path:
    """The folder named by ``variable`` if it is set, else ``default``; created on demand."""
    folder = Path(os.environ.get(variable) or default).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def data_dir() -> Path:
    """Generated data and trained models: ``$TUTORLIB_DATA`` or ``<root>/data`` (created on demand).
    """
    return _folder_from_env("TUTORLIB_DATA", repo_root() / "data")


def runs_dir() -> Path:
    """Executed notebooks and metrics JSON: ``$TUTORLIB_RUNS`` or ``<root>/runs`` (created on demand).
    """
    return _folder_from_env("TUTORLIB_RUNS", repo_root() / "runs")


def notebooks_dir() -> Path:
    """The ordered tutorial notebooks: ``<root>/notebooks``.
    """
    return repo_root() / "notebooks"


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path`` in one step.

    A crash or an exception leaves ``path`` as it was, never half written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
