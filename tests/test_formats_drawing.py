"""The drawing-folder reader refuses damaged folders with a FormatError naming the file and the problem."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tutorlib.formats import FormatError, read_drawing, write_image
from tests.format_samples import SIZE, read_all, write_small_drawing

read_everything = read_all(read_drawing)


@pytest.fixture
def folder(tmp_path):
    return write_small_drawing(tmp_path)


@pytest.fixture
def regenerated(tmp_path):
    return write_small_drawing(tmp_path, with_images=False)


def test_a_name_list_that_is_a_folder(folder):
    (folder / "name_list_val.txt").unlink()
    (folder / "name_list_val.txt").mkdir()
    with pytest.raises(FormatError, match=r"name_list_val.txt: is a folder where a file is expected"):
        read_drawing(folder)


def test_only_ascii_digits_are_bank_indices(regenerated):
    (regenerated / "name_list_test.txt").write_text("4\n\u0663\n", encoding="utf-8")  # ARABIC-INDIC DIGIT THREE
    (regenerated / "text" / "\u0663.txt").write_text("a red cube\n", encoding="utf-8")
    with pytest.raises(FormatError, match="name_list_test.txt: sample id '\u0663' has no image and is not a bank index"):
        read_drawing(regenerated)


def test_two_spellings_of_one_bank_index(regenerated):
    (regenerated / "name_list_test.txt").write_text("4\n03\n", encoding="utf-8")
    (regenerated / "text" / "03.txt").write_text("a red cube\n", encoding="utf-8")
    with pytest.raises(FormatError, match="name_list_test.txt: sample id '03' is also listed in name_list_train.txt"):
        read_drawing(regenerated)


def test_a_bank_index_beyond_int64(regenerated):
    (regenerated / "name_list_test.txt").write_text(f"{2**64}\n", encoding="utf-8")
    with pytest.raises(FormatError, match="name_list_test.txt: sample id '18446744073709551616' is too large"):
        read_drawing(regenerated)


@pytest.mark.parametrize("n_objects", [[0, 11], [2, 40]])
def test_world_with_too_many_objects(regenerated, n_objects):
    world = json.loads((regenerated / "world.json").read_text())
    (regenerated / "world.json").write_text(json.dumps({**world, "n_objects": n_objects}))
    with pytest.raises(FormatError, match=r"world.json: n_objects must be \[min, max\] with 0 <= min <= max <= 10"):
        read_drawing(regenerated)


def test_images_of_another_size(folder):
    write_image(folder / "images" / "2.png", torch.zeros(3, SIZE, SIZE + 8, dtype=torch.uint8))
    with pytest.raises(FormatError, match=r"images/2.png: image is 40x32 px \(width x height\) where world.json is "
                                          r"32x32 px"):
        read_everything(folder)


def test_images_of_another_size_without_world(folder):
    (folder / "world.json").unlink()
    write_image(folder / "images" / "3.png", torch.zeros(3, SIZE + 1, SIZE, dtype=torch.uint8))
    with pytest.raises(FormatError, match=r"images/3.png: image is 32x33 px \(width x height\) where 0.png is 32x32"):
        read_everything(folder)


def test_sixteen_bit_images_keep_their_values(folder):
    item = read_drawing(folder)[1]
    grey = item["image"][0].numpy().astype(np.uint16) * 257  # 8 -> 16 bits exactly
    Image.fromarray(grey).save(folder / "images" / "1.png")
    assert torch.equal(read_drawing(folder)[1]["image"], item["image"][:1].expand(3, -1, -1))
