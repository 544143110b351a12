"""Shared fixtures: every test that writes data or runs gets its own folders."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point TUTORLIB_DATA and TUTORLIB_RUNS at fresh folders under ``tmp_path``."""
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TUTORLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread: small models run far faster that way when the two cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_active_profile(monkeypatch):
    """Every test starts with no active profile (``resolve_profile`` remembers the last one in the process)."""
    import tutorlib.profiles as profiles

    monkeypatch.setattr(profiles, "_active", None)
    monkeypatch.delenv("TUTORLIB_STAGES", raising=False)
    monkeypatch.delenv("TUTORLIB_STEP_CAP", raising=False)
