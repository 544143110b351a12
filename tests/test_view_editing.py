"""Iterative editing dialogues (i-CLEVR view) and the i-CLEVR HDF5 format."""
from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tutorlib.formats import FormatError, read_iclevr, write_iclevr
from tutorlib.world import ENTITIES, Oracle, Scene, render
from tutorlib.world.scene import FAR, NEAR
from tutorlib.world.views import EditingDialogues, collate

# The instruction grammar, parsed independently of the generator.
INSTRUCTION = re.compile(
    r"^add a (?:(?P<size>small|large) )?(?P<color>\w+) (?:(?P<material>rubber|metal) )?(?P<shape>cube|sphere|cylinder) "
    r"(?:(?P<region>at the center|on the left|on the right|in the front|in the back"
    r"|in the (?:front|back) (?:left|right))"
    r"|(?P<depth>behind|in front of) (?P<ref>it|the \w+ \w+) on the (?P<lateral>left|right))$"
)


@pytest.fixture(scope="module")
def dialogues():
    return EditingDialogues(24, size=32, seed=3, progress=False)


def test_item_layout(dialogues):
    item = dialogues[0]
    assert item["images"].shape == (5, 3, 32, 32) and item["images"].dtype == torch.uint8
    assert item["background"].shape == (3, 32, 32) and item["background"].dtype == torch.uint8
    assert len(item["instructions"]) == 5 and all(isinstance(t, str) for t in item["instructions"])
    assert item["objects"].shape == (5, 24) and item["objects"].dtype == torch.float32
    assert item["coords"].shape == (5, 24, 3) and item["coords"].dtype == torch.float32
    assert item["scene_id"] == "000000"
    assert len(item["scenes"]) == 5 and all(isinstance(s, Scene) for s in item["scenes"])
    assert len(dialogues) == 24
    with pytest.raises(IndexError):
        dialogues[24]


def test_same_seed_same_dialogues_and_items_do_not_depend_on_n(dialogues):
    again = EditingDialogues(5, size=32, seed=3, progress=False)
    for i in range(5):
        assert again[i]["instructions"] == dialogues[i]["instructions"]
        assert torch.equal(again[i]["images"], dialogues[i]["images"])
    other = EditingDialogues(5, size=32, seed=4, progress=False)
    assert [other[i]["instructions"] for i in range(5)] != [dialogues[i]["instructions"] for i in range(5)]


def test_every_instruction_is_true_of_its_scene(dialogues):
    kinds = set()
    for item in dialogues:
        for t, (text, scene) in enumerate(zip(item["instructions"], item["scenes"])):
            match = INSTRUCTION.match(text)
            assert match, text
            assert len(scene) == t + 1
            new = scene.objects[t]
            assert (new.color, new.shape) == (match["color"], match["shape"])
            assert new.size == "large" and new.material == "rubber"
            if t == 0:
                assert match["region"], text
                region = match["region"]
                lateral = np.sign(new.x)
                depth_fraction = (new.depth - NEAR) / (FAR - NEAR)
                if "left" in region:
                    assert lateral < 0
                elif "right" in region:
                    assert lateral > 0
                if "back" in region:
                    assert depth_fraction > 2 / 3
                elif "front" in region:
                    assert depth_fraction < 1 / 3
                else:
                    assert 1 / 3 < depth_fraction < 2 / 3
                if region in ("at the center", "in the front", "in the back"):
                    assert abs(scene.screen()[0, 0] - 0.5) < 0.2
                kinds.add("region")
                continue
            assert match["depth"] and match["ref"], text
            if match["ref"] == "it":
                ref = t - 1
                kinds.add("it")
            else:
                color, shape = match["ref"].split()[1:]
                matches = Oracle(scene).select(color=color, shape=shape)
                assert len(matches) == 1, f"{text}: the reference must name one object"
                ref = matches[0]
                assert ref < t
                kinds.add("named")
            depth = "front" if match["depth"] == "in front of" else "behind"
            assert scene.related(t, depth, ref), text
            assert scene.related(t, match["lateral"], ref), text
            # ... and the picture agrees: the image column moves the same way.
            u = scene.screen()[:, 0]
            assert (u[t] < u[ref]) == (match["lateral"] == "left")
    assert kinds == {"region", "it", "named"}


