import json
import re

import pytest
import torch

from tutorlib.formats.clevr_change import read_clevr_change, write_clevr_change
from tutorlib.formats.common import FormatError
from tutorlib.world import ATTRIBUTES, Oracle, project
from tutorlib.world.views.change_pairs import (
    CHANGE_TEMPLATES, CHANGE_TYPES, MAX_DIMMING, MAX_PAN, MAX_TILT, NO_CHANGE_CAPTIONS, SEMANTIC_JITTER, ChangePairs,
)
from tests.item_checks import assert_items_equal

N, SIZE = 30, 32


@pytest.fixture(scope="module")
def pairs() -> ChangePairs:
    return ChangePairs(N, size=SIZE, seed=5)


def phrase_filter(phrase: str) -> dict[str, str]:
    """'large red cube' -> {"size": "large", "color": "red", "shape": "cube"}."""
    found = {name: w for w in phrase.split() for name, values in ATTRIBUTES.items() if w in values}
    assert len(found) == len(phrase.split()), f"unparsed words in {phrase!r}"
    return found


def template_phrases(template: str, caption: str) -> dict[str, str] | None:
    """The words that fill a template's {slots} in a caption, or None if the caption does not follow it."""
    pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[a-z ]+)", re.escape(template))
    match = re.fullmatch(pattern, caption)
    return match.groupdict() if match else None


def test_shapes_dtypes_types_and_splits(pairs):
    assert len(pairs) == N
    for k, item in enumerate(pairs):
        for key in ("before", "after", "distractor"):
            assert item[key].shape == (3, SIZE, SIZE) and item[key].dtype == torch.uint8
        for key in ("box_before", "box_after"):
            x, y, w, h = item[key].tolist()
            assert item[key].dtype == torch.int64 and 0 <= x and 0 <= y and w > 0 and h > 0
            assert x + w <= SIZE and y + h <= SIZE
        assert item["change_type"] == CHANGE_TYPES[k % 5] and item["index"] == k
        assert 3 <= len(item["scene_before"]) <= 6
        assert len(item["change_captions"]) >= 3 and item["no_change_captions"] == list(NO_CHANGE_CAPTIONS)
    sizes = {name: len(pairs.split(name)) for name in ("train", "val", "test")}
    assert sizes == {"train": 24, "val": 3, "test": 3}
    assert all(item["split"] == "val" for item in pairs.split("val"))
    with pytest.raises(ValueError, match="unknown split"):
        pairs.split("dev")


def test_split_shares():
    small = ChangePairs(8, size=SIZE, split_shares=(0.5, 0.25, 0.25))
    assert small.splits == ["train"] * 4 + ["val"] * 2 + ["test"] * 2
    with pytest.raises(ValueError, match="split_shares"):
        ChangePairs(10, split_shares=(0.5, 0.6, 0.1))
    with pytest.raises(ValueError, match="n must be"):
        ChangePairs(0)


