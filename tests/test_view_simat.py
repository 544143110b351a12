"""SIMAT view: two-object triplet scenes, transformation queries, and the SIMAT folder format."""
from __future__ import annotations

import csv
from collections import Counter

import pytest
import torch

from tutorlib.formats import FormatError, read_simat, write_simat
from tutorlib.world import RELATIONS, render, relation_caption
from tutorlib.world.views import SimatDatabase, Transformation, phrase_filter
from tutorlib.world.views.simat import DEFAULT_OBJECTS, DEFAULT_SUBJECTS, FIELDS


@pytest.fixture(scope="module")
def db():
    return SimatDatabase(432, size=32, seed=2, progress=False)  # 3 images per default triplet


def test_defaults_give_every_caption_several_images(db):
    assert len(DEFAULT_SUBJECTS) == 6 and len(DEFAULT_OBJECTS) == 6
    assert len(set(db.triplets)) == 6 * 4 * 6 == len(db.captions)
    assert set(Counter(db.triplets).values()) == {3}
    assert "432 images" in db.describe() and "144 triplets" in db.describe()


def test_scenes_show_their_triplet(db):
    for k in range(len(db)):
        item = db[k]
        subj, rel, obj = item["triplet"]
        scene = item["scene"]
        assert len(scene) == 2
        assert scene.objects[0].matches(**phrase_filter(subj)) and scene.objects[1].matches(**phrase_filter(obj))
        assert scene.related(0, rel, 1)
        assert db.holds(k, item["triplet"])
        assert item["caption"] == relation_caption(subj, rel, obj)
        assert item["dataset_id"] == k and item["region_id"] != item["dataset_id"]
    sizes = {o.size for s in db.scenes for o in s.objects}
    materials = {o.material for s in db.scenes for o in s.objects}
    assert sizes == {"small", "large"} and materials == {"rubber", "metal"}


def test_images_are_renderings(db):
    assert torch.equal(db.images[:8], render(db.scenes[:8], 32).images)
    assert db[3]["image"].shape == (3, 32, 32) and db[3]["image"].dtype == torch.uint8


def test_transformations(db):
    rows = db.transformations
    values = {"subj": DEFAULT_SUBJECTS, "rel": RELATIONS, "obj": DEFAULT_OBJECTS}
    # Every image, every field, every other value (all targets have images here): 5 + 3 + 5 rows.
    assert len(rows) == len(db) * 13
    counts = Counter(r.value for r in rows)
    for r in rows[:500]:
        source = db.triplets[db.position(region_id=r.region_id)]
        k = FIELDS.index(r.field)
        assert source[k] == r.value and r.target != r.value and r.target in values[r.field]
        target = list(source)
        target[k] = r.target
        assert db.captions[r.query_ids] == relation_caption(*source)
        assert db.captions[r.target_ids] == relation_caption(*target)
        assert r.norm2 == counts[r.value]
        assert r.weight == pytest.approx(counts[r.value] ** -0.5)


def test_targets_without_images_are_left_out():
    small = SimatDatabase(20, size=32, progress=False)  # 20 of 144 triplets have an image
    present = set(small.triplets)
    assert len(small.captions) == len(present)
    for r in small.transformations:
        source = small.triplets[small.position(region_id=r.region_id)]
        target = tuple(r.target if f == r.field else v for f, v in zip(FIELDS, source))
        assert target in present
    assert all(small.caption_of(t) == relation_caption(*t) for t in present)


def test_split_by_source_image(db):
    dev, test = db.split("dev"), db.split("test")
    assert len(dev) + len(test) == len(db.transformations)
    test_images = {r.region_id for r in test}
    assert not test_images & {r.region_id for r in dev}
    assert len(test_images) == round(0.5 * len(db))
    again = SimatDatabase(432, size=32, seed=2, progress=False)
    assert again.transformations == db.transformations
    custom = SimatDatabase(40, size=32, test_share=0.25, progress=False)
    assert len({r.region_id for r in custom.split("test")}) == 10
    with pytest.raises(ValueError):
        db.split("train")


def test_custom_vocabulary_and_validation():
    custom = SimatDatabase(16, size=32, subjects=["small cube", "large cube"], objects=["gray sphere"],
                           relations=["left", "right"], progress=False)
    assert len(set(custom.triplets)) == 4
    for k, (subj, rel, _) in enumerate(custom.triplets):
        assert custom.scenes[k].objects[0].size == subj.split()[0]
        assert custom.scenes[k].related(0, rel, 1)
    with pytest.raises(ValueError):
        SimatDatabase(4, subjects=["red dragon"], progress=False)
    with pytest.raises(ValueError):
        SimatDatabase(4, relations=["above"], progress=False)