def test_entities_are_distinct_and_bags_cumulative(dialogues):
    for item in dialogues:
        final = item["scenes"][-1]
        entities = [f"{o.shape} {o.color}" for o in final.objects]
        assert len(set(entities)) == 5
        objects, coords = item["objects"].numpy(), item["coords"].numpy()
        for t, scene in enumerate(item["scenes"]):
            assert objects[t].sum() == t + 1
            assert scene.objects == final.objects[: t + 1]
            present = {ENTITIES[e] for e in np.flatnonzero(objects[t])}
            assert present == set(entities[: t + 1])
            assert np.all((coords[t] != 0).any(axis=1) == (objects[t] == 1))
            screen = scene.screen()
            for k, obj in enumerate(scene.objects):
                e = ENTITIES.index(f"{obj.shape} {obj.color}")
                np.testing.assert_allclose(coords[t, e], [screen[k, 0] * 128, screen[k, 1] * 128, obj.depth], rtol=1e-5)
        assert np.all(np.diff(objects, axis=0) >= 0)


def test_images_are_renderings_of_the_scenes(dialogues):
    item = dialogues[2]
    assert torch.equal(item["images"], render(item["scenes"], 32).images)
    assert torch.equal(item["background"], render(Scene(), 32).images[0])


def test_options_and_restarts_keep_instructions_true():
    # Six large objects crowd the floor: many dialogues need a fresh stream, none may lie.
    crowded = EditingDialogues(6, size=32, seed=1, turns=6, progress=False)
    varied = EditingDialogues(6, size=32, seed=1, sizes=("small", "large"), materials=("rubber", "metal"),
                              progress=False)
    for data in (crowded, varied):
        for item in data:
            for t, (text, scene) in enumerate(zip(item["instructions"], item["scenes"])):
                match = INSTRUCTION.match(text)
                assert match, text
                new = scene.objects[t]
                if data is varied:
                    assert (match["size"], match["material"]) == (new.size, new.material)
                if t and match["ref"] != "it":
                    ref = Oracle(scene).select(color=match["ref"].split()[1], shape=match["ref"].split()[2])[0]
                elif t:
                    ref = t - 1
                if t:
                    depth = "front" if match["depth"] == "in front of" else "behind"
                    assert scene.related(t, depth, ref) and scene.related(t, match["lateral"], ref)
    assert "restart" in crowded.describe()
    with pytest.raises(ValueError):
        EditingDialogues(1, turns=4, shapes=("cube",), colors=("red", "blue", "green"), progress=False)
    with pytest.raises(ValueError):
        EditingDialogues(1, sizes=("huge",), progress=False)


def test_collate_with_a_dataloader(dialogues):
    batch = next(iter(DataLoader(dialogues, batch_size=4, collate_fn=collate)))
    assert batch["images"].shape == (4, 5, 3, 32, 32)
    assert batch["objects"].shape == (4, 5, 24)
    assert len(batch["instructions"]) == 4 and len(batch["scenes"]) == 4
    assert batch["scene_id"] == ["000000", "000001", "000002", "000003"]


def test_describe_and_repr(dialogues):
    text = dialogues.describe()
    assert "24 dialogues" in text and "5 turns" in text
    assert "EditingDialogues(n=24" in repr(dialogues)


# ---------------------------------------------------------------------------------------------------------
# The HDF5 format
# ---------------------------------------------------------------------------------------------------------
def test_round_trip_keeps_items_and_ground_truth(dialogues, tmp_path):
    path = write_iclevr(dialogues, tmp_path / "clevr_train.h5", show_progress=False)
    data = read_iclevr(path)
    assert len(data) == len(dialogues) and data.entities == ENTITIES
    for i in (0, 7, 23):
        a, b = dialogues[i], data[i]
        assert set(a) == set(b)
        for key in ("images", "background", "objects", "coords"):
            assert torch.equal(a[key], b[key]), key
        assert a["instructions"] == b["instructions"] and a["scene_id"] == b["scene_id"]
        assert a["scenes"] == b["scenes"] and a["edits"] == b["edits"]
    with pytest.raises(FileExistsError):
        write_iclevr(dialogues, path, show_progress=False)
    write_iclevr(dialogues, path, overwrite=True, show_progress=False)


def test_file_is_bgr_and_laid_out_as_geneva(dialogues, tmp_path):
    path = write_iclevr(dialogues, tmp_path / "d.h5", show_progress=False)
    with h5py.File(path, "r") as f:
        assert json.loads(f["entities"][()]) == list(ENTITIES)
        assert f["background"].shape == (32, 32, 3)
        group = f["000001"]
        assert group["images"].shape == (5, 32, 32, 3) and group["images"].dtype == np.uint8
        rgb = dialogues[1]["images"].numpy().transpose(0, 2, 3, 1)
        assert np.array_equal(group["images"][()], rgb[..., ::-1])
        assert json.loads(group["text"][()]) == dialogues[1]["instructions"]
        assert group["objects"].shape == (5, 24) and group["coords"].shape == (5, 24, 3)


