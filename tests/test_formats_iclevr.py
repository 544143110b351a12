"""The i-CLEVR reader refuses damaged files with a FormatError naming the file and the problem."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from tutorlib.formats import FormatError, read_iclevr
from tests.format_samples import read_all_iclevr, write_small_iclevr


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_small_iclevr(tmp_path_factory.mktemp("iclevr"))


@pytest.fixture
def copy(pristine, tmp_path):
    path = tmp_path / pristine.name
    shutil.copyfile(pristine, path)
    return path


def edit(path, change):
    with h5py.File(path, "a") as f:
        change(f["000001"])
    return path


def test_pristine_file_reads(pristine):
    items = read_all_iclevr(pristine)
    assert len(items) == 3 and len(items[1]["edits"]) == 2 and len(items[1]["scenes"]) == 2


def test_edits_that_are_not_json(copy):
    edit(copy, lambda g: g.attrs.__setitem__("edits", "{turn 1: add"))
    with pytest.raises(FormatError, match=r"clevr_train.h5: group '000001' attribute 'edits' is not a JSON string"):
        read_all_iclevr(copy)


def test_ground_truth_with_one_entry_per_turn(copy):
    edit(copy, lambda g: g.attrs.__setitem__("edits", json.dumps([{"entity": "cube red"}])))
    with pytest.raises(FormatError, match=r"attribute 'edits' must be a JSON list of 2 objects"):
        read_all_iclevr(copy)


def test_objects_stored_as_strings(copy):
    def strings(group):
        del group["objects"]
        group.create_dataset("objects", data=np.full((2, 24), b"1"))

    edit(copy, strings)
    with pytest.raises(FormatError, match=r"clevr_train.h5: group '000001': 'objects' must hold numbers"):
        read_iclevr(copy)


def test_objects_outside_a_bag(copy):
    def counts(group):
        group["objects"][0, 0] = 7.0

    edit(copy, counts)
    with pytest.raises(FormatError, match=r"'objects' must hold 0 or 1"):
        read_all_iclevr(copy)


def test_corrupted_compressed_chunk(copy):
    with h5py.File(copy, "r") as f:
        offset, size = f["000001"]["images"].id.get_chunk_info(0).byte_offset, f["000001"]["images"].id.get_chunk_info(0).size
    data = bytearray(copy.read_bytes())
    data[offset + size // 2 : offset + size // 2 + 16] = bytes(16)
    copy.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"clevr_train.h5: group '000001': unreadable data"):
        read_all_iclevr(copy)


def test_nan_coordinates(copy):
    edit(copy, lambda g: g["coords"].__setitem__((0, 0, 0), np.nan))
    with pytest.raises(FormatError, match=r"clevr_train.h5: group '000001': 'coords' holds NaN"):
        read_all_iclevr(copy)


def test_nan_positions_in_the_scene_graphs(copy):
    def nan_scene(group):
        scenes = json.loads(group.attrs["scenes"])
        scenes[0]["objects"][0]["x"] = float("nan")
        group.attrs["scenes"] = json.dumps(scenes)

    edit(copy, nan_scene)
    with pytest.raises(FormatError, match=r"attribute 'scenes' is malformed \(ValueError: x must be a finite number"):
        read_all_iclevr(copy)
