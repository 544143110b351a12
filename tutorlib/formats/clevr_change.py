"""CLEVR-Change's folder format (read by IDC): before, semantic-change and distractor images with captions.

    images/CLEVR_default_%06d.png        before
    sc_images/CLEVR_semantic_%06d.png    after a semantic change
    nsc_images/CLEVR_nonsemantic_%06d.png  after a view or light change only (distractor)
    change_captions.json, no_change_captions.json   {default image file name: [captions]}
    splits.json          {"train" | "val" | "test": [indices]}
    type_mapping.json    {change type: [default image file names]}

The shapes world adds scenes.json, {default image file name: {"before", "after", "distractor" (scenes),
"box_before", "box_after"}}; it is optional on read (scenes and boxes are then None).
Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..world.scene import Scene
from ..world.views.common import SPLITS, SplitDataset
from .common import FormatError, atomic_dir, read_json, require_file, write_image, write_json
from .vismin import ImageRecords, ground_truth_json, parse_box

# item key -> (folder, file name pattern)
IMAGE_FILES = {
    "before": ("images", "CLEVR_default_%06d.png"),
    "after": ("sc_images", "CLEVR_semantic_%06d.png"),
    "distractor": ("nsc_images", "CLEVR_nonsemantic_%06d.png"),
}
# item key -> key in scenes.json, and how to read it back
SCENE_EXTRAS = {"scene_before": "before", "scene_after": "after", "scene_distractor": "distractor",
                "box_before": "box_before", "box_after": "box_after"}
_EXTRA_PARSERS = {"before": Scene.from_dict, "after": Scene.from_dict, "distractor": Scene.from_dict,
                  "box_before": parse_box, "box_after": parse_box}


def _file_name(key: str, index: int) -> str:
    return IMAGE_FILES[key][1] % index


def write_clevr_change(items: Iterable[dict], folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write change items (see ChangePairs) in CLEVR-Change's layout, atomically; files are numbered by item index."""
    change, no_change, scenes = {}, {}, {}
    splits: dict[str, list[int]] = {name: [] for name in SPLITS}
    types: dict[str, list[str]] = {}
    with atomic_dir(folder, overwrite) as tmp:
        for item in items:
            index, name = int(item["index"]), _file_name("before", int(item["index"]))
            if name in change:
                raise ValueError(f"two items have index {index}")
            if item["split"] not in splits:
                raise ValueError(f"item {index}: unknown split {item['split']!r}; choose from {list(SPLITS)}")
            for key, (subfolder, _) in IMAGE_FILES.items():
                write_image(tmp / subfolder / _file_name(key, index), item[key])
            change[name], no_change[name] = list(item["change_captions"]), list(item["no_change_captions"])
            splits[item["split"]].append(index)
            types.setdefault(item["change_type"], []).append(name)
            extras = ground_truth_json(item, SCENE_EXTRAS)
            if extras:
                scenes[name] = extras
        for file_name, data in (("change_captions.json", change), ("no_change_captions.json", no_change),
                                ("splits.json", splits), ("type_mapping.json", types)):
            write_json(tmp / file_name, data)
        if scenes:
            write_json(tmp / "scenes.json", scenes)
    return Path(folder)


class ClevrChangeFiles(ImageRecords, SplitDataset):
    """Change items read from a CLEVR-Change folder (images loaded when read); `.split(name)` selects a split."""

    def __init__(self, records: list[dict], scenes_path: Path):
        super().__init__(records, tuple(IMAGE_FILES), frame=records[0]["before"],
                         boxes={"box_before": "before", "box_after": "after"}, box_file=scenes_path,
                         labels=[record["before"].name for record in records])
        self.splits = [record["split"] for record in records]


def _lists(path: Path, value_type: type, non_empty: bool = False) -> dict[str, list]:
    """A JSON object mapping names to lists of `value_type` (`non_empty`: at least one each); FormatError naming
    the file otherwise."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, f"expected an object, found {type(data).__name__}")
    for key, values in data.items():
        if not isinstance(values, list) or not all(type(v) is value_type for v in values):
            raise FormatError(path, f"{key!r} must map to a list of {value_type.__name__}")
        if non_empty and not values:
            raise FormatError(path, f"{key!r} maps to an empty list")
    return data


def _change_types(path: Path) -> dict[str, str]:
    """type_mapping.json inverted: default image file name -> its one change type."""
    change_types: dict[str, str] = {}
    for kind, names in _lists(path, str).items():
        for name in names:
            if name in change_types:
                raise FormatError(path, f"{name} is listed under two change types, {change_types[name]!r} and {kind!r}")
            change_types[name] = kind
    return change_types


def _extras(path: Path, scenes: dict, name: str) -> dict:
    """The ground truth of one item from scenes.json (None for each field that is absent)."""
    entry = scenes.get(name, {})
    if not isinstance(entry, dict):
        raise FormatError(path, f"{name!r}: expected an object, found {type(entry).__name__}")
    extras = {}
    for item_key, json_key in SCENE_EXTRAS.items():
        try:
            extras[item_key] = _EXTRA_PARSERS[json_key](entry[json_key]) if json_key in entry else None
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise FormatError(path, f"{name!r}: malformed {json_key!r} ({type(err).__name__}: {err})") from None
    return extras


def read_clevr_change(folder: str | os.PathLike) -> ClevrChangeFiles:
    """Read a CLEVR-Change folder: one item per index listed in splits.json, in index order.

    A missing file, a malformed JSON file, an unknown split, an image without captions or with two change types,
    or images of another size than the first before image raise a FormatError naming the file and the problem.
    """
    folder = Path(folder)
    splits = _lists(folder / "splits.json", int)
    unknown = sorted(set(splits) - set(SPLITS))
    if unknown:
        raise FormatError(folder / "splits.json", f"unknown splits {unknown}; expected {list(SPLITS)}")
    change = _lists(folder / "change_captions.json", str, non_empty=True)
    no_change = _lists(folder / "no_change_captions.json", str, non_empty=True)
    change_types = _change_types(folder / "type_mapping.json")
    scenes_path = folder / "scenes.json"
    scenes = read_json(scenes_path) if scenes_path.exists() else {}
    if not isinstance(scenes, dict):
        raise FormatError(scenes_path, f"expected an object, found {type(scenes).__name__}")

    split_of: dict[int, str] = {}
    for split, indices in splits.items():
        for index in indices:
            if index in split_of:
                raise FormatError(folder / "splits.json", f"index {index} is in both {split_of[index]!r} and {split!r}")
            split_of[index] = split
    if not split_of:
        raise FormatError(folder / "splits.json", "lists no index")
    records = []
    for index in sorted(split_of):
        name = _file_name("before", index)
        for json_name, table in (("change_captions.json", change), ("no_change_captions.json", no_change),
                                 ("type_mapping.json", change_types)):
            if name not in table:
                raise FormatError(folder / json_name, f"no entry for {name} (index {index} of splits.json)")
        images = {key: require_file(folder / subfolder / _file_name(key, index))
                  for key, (subfolder, _) in IMAGE_FILES.items()}
        records.append({
            **images, "change_type": change_types[name], "change_captions": change[name],
            "no_change_captions": no_change[name], "index": index, "split": split_of[index],
            **_extras(scenes_path, scenes, name),
        })
    return ClevrChangeFiles(records, scenes_path)