def changed(item) -> int:
    """Index of the changed object, checking that exactly the stated change happened (views ignored)."""
    before, after, kind = item["scene_before"].objects, item["scene_after"].objects, item["change_type"]
    if kind == "add":
        assert after[:-1] == before
        return len(after) - 1
    if kind == "drop":
        [k] = [k for k in range(len(before)) if before[:k] + before[k + 1:] == after]
        return k
    [k] = [k for k, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(before) == len(after)
    fields = ("shape", "color", "size", "material", "x", "depth")
    differing = [n for n in fields if getattr(before[k], n) != getattr(after[k], n)]
    if kind == "move":
        assert set(differing) <= {"x", "depth"}
        (u0, v0, r0), (u1, v1, r1) = (project(o.x, o.depth, o.radius) for o in (before[k], after[k]))
        assert abs(u1 - u0) > r0 + r1 or abs(v1 - v0) > r0 + r1  # the image boxes do not overlap
    else:
        assert differing == [kind]
    return k


def test_exactly_the_stated_change_with_identifying_captions(pairs):
    for item in pairs:
        k, kind = changed(item), item["change_type"]
        scene = item["scene_after"] if kind == "add" else item["scene_before"]
        for template, caption in zip(CHANGE_TEMPLATES[kind], item["change_captions"]):
            words = template_phrases(template, caption)
            assert words is not None, (template, caption)
            if "phrase" in words:
                assert Oracle(scene).select(**phrase_filter(words["phrase"])) == [k]
            if "new" in words:
                assert words["new"] == getattr(item["scene_after"].objects[k], kind)
            if "old" in words:
                assert words["old"] == getattr(item["scene_before"].objects[k], kind)


def test_distractor_changes_only_the_view(pairs):
    for item in pairs:
        before, distractor, after = item["scene_before"], item["scene_distractor"], item["scene_after"]
        assert distractor.objects == before.objects
        assert (distractor.camera, distractor.light) != (before.camera, before.light)
        assert not torch.equal(item["distractor"], item["before"])
        assert abs(after.camera.pan) <= SEMANTIC_JITTER * MAX_PAN
        assert abs(after.camera.tilt) <= SEMANTIC_JITTER * MAX_TILT
        assert abs(distractor.camera.pan) <= MAX_PAN and abs(distractor.light.intensity - 1.0) <= MAX_DIMMING


def test_boxes_follow_the_changed_object(pairs):
    for item in pairs:
        same = torch.equal(item["box_before"], item["box_after"])
        if item["change_type"] in ("add", "drop"):
            assert same
        if item["change_type"] == "move":
            assert not same


def test_deterministic_and_seed_dependent(pairs):
    again = ChangePairs(6, size=SIZE, seed=5, split_shares=(0.8, 0.1, 0.1))
    for k in range(6):
        assert all(again[k][key] == pairs[k][key] for key in ("change_captions", "scene_before", "scene_after"))
        assert torch.equal(again[k]["distractor"], pairs[k]["distractor"])
    other = ChangePairs(6, size=SIZE, seed=6)
    assert [other[k]["scene_before"] for k in range(6)] != [pairs[k]["scene_before"] for k in range(6)]
    only = ChangePairs(4, size=SIZE, types=("move",))
    assert {item["change_type"] for item in only} == {"move"}
    with pytest.raises(ValueError, match="types"):
        ChangePairs(2, types=("rotate",))


def test_round_trip(pairs, tmp_path):
    folder = write_clevr_change(pairs, tmp_path / "change")
    assert (folder / "images" / "CLEVR_default_000007.png").is_file()
    assert (folder / "nsc_images" / "CLEVR_nonsemantic_000007.png").is_file()
    assert json.loads((folder / "type_mapping.json").read_text())["drop"][0] == "CLEVR_default_000003.png"
    read = read_clevr_change(folder)
    assert len(read) == N
    for k in range(N):
        assert_items_equal(read[k], pairs[k])
    assert [item["index"] for item in read.split("test")] == [item["index"] for item in pairs.split("test")]


def test_scenes_json_is_optional(pairs, tmp_path):
    folder = write_clevr_change([pairs[k] for k in range(4)], tmp_path / "change")
    (folder / "scenes.json").unlink()
    item = read_clevr_change(folder)[2]
    assert item["scene_before"] is None and item["box_after"] is None
    assert torch.equal(item["after"], pairs[2]["after"]) and item["change_captions"] == pairs[2]["change_captions"]


@pytest.fixture
def written(pairs, tmp_path):
    return write_clevr_change([pairs[k] for k in range(5)], tmp_path / "change")


def rewrite(path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_and_malformed_files(written):
    (written / "nsc_images" / "CLEVR_nonsemantic_000004.png").unlink()
    with pytest.raises(FormatError, match="CLEVR_nonsemantic_000004.png: file not found"):
        read_clevr_change(written)
    (written / "splits.json").write_text('{"train": [0, 1')
    with pytest.raises(FormatError, match="splits.json: not valid JSON"):
        read_clevr_change(written)
    (written / "splits.json").unlink()
    with pytest.raises(FormatError, match="splits.json: file not found"):
        read_clevr_change(written)


def test_missing_keys_and_wrong_values(written):
    rewrite(written / "change_captions.json", lambda d: d.pop("CLEVR_default_000002.png"))
    with pytest.raises(FormatError, match=r"change_captions.json: no entry for CLEVR_default_000002.png"):
        read_clevr_change(written)
    rewrite(written / "scenes.json", lambda d: d["CLEVR_default_000001.png"].update(box_after=[1]))
    with pytest.raises(FormatError, match=r"scenes.json: 'CLEVR_default_000001.png': malformed 'box_after'"):
        read_clevr_change(written)
    rewrite(written / "splits.json", lambda d: d.update(dev=[9]))
    with pytest.raises(FormatError, match=r"splits.json: unknown splits \['dev'\]"):
        read_clevr_change(written)
    rewrite(written / "splits.json", lambda d: d.update(dev=["a"]))
    with pytest.raises(FormatError, match=r"splits.json: 'dev' must map to a list of int"):
        read_clevr_change(written)


def test_interrupted_write_leaves_nothing(pairs, tmp_path):
    with pytest.raises(KeyError):
        write_clevr_change([pairs[0], {"index": 1, "split": "train"}], tmp_path / "change")
    assert list(tmp_path.iterdir()) == []


def test_describe_counts_types_and_splits():
    pairs = ChangePairs(10, size=32, seed=1)
    assert pairs.describe() == ("10 change pairs at 32 px: color 2, material 2, add 2, drop 2, move 2; "
                                "splits: train 8, val 1, test 1")