# ---------------------------------------------------------------------------------------------------------
# The folder format
# ---------------------------------------------------------------------------------------------------------
def test_round_trip(db, tmp_path):
    folder = write_simat(db, tmp_path / "simat_db", show_progress=False)
    for name in ("triplets.csv", "captions.txt", "transfos.csv", "scenes.json", "images/0.png"):
        assert (folder / name).is_file(), name
    with open(folder / "triplets.csv", newline="") as f:
        assert next(csv.reader(f)) == ["region_id", "subj", "rel", "obj", "dataset_id"]
    with open(folder / "transfos.csv", newline="") as f:
        assert next(csv.reader(f)) == ["region_id", "field", "value", "target", "query_ids", "target_ids",
                                       "norm2", "is_test"]
    assert (folder / "captions.txt").read_text().splitlines() == db.captions
    back = read_simat(folder)
    assert back.transformations == db.transformations
    assert back.triplets == db.triplets and back.captions == db.captions
    assert back.region_ids == db.region_ids and back.dataset_ids == db.dataset_ids
    assert back.caption_ids == db.caption_ids
    assert back.scenes == db.scenes
    assert torch.equal(back.images, db.images)
    assert back[5]["caption"] == db[5]["caption"]
    assert len(back.split("test")) == len(db.split("test"))
    assert back.holds(5, db.triplets[5])


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_reads_the_real_layout(tmp_path):
    """The release's transfos.csv has a pandas index and extra columns; images sit in caption folders."""
    folder = tmp_path / "real"
    folder.mkdir()
    _write(folder / "triplets.csv", ["region_id", "subj", "rel", "obj", "dataset_id"],
           [[19583, "bear", "laying in", "wall", 1], [119071, "bear", "laying in", "bed", 0]])
    (folder / "captions.txt").write_text("A bear laying against a wall.\nA bear laying in a bed.\n")
    _write(folder / "transfos.csv",
           ["", "transfo_id", "region_id", "field", "value", "target", "norm", "query_ids", "target_ids",
            "dataset_id", "norm2", "is_test"],
           [[3, 3, 19583, "obj", "wall", "bed", 26, 0, 1, 1, 220, "True"],
            [4, 4, 119071, "obj", "bed", "wall", 26, 1, 0, 0, 220.0, "False"]])
    (folder / "images" / "A bear laying in wall").mkdir(parents=True)
    from tutorlib.formats import write_image

    grey = torch.full((3, 20, 30), 200, dtype=torch.uint8)
    write_image(folder / "images" / "A bear laying in wall" / "19583.jpg", grey)
    data = read_simat(folder)
    assert data.dataset_ids == [0, 1] and data.region_ids == [119071, 19583]
    assert data.dataset_id_of(19583) == 1
    assert data.transformations[0] == Transformation(19583, "obj", "wall", "bed", 0, 1, 220, True)
    assert data.split("dev")[0].norm2 == 220
    assert data.caption_of(("bear", "laying in", "bed")) == "A bear laying in a bed."
    assert data[1]["image"].shape == (3, 20, 30) and data[1]["scene"] is None
    assert data.holds(1, ("bear", "laying in", "wall")) is None
    with pytest.raises(FormatError, match="no image for dataset_id 0"):
        data[0]


@pytest.mark.parametrize(
    "file, edit, message",
    [
        ("triplets.csv", lambda rows: [r[:4] for r in rows], "triplets.csv: missing columns \\['dataset_id'\\]"),
        ("triplets.csv", lambda rows: rows[:1] + [["x"] + rows[1][1:]] + rows[2:],
         "line 2: region_id must be an integer"),
        ("transfos.csv", lambda rows: rows[:1] + [rows[1][:1] + ["colour"] + rows[1][2:]] + rows[2:],
         "transfos.csv: line 2: field must be one of"),
        ("transfos.csv", lambda rows: rows[:1] + [rows[1][:4] + ["9999"] + rows[1][5:]] + rows[2:],
         "line 2: query_ids 9999 is not a line of captions.txt"),
        ("transfos.csv", lambda rows: rows[:1] + [rows[1][:7] + ["yes"]] + rows[2:], "is_test must be True or False"),
        ("transfos.csv", lambda rows: rows[:1] + [["1"] + rows[1][1:]] + rows[2:],
         "region_id 1 is not in triplets.csv"),
    ],
)
def test_malformed_folders_raise_format_errors(tmp_path, file, edit, message):
    small = SimatDatabase(12, size=32, progress=False)
    folder = write_simat(small, tmp_path / "db", show_progress=False)
    with open(folder / file, newline="") as f:
        rows = list(csv.reader(f))
    with open(folder / file, "w", newline="") as f:
        csv.writer(f).writerows(edit(rows))
    with pytest.raises(FormatError, match=message):
        read_simat(folder)


def test_missing_files_raise_format_errors(tmp_path):
    small = SimatDatabase(12, size=32, progress=False)
    folder = write_simat(small, tmp_path / "db", show_progress=False, with_images=False)
    assert read_simat(folder)[0]["image"] is None
    (folder / "captions.txt").unlink()
    with pytest.raises(FormatError, match="captions.txt: file not found"):
        read_simat(folder)
    with pytest.raises(FormatError, match="folder not found"):
        read_simat(tmp_path / "nowhere")
