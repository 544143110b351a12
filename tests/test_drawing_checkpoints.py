"""The drawing GAN's checkpoint entry point: exact step counts, honest seconds, all files written together."""
import dataclasses
import json

import pytest

from tests.test_drawing_gan import TINY
from tutorlib.drawing.checkpoints import SHIPPED


@pytest.fixture
def spec(isolated_dirs, monkeypatch):
    monkeypatch.setenv("TUTORLIB_PROGRESS", "0")
    return dataclasses.replace(SHIPPED, config=dataclasses.replace(TINY, steps=3))


def _log(folder):
    return json.loads((folder / "training_log.json").read_text())


def test_entry_point_refuses_fewer_steps_and_keeps_seconds(spec, tmp_path):
    out = tmp_path / "gan"
    spec.main(["--steps", "3", "--threads", "1", "--out", str(out)])
    seconds = _log(out)["seconds"]
    # a re-run resumes the finished run: no step is trained again and the seconds stay those of the 3 steps
    spec.main(["--steps", "3", "--threads", "1", "--out", str(out)])
    assert _log(out)["seconds"] == seconds
    with pytest.raises(ValueError, match="past the 2 steps asked for"):
        spec.main(["--steps", "2", "--threads", "1", "--out", str(out)])
    assert json.loads((out / "config.json").read_text())["steps"] == 3


def test_a_failed_write_leaves_the_old_folder_whole(spec, tmp_path, monkeypatch):
    out = tmp_path / "gan"
    spec.main(["--steps", "3", "--threads", "1", "--out", str(out)])
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def crash(folder, generator):
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError, match="killed while writing"):
        dataclasses.replace(spec, figures=crash).main(["--steps", "4", "--threads", "1", "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".gan")], "no temporary folder is left"
