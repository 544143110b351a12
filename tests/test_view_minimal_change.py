import json
import shutil

import pytest
import torch

from tutorlib.formats.common import FormatError
from tutorlib.formats.vismin import read_vismin, write_vismin
from tutorlib.world import ATTRIBUTES, Obj, Oracle, Scene, render
from tutorlib.world.text import NUMBER_WORDS, RELATION_PHRASES
from tutorlib.world.views.minimal_change import CATEGORIES, MinimalChangePairs, in_frame, minimal_edit, object_box
from tests.item_checks import assert_items_equal

N, SIZE = 40, 32


@pytest.fixture(scope="module")
def pairs() -> MinimalChangePairs:
    return MinimalChangePairs(N, size=SIZE, seed=3)


def phrase_filter(phrase: str) -> dict[str, str]:
    """'large red cubes' -> {"size": "large", "color": "red", "shape": "cube"} (plural shapes too)."""
    words = [w[:-1] if w[:-1] in ATTRIBUTES["shape"] else w for w in phrase.split()]
    found = {name: w for w in words for name, values in ATTRIBUTES.items() if w in values}
    assert len(found) == len(words), f"unparsed words in {phrase!r}"
    return found


def split_relation(caption: str) -> tuple[str, str, str] | None:
    """'a red cube to the left of a blue sphere' -> ('red cube', 'left', 'blue sphere'); None without a relation."""
    for relation, words in RELATION_PHRASES.items():
        if f" {words} a " in caption:
            subject, obj = caption.removeprefix("a ").split(f" {words} a ")
            return subject, relation, obj
    return None


def holds(caption: str, scene: Scene) -> bool:
    """Whether a caption of the view is true of the scene, decided by the Oracle from the caption's words."""
    oracle = Oracle(scene)
    if split_relation(caption):
        subject, relation, obj = split_relation(caption)
        return oracle.relate(phrase_filter(subject), relation, phrase_filter(obj))
    first, rest = caption.split(" ", 1)
    if first in NUMBER_WORDS:
        return oracle.count(**phrase_filter(rest)) == NUMBER_WORDS.index(first)
    assert first == "a"
    return oracle.exists(**phrase_filter(rest))


def changed_objects(scene0: Scene, scene1: Scene) -> list[int]:
    return [k for k, (a, b) in enumerate(zip(scene0.objects, scene1.objects)) if a != b]


