"""Fuzzing the five readers: valid files written by the library, corrupted in many ways, must raise a FormatError
whose message names the corrupted file, never a raw exception and never a silent result.

Each case copies a pristine dataset, applies one corruption (a function of the dataset root that returns the
corrupted file) and reads everything (open, every item, and SIMAT's stacked images). Corruptions that
leave a valid dataset (a shorter name list, a missing optional file) are not cases. Deterministic: byte
positions come from a generator seeded by the case name.
"""
from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from tutorlib.formats import FormatError
from tests.format_samples import READERS

Corruption = Callable[[Path], Path]


# ---------------------------------------------------------------------------------------------------------
# Corruptions of any file: each takes the dataset root and returns the corrupted file.
# ---------------------------------------------------------------------------------------------------------
def _rng(*names: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32("/".join(names).encode()))


def empty(rel: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        (root / rel).write_bytes(b"")
        return root / rel
    return corrupt


def truncate(rel: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(data[: len(data) // 2])
        return root / rel
    return corrupt


def flip_byte(rel: str, start: int, end: int) -> Corruption:
    """XOR one byte at a seeded position in [start, end) of the file (a header region where every byte matters)."""
    def corrupt(root: Path) -> Path:
        data = bytearray((root / rel).read_bytes())
        position = int(_rng(rel, "flip").integers(start, min(end, len(data))))
        data[position] ^= 0x5A
        (root / rel).write_bytes(bytes(data))
        return root / rel
    return corrupt


def not_utf8(rel: str) -> Corruption:
    """A byte that no UTF-8 text holds (0xFF), at a seeded position."""
    def corrupt(root: Path) -> Path:
        data = bytearray((root / rel).read_bytes())
        data[int(_rng(rel, "utf8").integers(0, len(data)))] = 0xFF
        (root / rel).write_bytes(bytes(data))
        return root / rel
    return corrupt


def delete(rel: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        (root / rel).unlink()
        return root / rel
    return corrupt


def folder_instead(rel: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        (root / rel).unlink()
        (root / rel).mkdir()
        return root / rel
    return corrupt


def edit_json(rel: str, change: Callable) -> Corruption:
    """Load the JSON file, let `change(data)` modify it (or return a replacement), write it back (NaN allowed)."""
    def corrupt(root: Path) -> Path:
        data = json.loads((root / rel).read_text())
        replaced = change(data)
        (root / rel).write_text(json.dumps(data if replaced is None else replaced))
        return root / rel
    return corrupt


def write_text(rel: str, text: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        (root / rel).write_text(text, encoding="utf-8")
        return root / rel
    return corrupt


def replace_text(rel: str, old: str, new: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        text = (root / rel).read_text()
        assert old in text, (rel, old)
        (root / rel).write_text(text.replace(old, new, 1))
        return root / rel
    return corrupt


def image_as(rel: str, array: np.ndarray, image_format: str = "PNG") -> Corruption:
    """Replace an image by `array`, written in `image_format` under the same name."""
    def corrupt(root: Path) -> Path:
        Image.fromarray(array).save(root / rel, format=image_format)
        return root / rel
    return corrupt


def resized(rel: str) -> Corruption:
    """The same image 8 pixels wider: another size than the dataset's."""
    def corrupt(root: Path) -> Path:
        with Image.open(root / rel) as image:
            image.resize((image.width + 8, image.height)).save(root / rel)
        return root / rel
    return corrupt


def file_cases(rel: str, kind: str, required: bool = True, may_be_empty: bool = False) -> dict[str, Corruption]:
    """The generic corruptions of one file of `kind` ("json", "csv", "text", "png"): deletion only if the file is
    required, emptying only if an empty file is not valid."""
    cases = {"folder": folder_instead(rel)}
    if not may_be_empty:
        cases["empty"] = empty(rel)
    if required:
        cases["deleted"] = delete(rel)
    if kind in ("json", "csv", "text"):
        cases["not utf-8"] = not_utf8(rel)
    if kind == "json":
        cases["truncated"] = truncate(rel)
    if kind == "png":
        cases.update({
            "truncated": truncate(rel),
            "flipped header byte": flip_byte(rel, 0, 33),  # signature, IHDR and its CRC
            "wrong size": resized(rel),
            "float pixels": image_as(rel, np.full((32, 32), 0.5, dtype=np.float32), "TIFF"),
            "32-bit pixels": image_as(rel, np.full((32, 32), 2**20, dtype=np.int32), "TIFF"),
        })
    return {f"{rel} {name}": corrupt for name, corrupt in cases.items()}


# ---------------------------------------------------------------------------------------------------------
# i-CLEVR: one HDF5 file.
# ---------------------------------------------------------------------------------------------------------
def h5_edit(change: Callable[[h5py.File], None]) -> Corruption:
    def corrupt(root: Path) -> Path:
        with h5py.File(root, "a") as f:
            change(f)
        return root
    return corrupt


def h5_replace(group: str, name: str, data) -> Corruption:
    def change(f: h5py.File) -> None:
        del f[group][name]
        f[group].create_dataset(name, data=data)
    return h5_edit(change)


def h5_attr(group: str, name: str, value) -> Corruption:
    return h5_edit(lambda f: f[group].attrs.__setitem__(name, value))


def h5_scene_edit(change: Callable[[dict], None]) -> Corruption:
    def edit(f: h5py.File) -> None:
        scenes = json.loads(f["000001"].attrs["scenes"])
        change(scenes[1])
        f["000001"].attrs["scenes"] = json.dumps(scenes)
    return h5_edit(edit)


def h5_zero_chunk(root: Path) -> Path:
    with h5py.File(root, "r") as f:
        chunk = f["000002"]["images"].id.get_chunk_info(0)
    data = bytearray(root.read_bytes())
    middle = chunk.byte_offset + chunk.size // 2
    data[middle : middle + 16] = bytes(16)
    root.write_bytes(bytes(data))
    return root


def _del(f: h5py.File, *path: str) -> None:
    node = f
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


ICLEVR = {
    "file empty": lambda root: (root.write_bytes(b""), root)[1],
    "file truncated": lambda root: (root.write_bytes(root.read_bytes()[: root.stat().st_size // 2]), root)[1],
    "file deleted": lambda root: (root.unlink(), root)[1],
    "file is a folder": lambda root: (root.unlink(), root.mkdir(), root)[2],
    "superblock byte flipped": flip_byte("", 0, 8),
    "compressed chunk damaged": h5_zero_chunk,
    "entities missing": h5_edit(lambda f: _del(f, "entities")),
    "entities not JSON": h5_replace("/", "entities", "cube red, cube blue"),
    "entities not a list": h5_replace("/", "entities", json.dumps({"cube": "red"})),
    "background missing": h5_edit(lambda f: _del(f, "background")),
    "background grey": h5_replace("/", "background", np.zeros((32, 32), dtype=np.uint8)),
    "no dialogue group": h5_edit(lambda f: [_del(f, k) for k in [k for k in f if isinstance(f[k], h5py.Group)]]),
    "group lacks text": h5_edit(lambda f: _del(f, "000001", "text")),
    "images 16-bit": h5_replace("000001", "images", np.zeros((2, 32, 32, 3), dtype=np.uint16)),
    "images of another size": h5_replace("000001", "images", np.zeros((2, 40, 40, 3), dtype=np.uint8)),
    "images is a group": h5_edit(lambda f: (_del(f, "000001", "images"), f["000001"].create_group("images"))),
    "objects as strings": h5_replace("000001", "objects", np.full((2, 24), b"1")),
    "objects wrong shape": h5_replace("000001", "objects", np.zeros((2, 23), dtype=np.float32)),
    "objects not a bag": h5_edit(lambda f: f["000001"]["objects"].__setitem__((0, 0), 3.0)),
    "coords NaN": h5_edit(lambda f: f["000001"]["coords"].__setitem__((1, 2, 0), np.nan)),
    "coords infinite": h5_edit(lambda f: f["000001"]["coords"].__setitem__((0, 0, 2), np.inf)),
    "text not JSON": h5_replace("000001", "text", "add a red cube"),
    "text not a list of strings": h5_replace("000001", "text", json.dumps([1, 2])),
    "text one turn short": h5_replace("000001", "text", json.dumps(["add a red cube"])),
    "scene_id not a string": h5_replace("000001", "scene_id", np.zeros(3, dtype=np.float32)),
    "edits not JSON": h5_attr("000001", "edits", "{turn 1: add"),
    "edits one turn short": h5_attr("000001", "edits", json.dumps([{"entity": "cube red"}])),
    "scenes not JSON": h5_attr("000001", "scenes", "[{"),
    "scenes with NaN position": h5_scene_edit(lambda s: s["objects"][0].__setitem__("x", float("nan"))),
    "scenes with an unknown colour": h5_scene_edit(lambda s: s["objects"][0].__setitem__("color", "chartreuse")),
    "scenes without objects": h5_scene_edit(lambda s: s.pop("objects")),
}


# ---------------------------------------------------------------------------------------------------------
# SIMAT: triplets.csv, captions.txt, transfos.csv, scenes.json, images/.
# ---------------------------------------------------------------------------------------------------------
def csv_cell(rel: str, line: int, column: str, value: str) -> Corruption:
    """Set one cell (line 1 is the header) of a CSV file."""
    def corrupt(root: Path) -> Path:
        rows = [row.split(",") for row in (root / rel).read_text().splitlines()]
        rows[line - 1][rows[0].index(column)] = value
        (root / rel).write_text("".join(",".join(row) + "\n" for row in rows))
        return root / rel
    return corrupt


def csv_drop_column(rel: str, column: str) -> Corruption:
    def corrupt(root: Path) -> Path:
        rows = [row.split(",") for row in (root / rel).read_text().splitlines()]
        k = rows[0].index(column)
        (root / rel).write_text("".join(",".join(row[:k] + row[k + 1:]) + "\n" for row in rows))
        return root / rel
    return corrupt


def csv_short_row(rel: str) -> Corruption:
    """The last row cut after its first field."""
    def corrupt(root: Path) -> Path:
        lines = (root / rel).read_text().splitlines()
        lines[-1] = lines[-1].split(",")[0]
        (root / rel).write_text("\n".join(lines) + "\n")
        return root / rel
    return corrupt


def csv_duplicate_row(rel: str, column: str) -> Corruption:
    """Row 3 repeats row 2's value of `column`."""
    def corrupt(root: Path) -> Path:
        rows = [row.split(",") for row in (root / rel).read_text().splitlines()]
        k = rows[0].index(column)
        rows[2][k] = rows[1][k]
        (root / rel).write_text("".join(",".join(row) + "\n" for row in rows))
        return root / rel
    return corrupt


SIMAT = {
    **file_cases("triplets.csv", "csv"),
    **file_cases("transfos.csv", "csv"),
    **file_cases("captions.txt", "text"),
    **file_cases("scenes.json", "json", required=False),
    **file_cases("images/3.png", "png"),
    "triplets.csv header only": write_text("triplets.csv", "region_id,subj,rel,obj,dataset_id\n"),
    "triplets.csv missing column": csv_drop_column("triplets.csv", "dataset_id"),
    "triplets.csv short row": csv_short_row("triplets.csv"),
    "triplets.csv region_id not a number": csv_cell("triplets.csv", 3, "region_id", "abc"),
    "triplets.csv dataset_id fractional": csv_cell("triplets.csv", 3, "dataset_id", "2.5"),
    "triplets.csv dataset_id infinite": csv_cell("triplets.csv", 3, "dataset_id", "1e400"),
    "triplets.csv empty relation": csv_cell("triplets.csv", 4, "rel", " "),
    "triplets.csv duplicate region_id": csv_duplicate_row("triplets.csv", "region_id"),
    "triplets.csv duplicate dataset_id": csv_duplicate_row("triplets.csv", "dataset_id"),
    "transfos.csv missing column": csv_drop_column("transfos.csv", "norm2"),
    "transfos.csv short row": csv_short_row("transfos.csv"),
    "transfos.csv unknown region": csv_cell("transfos.csv", 2, "region_id", "7"),
    "transfos.csv unknown field": csv_cell("transfos.csv", 2, "field", "colour"),
    "transfos.csv empty target": csv_cell("transfos.csv", 2, "target", ""),
    "transfos.csv caption id out of range": csv_cell("transfos.csv", 2, "target_ids", "999"),
    "transfos.csv negative caption id": csv_cell("transfos.csv", 2, "query_ids", "-1"),
    "transfos.csv norm2 infinite": csv_cell("transfos.csv", 2, "norm2", "inf"),
    "transfos.csv norm2 NaN": csv_cell("transfos.csv", 2, "norm2", "nan"),
    "transfos.csv norm2 zero": csv_cell("transfos.csv", 2, "norm2", "0"),
    "transfos.csv norm2 negative": csv_cell("transfos.csv", 2, "norm2", "-2"),
    "transfos.csv norm2 text": csv_cell("transfos.csv", 2, "norm2", "many"),
    "transfos.csv is_test not a boolean": csv_cell("transfos.csv", 2, "is_test", "maybe"),
    "captions.txt blank": write_text("captions.txt", "\n\n"),
    "scenes.json a list": edit_json("scenes.json", lambda scenes: list(scenes.values())),
    "scenes.json missing a scene": edit_json("scenes.json", lambda scenes: scenes.pop("5")),
    "scenes.json NaN depth": edit_json("scenes.json", lambda s: s["5"]["objects"][1].__setitem__("depth", float("nan"))),
    "scenes.json unknown shape": edit_json("scenes.json", lambda s: s["5"]["objects"][0].__setitem__("shape", "cone")),
    "scenes.json x as text": edit_json("scenes.json", lambda s: s["5"]["objects"][0].__setitem__("x", "0.1")),
    "images/0.png of another size": resized("images/0.png"),
}


# ---------------------------------------------------------------------------------------------------------
# Learning by drawing: name lists, text/, images/, masks/, scenes/, world.json.
# ---------------------------------------------------------------------------------------------------------
def without_images(then: Corruption) -> Corruption:
    """Remove images/ (every image is then regenerated from world.json), then corrupt."""
    def corrupt(root: Path) -> Path:
        shutil.rmtree(root / "images")
        return then(root)
    return corrupt


DRAWING = {
    **file_cases("name_list_train.txt", "text", required=False, may_be_empty=True),  # a split may be empty
    **file_cases("text/1.txt", "text"),
    **file_cases("images/2.png", "png", required=False),  # regenerated from world.json when absent
    **file_cases("masks/3.png", "png", required=False),
    **file_cases("scenes/0.json", "json", required=False),
    **file_cases("world.json", "json", required=False),
    "name list with a path": write_text("name_list_test.txt", "../4\n"),
    "name list repeats an id of another list": write_text("name_list_test.txt", "0\n"),
    "name list spells an id twice": write_text("name_list_val.txt", "04\n"),  # 4 is in name_list_test.txt
    "name list id beyond int64": write_text("name_list_test.txt", f"{2**64}\n"),
    "name list unicode digit id": without_images(lambda root: (write_text("text/\u0663.txt", "a cube\n")(root),
                                                               write_text("name_list_test.txt", "\u0663\n")(root))[1]),
    "text/1.txt blank": write_text("text/1.txt", "\n  \n"),
    "world.json not an object": edit_json("world.json", lambda world: [world]),
    "world.json without seed": edit_json("world.json", lambda world: world.pop("seed")),
    "world.json size too small": edit_json("world.json", lambda world: world.__setitem__("size", 8)),
    "world.json size not an integer": edit_json("world.json", lambda world: world.__setitem__("size", 32.5)),
    "world.json negative seed": edit_json("world.json", lambda world: world.__setitem__("seed", -1)),
    "world.json seed beyond int64": edit_json("world.json", lambda world: world.__setitem__("seed", 2**64)),
    "world.json too many objects": edit_json("world.json", lambda world: world.__setitem__("n_objects", [2, 11])),
    "world.json objects reversed": edit_json("world.json", lambda world: world.__setitem__("n_objects", [5, 2])),
    "world.json wrong seed": without_images(edit_json("world.json", lambda world: world.__setitem__("seed", 99))),
    "world.json deleted without images": without_images(delete("world.json")),
    "masks/3.png in colour": image_as("masks/3.png", np.zeros((32, 32, 3), dtype=np.uint8)),
    "masks/3.png of another size": image_as("masks/3.png", np.zeros((32, 40), dtype=np.uint8)),
    "masks/3.png names a missing object": image_as("masks/3.png", np.full((32, 32), 200, dtype=np.uint8)),
    "scenes/0.json NaN position": edit_json("scenes/0.json", lambda s: s["objects"][0].__setitem__("x", float("nan"))),
    "scenes/0.json without objects": edit_json("scenes/0.json", lambda s: s.pop("objects")),
    "scenes/0.json infinite light": edit_json("scenes/0.json", lambda s: s["light"].__setitem__("intensity", 1e400)),
}


# ---------------------------------------------------------------------------------------------------------
# VisMin: annotations.json and images/.
# ---------------------------------------------------------------------------------------------------------
def negative(change: Callable[[dict], None]) -> Corruption:
    return edit_json("annotations.json", lambda entries: change(entries[1]["negatives"][0]))


def entry(change: Callable[[dict], None]) -> Corruption:
    return edit_json("annotations.json", lambda entries: change(entries[2]))


VISMIN = {
    **file_cases("annotations.json", "json"),
    **file_cases("images/000001_source.png", "png"),
    **file_cases("images/000002_edited.png", "png"),
    "annotations.json an object": edit_json("annotations.json", lambda entries: {"entries": entries}),
    "entry not an object": edit_json("annotations.json", lambda entries: entries.__setitem__(1, "entry")),
    "entry without caption": entry(lambda e: e.pop("caption")),
    "caption a number": entry(lambda e: e.__setitem__("caption", 7)),
    "negatives not a list": entry(lambda e: e.__setitem__("negatives", {"0": e["negatives"][0]})),
    "negative not an object": entry(lambda e: e.__setitem__("negatives", [None])),
    "negative without edited image": negative(lambda n: n.pop("edited_image_path")),
    "edited image path missing file": negative(lambda n: n.__setitem__("edited_image_path", "images/none.png")),
    "edited image path a folder": negative(lambda n: n.__setitem__("edited_image_path", "images")),
    "unknown category": negative(lambda n: n.__setitem__("category", "colour")),
    "box infinite": replace_text("annotations.json", '"edit_box": [', '"edit_box": [1e400, 0, 2, 2], "was": ['),
    "box NaN": negative(lambda n: n.__setitem__("edit_box", [float("nan"), 0, 2, 2])),
    "box negative": negative(lambda n: n.__setitem__("source_box", [0, -3, 2, 2])),
    "box three numbers": negative(lambda n: n.__setitem__("source_box", [0, 3, 2])),
    "box beyond the image": negative(lambda n: n.__setitem__("edit_box", [30, 30, 8, 8])),
    "scene NaN depth": negative(lambda n: n["scene"]["objects"][0].__setitem__("depth", float("nan"))),
    "scene unknown material": entry(lambda e: e["scene"]["objects"][0].__setitem__("material", "wood")),
    "phrase a list": negative(lambda n: n.__setitem__("edited_phrase", ["red", "cube"])),
}


# ---------------------------------------------------------------------------------------------------------
# CLEVR-Change: images/, sc_images/, nsc_images/ and five JSON files.
# ---------------------------------------------------------------------------------------------------------
BEFORE_1 = "CLEVR_default_000001.png"

CLEVR_CHANGE = {
    **file_cases("splits.json", "json"),
    **file_cases("change_captions.json", "json"),
    **file_cases("no_change_captions.json", "json"),
    **file_cases("type_mapping.json", "json"),
    **file_cases("scenes.json", "json", required=False),
    **file_cases("images/CLEVR_default_000002.png", "png"),
    **file_cases("sc_images/CLEVR_semantic_000003.png", "png"),
    **file_cases("nsc_images/CLEVR_nonsemantic_000004.png", "png"),
    "splits.json unknown split": edit_json("splits.json", lambda s: s.__setitem__("dev", s.pop("val"))),
    "splits.json index in two splits": edit_json("splits.json", lambda s: s["test"].append(s["train"][0])),
    "splits.json index as text": edit_json("splits.json", lambda s: s["train"].__setitem__(0, "0")),
    "splits.json index as float": edit_json("splits.json", lambda s: s["train"].__setitem__(0, 0.0)),
    "splits.json index without images": edit_json("splits.json", lambda s: s["train"].append(77)),
    "splits.json no index": edit_json("splits.json", lambda s: {k: [] for k in s}),
    "change_captions.json empty list": edit_json("change_captions.json", lambda c: c.__setitem__(BEFORE_1, [])),
    "change_captions.json missing image": edit_json("change_captions.json", lambda c: c.pop(BEFORE_1)),
    "change_captions.json a caption number": edit_json("change_captions.json", lambda c: c[BEFORE_1].append(3)),
    "no_change_captions.json empty list": edit_json("no_change_captions.json", lambda c: c.__setitem__(BEFORE_1, [])),
    "type_mapping.json image under two types": edit_json("type_mapping.json",
                                                         lambda t: t["add"].append(t["color"][0])),
    "type_mapping.json image without type": edit_json("type_mapping.json", lambda t: t.pop("material")),
    "scenes.json NaN x": edit_json("scenes.json", lambda s: s[BEFORE_1]["after"]["objects"][0].__setitem__(
        "x", float("nan"))),
    "scenes.json box infinite": replace_text("scenes.json", '"box_after": [', '"box_after": [1e400, 0, 2, 2], "b": ['),
    "scenes.json box beyond the image": edit_json("scenes.json", lambda s: s[BEFORE_1].__setitem__(
        "box_before", [0, 0, 33, 4])),
    "scenes.json entry a list": edit_json("scenes.json", lambda s: s.__setitem__(BEFORE_1, [])),
}

CASES = {"iclevr": ICLEVR, "simat": SIMAT, "drawing": DRAWING, "vismin": VISMIN, "clevr_change": CLEVR_CHANGE}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    """One valid dataset per format, written once for the module."""
    return {name: writer(tmp_path_factory.mktemp(name)) for name, (writer, _) in READERS.items()}


@pytest.mark.parametrize("reader, case", [(reader, case) for reader, cases in CASES.items() for case in cases],
                         ids=lambda value: value.replace(" ", "_"))
def test_corruption_raises_a_format_error_naming_the_file(pristine, tmp_path, reader, case):
    source = pristine[reader]
    root = tmp_path / source.name
    (shutil.copytree if source.is_dir() else shutil.copyfile)(source, root)
    corrupted = CASES[reader][case](root)
    read_all = READERS[reader][1]
    with pytest.raises(FormatError) as caught:
        read_all(root)
    message = str(caught.value)
    assert corrupted.name in message, f"{case}: the message does not name {corrupted.name}: {message}"


@pytest.mark.parametrize("reader", list(READERS))
def test_pristine_datasets_read_without_error(pristine, reader):
    assert len(READERS[reader][1](pristine[reader])) > 0


# A byte-order mark (as spreadsheet programs write UTF-8) is not a corruption: the files read the same.
BOM_FILES = {
    "simat": ["triplets.csv", "transfos.csv", "captions.txt", "scenes.json"],
    "drawing": ["name_list_train.txt", "text/1.txt", "world.json", "scenes/0.json"],
    "vismin": ["annotations.json"],
    "clevr_change": ["splits.json", "change_captions.json", "no_change_captions.json", "type_mapping.json",
                     "scenes.json"],
}


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("reader, rel", [(reader, rel) for reader, files in BOM_FILES.items() for rel in files])
def test_a_byte_order_mark_changes_nothing(pristine, tmp_path, reader, rel):
    root = tmp_path / pristine[reader].name
    shutil.copytree(pristine[reader], root)
    (root / rel).write_bytes(b"\xef\xbb\xbf" + (root / rel).read_bytes())
    read_all = READERS[reader][1]
    assert _same(read_all(root), read_all(pristine[reader]))
