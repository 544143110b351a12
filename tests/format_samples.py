"""Small valid datasets in every seed format, written with the library's own writers, for the reader tests.

Each `write_*` writes into `folder` and returns the path the reader opens; `READERS` maps a format name to
(writer, read_all), where read_all opens the path and reads every item, as a user's loop would.
"""
from __future__ import annotations

from pathlib import Path

from tutorlib.formats import (read_clevr_change, read_drawing, read_iclevr, read_simat, read_vismin,
                              write_clevr_change, write_drawing, write_iclevr, write_simat, write_vismin)
from tutorlib.world.views import CaptionedScenes, ChangePairs, EditingDialogues, MinimalChangePairs, SimatDatabase

SIZE = 32


def write_small_iclevr(folder: Path) -> Path:
    return write_iclevr(EditingDialogues(3, size=SIZE, seed=1, turns=2, progress=False), folder / "clevr_train.h5",
                        show_progress=False)


def write_small_simat(folder: Path) -> Path:
    db = SimatDatabase(12, size=SIZE, seed=1, subjects=("red cube", "blue sphere"), objects=("green cube",),
                       relations=("left", "behind", "front"), progress=False)
    return write_simat(db, folder / "simat", show_progress=False)


def write_small_drawing(folder: Path, with_images: bool = True) -> Path:
    return write_drawing(CaptionedScenes(5, size=SIZE, seed=1, progress=False), folder / "drawing",
                         with_images=with_images, show_progress=False)


def write_small_vismin(folder: Path) -> Path:
    return write_vismin(MinimalChangePairs(4, size=SIZE, seed=1), folder / "vismin")


def write_small_clevr_change(folder: Path) -> Path:
    return write_clevr_change(ChangePairs(5, size=SIZE, seed=1), folder / "clevr_change")


def read_all_iclevr(path: Path) -> list:
    with read_iclevr(path) as data:
        return [data[i] for i in range(len(data))]


def read_all_simat(path: Path) -> list:
    data = read_simat(path)
    return [data[i] for i in range(len(data))] + [data.images]


def read_all(reader):
    def read(path: Path) -> list:
        data = reader(path)
        return [data[i] for i in range(len(data))]

    return read


READERS = {
    "iclevr": (write_small_iclevr, read_all_iclevr),
    "simat": (write_small_simat, read_all_simat),
    "drawing": (write_small_drawing, read_all(read_drawing)),
    "vismin": (write_small_vismin, read_all(read_vismin)),
    "clevr_change": (write_small_clevr_change, read_all(read_clevr_change)),
}