def test_shapes_dtypes_and_even_categories(pairs):
    assert len(pairs) == N
    counts = {c: 0 for c in CATEGORIES}
    for item in pairs:
        for key in ("image0", "image1"):
            assert item[key].shape == (3, SIZE, SIZE) and item[key].dtype == torch.uint8
        for key in ("box0", "box1"):
            assert item[key].shape == (4,) and item[key].dtype == torch.int64
            x, y, w, h = item[key].tolist()
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= SIZE and y + h <= SIZE
        assert not torch.equal(item["image0"], item["image1"])
        counts[item["category"]] += 1
    assert counts == {c: N // 4 for c in CATEGORIES}


def test_every_caption_true_of_its_image_and_false_of_the_other(pairs):
    for item in pairs:
        assert holds(item["caption0"], item["scene0"]) and holds(item["caption1"], item["scene1"])
        assert not holds(item["caption0"], item["scene1"]) and not holds(item["caption1"], item["scene0"])


@pytest.mark.parametrize("category", CATEGORIES)
def test_many_edits_keep_their_captions_unambiguous(category):
    for index in range(150):
        edit = minimal_edit(category, 11, index)
        assert holds(edit.caption0, edit.scene0) and holds(edit.caption1, edit.scene1)
        assert not holds(edit.caption0, edit.scene1) and not holds(edit.caption1, edit.scene0)
        if category == "relation":  # each named phrase picks out one object, never the other named one
            subject, _, obj = split_relation(edit.caption0)
            assert all(len(Oracle(s).select(**phrase_filter(p))) == 1 for s in (edit.scene0, edit.scene1)
                       for p in (subject, obj))
        elif category != "counting":
            assert Oracle(edit.scene0).select(**phrase_filter(edit.source_phrase)) == [0]


def test_the_holds_check_can_fail():
    scene = Scene((Obj("cube", "red", "small", "rubber", -0.3, 1.2), Obj("sphere", "blue", "large", "metal", 0.4, 1.5)))
    assert holds("a red cube to the left of a blue sphere", scene)
    assert not holds("a blue sphere to the left of a red cube", scene)
    assert holds("a red cube in front of a blue sphere", scene) and not holds("a red cube behind a blue sphere", scene)
    assert holds("one red cube", scene) and not holds("two red cubes", scene)
    assert holds("a large blue metal sphere", scene) and not holds("a small blue sphere", scene)


def test_one_change_of_the_stated_kind(pairs):
    for item in pairs:
        s0, s1, category = item["scene0"], item["scene1"], item["category"]
        words0, words1 = item["caption0"].split(), item["caption1"].split()
        if category in ("object", "attribute"):
            [k] = changed_objects(s0, s1)
            [attribute] = [n for n in ATTRIBUTES if getattr(s0.objects[k], n) != getattr(s1.objects[k], n)]
            assert attribute == "shape" if category == "object" else attribute in ("color", "material", "size")
            [(old, new)] = [(a, b) for a, b in zip(words0, words1) if a != b]
            assert (old, new) == (getattr(s0.objects[k], attribute), getattr(s1.objects[k], attribute))
            assert len(s0) == len(s1) and len(words0) == len(words1)
            assert item["source_phrase"] in item["caption0"] and item["edited_phrase"] in item["caption1"]
        elif category == "counting":
            assert len(s1) == len(s0) - 1
            assert any(s0.remove(k) == s1 for k in range(len(s0)))
            assert NUMBER_WORDS.index(words0[0]) == NUMBER_WORDS.index(words1[0]) + 1 >= 2
            assert words0[1:-1] == words1[1:-1]
            assert torch.equal(item["box0"], item["box1"])
        else:
            a, b = changed_objects(s0, s1)
            assert (s1.objects[a].x, s1.objects[a].depth) == (s0.objects[b].x, s0.objects[b].depth)
            assert (s1.objects[b].x, s1.objects[b].depth) == (s0.objects[a].x, s0.objects[a].depth)
            for k in (a, b):
                assert in_frame(s1.objects[k]) and not s1.collides(s1.objects[k], ignore=k)
            subject, relation, obj = split_relation(item["caption0"])
            assert split_relation(item["caption1"]) == (obj, relation, subject)


def test_distractors_and_both_relation_axes(pairs):
    named = {"object": 1, "attribute": 1, "relation": 2}
    axes = set()
    for item in pairs:
        n_named = named.get(item["category"]) or NUMBER_WORDS.index(item["caption0"].split()[0])
        assert 1 <= len(item["scene0"]) - n_named <= 4
        if item["category"] == "relation":
            axes.add("side" if " to the " in item["caption0"] else "depth")
    assert axes == {"side", "depth"}


def test_edit_box_covers_the_edited_object():
    scene = Scene((Obj("cube", "red", "large", "rubber", 0.0, 1.3), Obj("sphere", "blue", "small", "metal", 0.6, 1.8)))
    rendering = render(scene, 64)
    box = object_box(rendering, 0, [0]).tolist()
    ys, xs = torch.nonzero(rendering.ids[0] == 0, as_tuple=True)
    assert box == [xs.min().item(), ys.min().item(), xs.max().item() - xs.min().item() + 1,
                   ys.max().item() - ys.min().item() + 1]
    both = object_box(rendering, 0, [0, 1]).tolist()
    assert both[0] == box[0] and both[0] + both[2] > box[0] + box[2]
    with pytest.raises(ValueError, match="not visible"):
        object_box(rendering, 0, [5])


def test_deterministic_and_seed_dependent(pairs):
    again = MinimalChangePairs(8, size=SIZE, seed=3)
    for k in range(8):
        assert_items_equal(pairs[k], again[k])
    other = MinimalChangePairs(8, size=SIZE, seed=4)
    assert [other[k]["caption0"] for k in range(8)] != [pairs[k]["caption0"] for k in range(8)]
    assert minimal_edit("relation", 5, 2) == minimal_edit("relation", 5, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="categories"):
        MinimalChangePairs(4, categories=("colour",))
    with pytest.raises(ValueError, match="category"):
        minimal_edit("shape", 0)


def test_round_trip(pairs, tmp_path):
    folder = write_vismin(pairs, tmp_path / "vismin")
    entries = json.loads((folder / "annotations.json").read_text())
    assert set(entries[0]) >= {"image_path", "caption", "negatives"}
    assert set(entries[0]["negatives"][0]) >= {"edited_image_path", "edited_caption", "category", "edit_box", "scene"}
    read = read_vismin(folder)
    assert len(read) == len(pairs)
    for k in range(len(pairs)):
        assert_items_equal(read[k], pairs[k])
    assert_items_equal(read_vismin(folder / "annotations.json")[3], pairs[3])
    with pytest.raises(FileExistsError):
        write_vismin(pairs, folder)


def test_interrupted_write_leaves_nothing(pairs, tmp_path):
    broken = [pairs[0], {"image0": pairs[1]["image0"]}]
    with pytest.raises(KeyError):
        write_vismin(broken, tmp_path / "vismin")
    assert list(tmp_path.iterdir()) == []


def test_real_style_entries_without_ground_truth(pairs, tmp_path):
    folder = write_vismin([pairs[0]], tmp_path / "vismin")
    entries = [{"image_path": "images/000000_source.png", "caption": "a cat",
                "negatives": [{"edited_image_path": "images/000000_edited.png", "edited_caption": "a dog",
                               "category": "object"},
                              {"edited_image_path": "images/000000_source.png", "edited_caption": "a cow",
                               "category": "object"}]}]
    (folder / "annotations.json").write_text(json.dumps(entries))
    read = read_vismin(folder)
    assert len(read) == 2 and read[1]["caption1"] == "a cow"
    assert read[0]["scene0"] is None and read[0]["box1"] is None and read[0]["edited_phrase"] is None
    assert torch.equal(read[0]["image1"], pairs[0]["image1"])


@pytest.fixture
def written(pairs, tmp_path):
    return write_vismin([pairs[k] for k in range(3)], tmp_path / "vismin")


def edit_annotations(folder, change) -> None:
    entries = json.loads((folder / "annotations.json").read_text())
    change(entries)
    (folder / "annotations.json").write_text(json.dumps(entries))


def test_missing_and_malformed_files(written, tmp_path):
    with pytest.raises(FormatError, match="nowhere: file not found"):
        read_vismin(tmp_path / "nowhere")
    (written / "annotations.json").unlink()
    with pytest.raises(FormatError, match="annotations.json: file not found"):
        read_vismin(written)
    (written / "annotations.json").write_text("[{")
    with pytest.raises(FormatError, match="annotations.json: not valid JSON"):
        read_vismin(written)
    (written / "annotations.json").write_text('{"image_path": "x"}')
    with pytest.raises(FormatError, match="expected a list of entries"):
        read_vismin(written)


def test_missing_key_names_the_entry(written):
    edit_annotations(written, lambda entries: entries[1].pop("caption"))
    with pytest.raises(FormatError, match=r"annotations.json: entry 1: missing key 'caption'"):
        read_vismin(written)


def test_missing_negative_key_and_wrong_type(written):
    edit_annotations(written, lambda entries: entries[2]["negatives"][0].pop("category"))
    with pytest.raises(FormatError, match=r"entry 2, negative 0: missing key 'category'"):
        read_vismin(written)
    edit_annotations(written, lambda entries: entries[2].update(negatives={"a": 1}))
    with pytest.raises(FormatError, match=r"entry 2: 'negatives' must be a list, found dict"):
        read_vismin(written)


def test_malformed_ground_truth(written):
    edit_annotations(written, lambda entries: entries[0]["negatives"][0].update(edit_box=[1, 2, 3]))
    with pytest.raises(FormatError, match=r"entry 0, negative 0: malformed 'edit_box'"):
        read_vismin(written)
    edit_annotations(written, lambda entries: entries[0].update(scene={"objects": [{"shape": "cone"}]}))
    with pytest.raises(FormatError, match=r"entry 0: malformed 'scene'"):
        read_vismin(written)


def test_missing_image_names_the_file_and_entry(written):
    (written / "images" / "000001_edited.png").unlink()
    with pytest.raises(FormatError, match=r"000001_edited.png: image file not found \(entry 1, negative 0"):
        read_vismin(written)
    shutil.rmtree(written / "images")
    with pytest.raises(FormatError, match=r"000000_source.png: image file not found \(entry 0 of"):
        read_vismin(written)


def test_describe_counts_categories():
    pairs = MinimalChangePairs(8, size=32, seed=1)
    assert pairs.describe() == "8 minimal-change pairs at 32 px: object 2, attribute 2, counting 2, relation 2"