def _real_like_file(path, size=128, dialogues=4, background_size=None, entities=ENTITIES):
    """A file as GeNeVA writes it: no ground-truth attributes, 128 px, digit keys, bytes strings."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        b = background_size or size
        f.create_dataset("background", data=rng.integers(0, 255, (b, b, 3), dtype=np.uint8))
        f.create_dataset("entities", data=json.dumps(list(entities)).encode())
        for i in range(dialogues):
            g = f.create_group(str(i))
            g.create_dataset("images", data=rng.integers(0, 255, (5, size, size, 3), dtype=np.uint8))
            g.create_dataset("text", data=json.dumps([f"add a red cube turn {t}" for t in range(5)]).encode())
            objects = np.zeros((5, 24), dtype=np.float32)
            objects[np.arange(5), np.arange(5)] = 1
            g.create_dataset("objects", data=np.maximum.accumulate(objects, axis=0))
            g.create_dataset("coords", data=rng.random((5, 24, 3)).astype(np.float32))
            g.create_dataset("scene_id", data=f"CLEVR_{i}".encode())
    return path


def test_reads_real_like_files_of_any_size(tmp_path):
    data = read_iclevr(_real_like_file(tmp_path / "real.h5", size=128, background_size=100))
    item = data[1]
    assert item["images"].shape == (5, 3, 128, 128)
    assert item["background"].shape == (3, 128, 128)  # resized to the images' size
    assert item["scenes"] is None and item["edits"] is None
    assert item["scene_id"] == "CLEVR_1"
    with h5py.File(tmp_path / "real.h5", "r") as f:
        assert np.array_equal(item["images"].numpy().transpose(0, 2, 3, 1), f["1"]["images"][()][..., ::-1])
    assert "128x128" in data.describe()


def test_entity_columns_follow_world_order(tmp_path):
    shuffled = list(reversed(ENTITIES))
    data = read_iclevr(_real_like_file(tmp_path / "r.h5", size=32, entities=shuffled))
    with h5py.File(tmp_path / "r.h5", "r") as f:
        raw = f["0"]["objects"][()]
    assert data.entities == ENTITIES
    for column, name in enumerate(ENTITIES):
        assert np.array_equal(data[0]["objects"][:, column].numpy(), raw[:, shuffled.index(name)])


def test_share_keeps_the_first_keys(dialogues, tmp_path):
    path = write_iclevr(dialogues, tmp_path / "d.h5", show_progress=False)
    half = read_iclevr(path, share=0.5)
    assert len(half) == 12 and half.keys == [f"{i:06d}" for i in range(12)]
    assert half[11]["instructions"] == dialogues[11]["instructions"]
    with pytest.raises(ValueError):
        read_iclevr(path, share=0)


def test_malformed_files_raise_format_errors(dialogues, tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(FormatError, match="notes.h5.*not an HDF5 file"):
        read_iclevr(text)
    with pytest.raises(FormatError, match="file not found"):
        read_iclevr(tmp_path / "missing.h5")

    def broken(name, edit):
        path = _real_like_file(tmp_path / name, size=32)
        with h5py.File(path, "a") as f:
            edit(f)
        return path

    with pytest.raises(FormatError, match="no_entities.h5.*'entities'"):
        read_iclevr(broken("no_entities.h5", lambda f: f.__delitem__("entities")))
    with pytest.raises(FormatError, match="group '2' lacks 'coords'"):
        read_iclevr(broken("no_coords.h5", lambda f: f["2"].__delitem__("coords")))

    def wrong_objects(f):
        del f["3"]["objects"]
        f["3"].create_dataset("objects", data=np.zeros((5, 23), dtype=np.float32))

    with pytest.raises(FormatError, match=r"group '3': 'objects' must be \(5, 24\)"):
        read_iclevr(broken("objects.h5", wrong_objects))

    def rgb_planes(f):
        del f["0"]["images"]
        f["0"].create_dataset("images", data=np.zeros((5, 3, 32, 32), dtype=np.uint8))

    with pytest.raises(FormatError, match="'images' must be"):
        read_iclevr(broken("planes.h5", rgb_planes))

    def bad_text(f):
        del f["1"]["text"]
        f["1"].create_dataset("text", data="add a red cube")

    data = read_iclevr(broken("text.h5", bad_text))
    with pytest.raises(FormatError, match="text.h5.*group '1' 'text' is not a JSON string"):
        data[1]


def test_file_dataset_works_with_worker_processes(dialogues, tmp_path):
    data = read_iclevr(write_iclevr(dialogues, tmp_path / "d.h5", show_progress=False))
    data[0]  # opens the file in this process; workers must reopen their own handle
    loader = DataLoader(data, batch_size=6, num_workers=2, collate_fn=collate)
    batches = list(loader)
    assert sum(len(b["scene_id"]) for b in batches) == 24
    assert torch.equal(batches[1]["images"][0], dialogues[6]["images"])
    data.close()
