"""Edit instructions: the grammar's edits are valid and minimal, the validator names what is wrong, and the
language-model path parses, round-trips and rejects malformed output with reasons."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tutorlib.vismin.instructions import (EditInstruction, LayoutEdit, Rejection, grammar_edit, true_region,
                                          validate, visible_boxes)
from tutorlib.vismin.language_model import (edit_text, few_shot_prompt, language_model_edit, parse_edit,
                                            pipeline_generator, tiny_random_pipeline)
from tutorlib.world.oracle import Oracle
from tutorlib.world.render import render
from tutorlib.world.sampling import sample_scene
from tutorlib.world.scene import Obj, Scene
from tutorlib.world.views.simat import phrase_filter

SCENES = [sample_scene(s, n_objects=(3, 7)) for s in range(40)]
RENDERING = render(SCENES, 64)
BOXES = [visible_boxes(RENDERING, b) for b in range(len(SCENES))]
CATEGORIES = ("object", "attribute", "counting", "relation")


def edits(category):
    out = [grammar_edit(s, boxes, category, seed=b) for b, (s, boxes) in enumerate(zip(SCENES, BOXES))]
    return [(b, e) for b, e in enumerate(out) if not isinstance(e, Rejection)]


@pytest.mark.parametrize("category", CATEGORIES)
def test_grammar_edits_are_valid_and_mostly_found(category):
    found = edits(category)
    assert len(found) >= 0.9 * len(SCENES)
    for b, edit in found:
        assert edit.category == category
        assert validate(edit, SCENES[b], 64) == []


def test_phrase_edits_name_one_object_before_and_after():
    for category in ("object", "attribute"):
        for b, edit in edits(category):
            oracle, visible = Oracle(SCENES[b]), set(BOXES[b])
            before, after = phrase_filter(edit.selected_phrase), phrase_filter(edit.edited_phrase)
            assert [i for i in oracle.select(**before) if i in visible] and len(oracle.select(**before)) == 1
            assert not oracle.exists(**after)  # the edited phrase names no other object
            changed = [a for a in before if before[a] != after[a]]
            assert changed == ["shape"] if category == "object" else len(changed) == 1 and changed != ["shape"]


def test_layout_edits_remove_one_box_or_swap_two():
    for b, edit in edits("counting"):
        n = len(edit.layout0)
        assert len(edit.layout1) == n - 1 and set(edit.layout1) < set(edit.layout0)
        assert Oracle(SCENES[b]).count(**phrase_filter(edit.layout0[0][0])) == n
    for _, edit in edits("relation"):
        assert [b for _, b in edit.layout1] == [b for _, b in edit.layout0][::-1]


def test_true_region_is_the_named_object_or_the_first_layout_box():
    b, edit = edits("attribute")[0]
    [index] = Oracle(SCENES[b]).select(**phrase_filter(edit.selected_phrase))
    box = true_region(SCENES[b], RENDERING, b, edit)
    assert box == BOXES[b][index]
    ids = RENDERING.ids[b]
    x, y, w, h = box
    assert (ids[y : y + h, x : x + w] == index).any() and not (ids[:, :x] == index).any()
    b, layout = edits("counting")[0]
    assert true_region(SCENES[b], RENDERING, b, layout) == layout.layout0[0][1]


def test_grammar_is_deterministic_and_rejects_unknown_category():
    assert grammar_edit(SCENES[3], BOXES[3], "attribute", 7) == grammar_edit(SCENES[3], BOXES[3], "attribute", 7)
    with pytest.raises(ValueError, match="unknown category 'colour'.*'object'"):
        grammar_edit(SCENES[0], BOXES[0], "colour", 0)
    assert isinstance(grammar_edit(Scene(), {}, "object", 0), Rejection)


def test_grammar_edits_do_not_depend_on_the_hash_seed():
    program = ("import json; from tutorlib.vismin.instructions import grammar_edit, visible_boxes; "
               "from tutorlib.world.render import render; from tutorlib.world.sampling import sample_scene; "
               "scenes = [sample_scene(s, n_objects=(3, 7)) for s in range(40)]; rendering = render(scenes, 64); "
               "print(json.dumps([grammar_edit(s, visible_boxes(rendering, b), c, seed=b).__dict__ "
               "for b, s in enumerate(scenes) for c in ('object', 'attribute', 'counting', 'relation')]))")
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
        outputs.append(json.loads(done.stdout))
    assert len(outputs[0]) == 160 and outputs[0] == outputs[1]


def test_validator_names_each_problem():
    scene = Scene((Obj("cube", "red", "large", "rubber", 0.0, 4.0),))
    good = EditInstruction("attribute", "a red cube", "red cube", "blue cube", "blue cube", "a blue cube")
    assert validate(good, scene) == []
    cases = {
        "names no object in the image": dataclasses.replace(good, input_caption="a green cube",
                                                            selected_phrase="green cube"),
        "SelectedPhrase is empty": dataclasses.replace(good, selected_phrase=""),
        "unknown words \\['dog'\\]": dataclasses.replace(good, edited_caption="a blue dog", edited_phrase="blue dog"),
        "changes one of color, material, size; this one changes \\['color', 'shape'\\]":
            dataclasses.replace(good, edited_phrase="blue sphere", edited_caption="a blue sphere"),
        "is not the InputCaption with SelectedPhrase replaced": dataclasses.replace(good, edited_caption="a blue sphere"),
        "category 'counting' is not one of": dataclasses.replace(good, category="counting"),
    }
    for message, edit in cases.items():
        reasons = validate(edit, scene)
        assert any(re.search(message, r) for r in reasons), (message, reasons)
    layout = LayoutEdit("counting", "two red cubes", "one red cube", (("red cube", (0, 0, 8, 8)),
                        ("red cube", (60, 10, 8, 8))), (("red cube", (0, 0, 8, 8)),))
    assert validate(layout, size=64) == ["box [60, 10, 8, 8] lies outside the 64 x 64 image or is empty"]
    swapped_wrong = LayoutEdit("relation", "a red cube to the left of a blue cube", "a blue cube to the left of a red cube",
                               (("red cube", (0, 0, 8, 8)), ("blue cube", (20, 0, 8, 8))),
                               (("red cube", (0, 0, 8, 8)), ("blue cube", (20, 0, 8, 8))))
    assert validate(swapped_wrong, size=64) == ["a relation edit swaps the boxes of exactly two phrases"]


def test_edited_region_phrase_is_what_is_painted():
    # VisMin: SelectedPhrase is the object grounded in the source, EditedRegionPhrase the edited region's text
    scene = Scene((Obj("cube", "red", "large", "rubber", 0.0, 4.0),))
    good = EditInstruction("attribute", "a red cube", "red cube", "blue cube", "blue cube", "a blue cube")
    for region in ("blue cube", "large blue cube", "blue rubber cube"):
        assert validate(dataclasses.replace(good, edited_region_phrase=region), scene) == [], region
    for region, wrong in (("red cube", "['color']"), ("cube", "['color']"), ("blue sphere", "['shape']")):
        assert validate(dataclasses.replace(good, edited_region_phrase=region), scene) == [
            f"EditedRegionPhrase {region!r} (what is painted) does not describe the edited object 'blue cube' "
            f"(attributes {wrong})"]
    edit = grammar_edit(scene, {0: (10, 10, 8, 8)}, "object", seed=0)
    assert edit.selected_phrase == "cube" and edit.input_caption == "a cube"
    assert edit.edited_region_phrase == edit.edited_phrase != "cube"
    assert edit.edited_caption == f"a {edit.edited_phrase}"
    for category in ("object", "attribute"):
        for _, edit in edits(category):
            assert edit.to_json()["EditedRegionPhrase"] == edit.edited_phrase != edit.selected_phrase


def test_parser_reads_vismin_style_region_phrases():
    text = ("InputCaption: a red cube\nCategory: attribute\nSelectedPhrase: red cube\nEditedPhrase: blue cube\n"
            "EditedRegionPhrase: A blue cube\nEditedCaption: a blue cube")
    assert parse_edit(text) == EditInstruction("attribute", "a red cube", "red cube", "blue cube", "blue cube",
                                               "a blue cube")
    assert parse_edit(text.replace("A blue cube", "an blue cube")).edited_region_phrase == "blue cube"
    assert parse_edit(text.replace("A blue cube", "blue cube")).edited_region_phrase == "blue cube"


@pytest.mark.parametrize("category", CATEGORIES)
def test_edit_text_round_trips_through_the_parser(category):
    _, edit = edits(category)[0]
    assert parse_edit(edit_text(edit)) == edit
    assert parse_edit(edit_text(edit) + "\n\nInputCaption: another example") == edit


def test_parser_rejects_malformed_text_with_reasons():
    assert "missing ['SelectedPhrase'" in parse_edit("InputCaption: a red cube\nCategory: object").reason
    assert "is not a 'Key: value' line" in parse_edit("InputCaption: a red cube\ncube cube cube").reason
    bad_box = "InputCaption: two red cubes\nCategory: counting\nLayout0: red cube [1, 2, 3]\nEditedCaption: one red cube\n" \
              "Layout1: red cube [1, 2, 3, 4]"
    assert "is not 'phrase [x, y, w, h]'" in parse_edit(bad_box).reason


def test_language_model_path_with_a_perfect_and_a_random_model():
    examples = [e for c in CATEGORIES for _, e in edits(c)[:1]]
    b, target = edits("attribute")[1]
    prompt = few_shot_prompt(target.input_caption, "attribute", examples)
    assert prompt.endswith(f"InputCaption: {target.input_caption}\nCategory: attribute\n")

    def perfect(p):  # writes the rest of the grammar's edit, then starts another example
        return edit_text(target).split("Category: attribute\n")[1] + "\n\nInputCaption: more"

    assert language_model_edit(perfect, target.input_caption, "attribute", examples, SCENES[b], 64) == target
    generate = pipeline_generator(tiny_random_pipeline(seed=0), max_new_tokens=20)
    for category in CATEGORIES:
        _, source = edits(category)[0]
        out = language_model_edit(generate, source.input_caption, category, examples)
        assert isinstance(out, Rejection) and out.reason
