"""Captioned scenes with concept masks, and the learning-by-drawing folder layout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tutorlib.formats import FormatError, read_drawing, write_drawing
from tutorlib.world import ATTRIBUTES, render
from tutorlib.world.views import CONCEPTS, CaptionedScenes, collate, regenerate


@pytest.fixture(scope="module")
def scenes():
    return CaptionedScenes(40, size=32, seed=5, progress=False)


def test_item_layout(scenes):
    item = scenes[3]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.uint8
    assert item["ids"].shape == (32, 32) and item["ids"].dtype == torch.int64
    assert item["masks"].shape == (len(CONCEPTS), 32, 32) and item["masks"].dtype == torch.bool
    assert CONCEPTS[:2] == ("size=small", "size=large") and len(CONCEPTS) == 15
    assert item["id"] == 3 and item["split"] == "train" and item["audio"] is None
    assert item["transcript"] == item["captions"][0] and len(item["captions"]) >= 2
    assert 2 <= len(item["scene"]) <= 5


def test_masks_match_ids_and_scene(scenes):
    for k in range(0, 40, 7):
        item = scenes[k]
        ids, scene, masks = item["ids"], item["scene"], item["masks"]
        assert int(ids.min()) == -1 and int(ids.max()) < len(scene)
        for c, concept in enumerate(CONCEPTS):
            attribute, value = concept.split("=")
            expected = torch.zeros_like(ids, dtype=torch.bool)
            for j, obj in enumerate(scene.objects):
                if getattr(obj, attribute) == value:
                    expected |= ids == j
            assert torch.equal(masks[c], expected), concept
        # Every visible pixel has exactly one value per attribute; the floor none.
        for attribute, values in ATTRIBUTES.items():
            rows = [CONCEPTS.index(f"{attribute}={v}") for v in values]
            assert torch.equal(masks[rows].sum(0), (ids >= 0).long())


def test_ids_regenerate_samples(scenes):
    """A sample id is a bank index: (size, seed, n_objects, id) rebuild it, whatever else is in the dataset."""
    regenerated, images, ids, captions = regenerate([17, 4], 32, 5, (2, 5))
    for k, sample in enumerate([17, 4]):
        assert regenerated[k] == scenes[sample]["scene"]
        assert torch.equal(images[k], scenes[sample]["image"])
        assert torch.equal(ids[k], scenes[sample]["ids"])
        assert captions[k] == scenes[sample]["captions"]
    assert torch.equal(render(scenes.scenes[:4], 32).images, scenes.images[:4])
    assert CaptionedScenes(3, size=32, seed=6, progress=False)[0]["scene"] != scenes[0]["scene"]


def test_splits(scenes):
    assert [len(scenes.indices(s)) for s in ("train", "val", "test")] == [32, 4, 4]
    assert scenes[35]["split"] == "val" and scenes[39]["split"] == "test"
    assert len(scenes.split("val")) == 4
    other = CaptionedScenes(10, size=32, split_shares=(0.5, 0.5, 0.0), progress=False)
    assert other.splits == ["train"] * 5 + ["val"] * 5
    with pytest.raises(ValueError):
        CaptionedScenes(10, split_shares=(0.5, 0.2, 0.2), progress=False)
    text = scenes.describe()
    assert "40 scenes" in text and "train 32" in text and "15 concepts" in text


def test_collate(scenes):
    batch = next(iter(DataLoader(scenes, batch_size=5, collate_fn=collate)))
    assert batch["image"].shape == (5, 3, 32, 32) and batch["masks"].shape == (5, 15, 32, 32)
    assert batch["id"].tolist() == [0, 1, 2, 3, 4] and len(batch["scene"]) == 5


# ---------------------------------------------------------------------------------------------------------
# The folder layout
# ---------------------------------------------------------------------------------------------------------
def _same(a, b):
    assert set(a) == set(b)
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("with_images", [True, False])
def test_round_trip(scenes, tmp_path, with_images):
    folder = write_drawing(scenes, tmp_path / "drawing", with_images=with_images, show_progress=False)
    assert (folder / "name_list_train.txt").read_text().split() == [str(i) for i in range(32)]
    assert (folder / "name_list_test.txt").read_text().split() == ["36", "37", "38", "39"]
    assert (folder / "text" / "3.txt").read_text().splitlines() == scenes[3]["captions"]
    assert (folder / "images" / "3.png").exists() == with_images
    mask = np.asarray(Image.open(folder / "masks" / "3.png"))
    assert mask.dtype == np.uint8 and np.array_equal(mask, scenes[3]["ids"].numpy() + 1)
    assert json.loads((folder / "world.json").read_text())["seed"] == 5
    data = read_drawing(folder)
    assert len(data) == 40
    for k in (0, 3, 33, 39):
        _same(scenes[k], data[k])
    assert ("40 regenerated" in data.describe()) != with_images


def test_regenerates_from_world_and_ids_alone(scenes, tmp_path):
    folder = write_drawing(scenes, tmp_path / "d", with_images=False, show_progress=False)
    for sub in ("masks", "scenes"):
        for path in (folder / sub).iterdir():
            path.unlink()
    data = read_drawing(folder)
    for k in (1, 20):
        _same(scenes[k], data[k])  # image, ids, masks, scene all rebuilt from the id


def test_world_mismatch_is_detected(scenes, tmp_path):
    folder = write_drawing(scenes, tmp_path / "d", with_images=False, show_progress=False)
    world = json.loads((folder / "world.json").read_text())
    (folder / "world.json").write_text(json.dumps({**world, "seed": 6}))
    with pytest.raises(FormatError, match="world.json.*does not regenerate"):
        read_drawing(folder)
    (folder / "world.json").write_text(json.dumps({**world, "size": 7}))
    with pytest.raises(FormatError, match="size must be"):
        read_drawing(folder)


def test_real_folder_with_audio(tmp_path):
    """The paper's layout: name lists, audio/{id}.wav, images/{id}.jpg, optional text, no masks."""
    folder = tmp_path / "real"
    (folder / "audio").mkdir(parents=True)
    (folder / "images").mkdir()
    (folder / "text").mkdir()
    (folder / "name_list_train.txt").write_text("a01\na02\n")
    (folder / "name_list_test.txt").write_text("a03\n")
    for name in ("a01", "a02", "a03"):
        (folder / "audio" / f"{name}.wav").write_bytes(b"RIFF....WAVEfmt ")
        Image.fromarray(np.full((128, 128, 3), 90, dtype=np.uint8)).save(folder / "images" / f"{name}.jpg")
    (folder / "text" / "a01.txt").write_text("a red cube and a blue sphere\n")
    data = read_drawing(folder)
    assert len(data) == 3 and data.indices("test") == [2]
    first, second = data[0], data[1]
    assert first["audio"].endswith("audio/a01.wav") and first["transcript"] == "a red cube and a blue sphere"
    assert second["captions"] == [] and second["transcript"] is None
    assert second["ids"] is None and second["masks"] is None and second["scene"] is None
    assert first["image"].shape == (3, 128, 128) and first["id"] == "a01"
    assert "3 audio files" in data.describe()
    copy = write_drawing(data, tmp_path / "copy", show_progress=False)
    assert (copy / "audio" / "a02.wav").read_bytes() == b"RIFF....WAVEfmt "
    assert read_drawing(copy)[0]["transcript"] == "a red cube and a blue sphere"
    with pytest.raises(ValueError):
        write_drawing(data, tmp_path / "no_images", with_images=False, show_progress=False)


def test_malformed_folders(scenes, tmp_path):
    with pytest.raises(FormatError, match="no name list"):
        read_drawing(tmp_path)
    folder = write_drawing(scenes, tmp_path / "d", with_images=False, show_progress=False)
    (folder / "world.json").unlink()
    with pytest.raises(FormatError, match="no world.json to regenerate"):
        read_drawing(folder)
    folder = write_drawing(scenes, tmp_path / "e", show_progress=False)
    (folder / "name_list_val.txt").write_text("3\n")
    with pytest.raises(FormatError, match="name_list_val.txt: sample id '3' is also listed in name_list_train"):
        read_drawing(folder)
    folder = write_drawing(scenes, tmp_path / "f", show_progress=False)
    (folder / "text" / "5.txt").unlink()
    with pytest.raises(FormatError, match="sample '5' has neither text"):
        read_drawing(folder)
