"""The CLEVR-Change reader refuses damaged folders with a FormatError naming the file and the problem."""
from __future__ import annotations

import json

import pytest
import torch

from tutorlib.formats import FormatError, read_clevr_change, write_image
from tests.format_samples import SIZE, read_all, write_small_clevr_change

read_everything = read_all(read_clevr_change)


@pytest.fixture
def folder(tmp_path):
    return write_small_clevr_change(tmp_path)


def edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("name", ["change_captions.json", "no_change_captions.json"])
def test_empty_caption_lists(folder, name):
    edit_json(folder / name, lambda data: data.__setitem__("CLEVR_default_000002.png", []))
    with pytest.raises(FormatError, match=rf"{name}: 'CLEVR_default_000002.png' maps to an empty list"):
        read_clevr_change(folder)


def test_an_image_under_two_change_types(folder):
    def twice(types):
        first, second = list(types)[:2]
        types[second].append(types[first][0])

    edit_json(folder / "type_mapping.json", twice)
    with pytest.raises(FormatError, match=r"type_mapping.json: CLEVR_default_000000.png is listed under two change "
                                          r"types, 'color' and 'material'"):
        read_clevr_change(folder)


def test_images_of_another_size(folder):
    write_image(folder / "nsc_images" / "CLEVR_nonsemantic_000003.png", torch.zeros(3, SIZE, 48, dtype=torch.uint8))
    with pytest.raises(FormatError, match=r"CLEVR_nonsemantic_000003.png: image is 48x32 px \(width x height\) where "
                                          r"CLEVR_default_000000.png is 32x32 px"):
        read_everything(folder)


def test_a_box_beyond_its_image(folder):
    edit_json(folder / "scenes.json", lambda scenes: scenes["CLEVR_default_000001.png"].__setitem__(
        "box_after", [0, SIZE - 1, 3, 3]))
    with pytest.raises(FormatError, match=r"scenes.json: CLEVR_default_000001.png: box_after \[0, 31, 3, 3\] reaches "
                                          r"beyond its 32x32 px image CLEVR_semantic_000001.png"):
        read_everything(folder)


def test_no_index_at_all(folder):
    (folder / "splits.json").write_text(json.dumps({"train": [], "val": [], "test": []}))
    with pytest.raises(FormatError, match=r"splits.json: lists no index"):
        read_clevr_change(folder)
