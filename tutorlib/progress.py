"""Progress bars through ``tqdm.auto``; ``TUTORLIB_PROGRESS=0`` silences them."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm


def progress_enabled() -> bool:
    """False when the environment variable ``TUTORLIB_PROGRESS`` is ``0``.
    """
    return os.environ.get("TUTORLIB_PROGRESS", "1") != "0"


def progress(iterable: Iterable | None = None, **tqdm_kwargs: Any) -> tqdm:
    """A ``tqdm.auto`` progress bar, disabled when ``TUTORLIB_PROGRESS=0``.
    """
    tqdm_kwargs.setdefault("disable", not progress_enabled())
    return tqdm(iterable, **tqdm_kwargs)
