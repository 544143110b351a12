import pytest

from tutorlib import paths
from tutorlib.paths import atomic_write, data_dir, notebooks_dir, repo_root, runs_dir

def test_repo_root_holds_pyproject_and_package():
    root = repo_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "tutorlib" / "paths.py").is_file()
    assert notebooks_dir() == root / "notebooks"

def test_default_folders_are_under_the_root(tmp_path, monkeypatch):
    monkeypatch.delenv("TUTORLIB_DATA", raising=False)
    monkeypatch.delenv("TUTORLIB_RUNS", raising=False)
    monkeypatch.setattr(paths, "repo_root", lambda: tmp_path)
    assert data_dir() == tmp_path / "data" and data_dir().is_dir()
    assert runs_dir() == tmp_path / "runs" and runs_dir().is_dir()

def test_environment_overrides_and_creates_folders(isolated_dirs):
    assert not (isolated_dirs / "data").exists()
    assert data_dir() == isolated_dirs / "data" and data_dir().is_dir()
    assert runs_dir() == isolated_dirs / "runs" and runs_dir().is_dir()

def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    with atomic_write(target) as temporary:
        temporary.write_text("new")
        assert not target.exists()
    assert target.read_text() == "new"
    assert list(target.parent.iterdir()) == [target]

def test_atomic_write_keeps_old_content_when_writing_fails(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
