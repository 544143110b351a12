"""The VisMin reader refuses damaged annotations and images with a FormatError naming the file and the problem."""
from __future__ import annotations

import json

import pytest
import torch

from tutorlib.formats import FormatError, read_vismin, write_image
from tests.format_samples import SIZE, read_all, write_small_vismin

read_everything = read_all(read_vismin)


@pytest.fixture
def folder(tmp_path):
    return write_small_vismin(tmp_path)


def edit_entry(folder, change):
    path = folder / "annotations.json"
    entries = json.loads(path.read_text())
    change(entries[1], entries[1]["negatives"][0])
    path.write_text(json.dumps(entries))


def test_an_infinite_box(folder):
    path = folder / "annotations.json"  # 1e400 parses as infinity; json.dumps cannot write it, so edit the text
    path.write_text(path.read_text().replace('"edit_box": [', '"edit_box": [1e400, 0, 4, 4], "old_box": [', 1))
    with pytest.raises(FormatError, match=r"annotations.json: entry 0, negative 0: malformed 'edit_box' \(ValueError"):
        read_vismin(folder)


@pytest.mark.parametrize("box", [[-1, 0, 4, 4], [0, 0, float("nan"), 4], [0, 0, 2**40, 4]])
def test_boxes_outside_pixel_range(folder, box):
    edit_entry(folder, lambda entry, negative: negative.__setitem__("source_box", box))
    with pytest.raises(FormatError, match=r"entry 1, negative 0: malformed 'source_box'"):
        read_vismin(folder)


def test_a_box_beyond_its_image(folder):
    edit_entry(folder, lambda entry, negative: negative.__setitem__("edit_box", [SIZE - 2, 0, 4, 4]))
    with pytest.raises(FormatError, match=rf"annotations.json: entry 1, negative 0: box1 \[{SIZE - 2}, 0, 4, 4\] reaches "
                                          rf"beyond its {SIZE}x{SIZE} px image 000001_edited.png"):
        read_everything(folder)


def test_an_unknown_category(folder):
    edit_entry(folder, lambda entry, negative: negative.__setitem__("category", "colour"))
    with pytest.raises(FormatError, match=r"entry 1, negative 0: unknown category 'colour'; choose from \['object'"):
        read_vismin(folder)


def test_an_edited_image_of_another_size(folder):
    write_image(folder / "images" / "000002_edited.png", torch.zeros(3, SIZE, SIZE * 2, dtype=torch.uint8))
    with pytest.raises(FormatError, match=r"000002_edited.png: image is 64x32 px \(width x height\) where "
                                          r"000002_source.png is 32x32 px"):
        read_everything(folder)


def test_entries_may_differ_in_size(folder):
    """Real sources (COCO) differ in size: only the two images of one pair must agree."""
    for name in ("000003_source.png", "000003_edited.png"):
        write_image(folder / "images" / name, torch.zeros(3, 48, 40, dtype=torch.uint8))
    items = read_everything(folder)
    assert items[3]["image0"].shape == (3, 48, 40) and items[0]["image0"].shape == (3, SIZE, SIZE)


def test_a_folder_where_an_image_should_be(folder):
    (folder / "images" / "000000_edited.png").unlink()
    (folder / "images" / "000000_edited.png").mkdir()
    with pytest.raises(FormatError, match=r"000000_edited.png: is a folder where an image file is expected"):
        read_vismin(folder)
