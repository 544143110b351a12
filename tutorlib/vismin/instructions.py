"""Edit instructions in VisMin's shape, written by a grammar over a scene graph, and their validator.

Object and attribute edits are phrase edits of a caption (VisMin's InputCaption, SelectedPhrase, EditedPhrase,
EditedRegionPhrase, EditedCaption, Category): SelectedPhrase names the object to change (grounding finds it in
the source image), EditedRegionPhrase is the text of the edited region (what the inpainter paints there).
Counting and relation edits are layouts: phrases with boxes before and after (counting removes one box, relation
swaps two). Any writer of edits (the grammar here, a language model in `language_model.py`) goes through
`validate`, which says why an edit is rejected.
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.oracle import Oracle
from tutorlib.world.render import Rendering
from tutorlib.world.scene import Scene
from tutorlib.world.text import count_phrase, object_phrase, relation_caption, tokenize, world_vocabulary
from tutorlib.world.views.minimal_change import CATEGORIES, field_sets, look_filter, object_box
from tutorlib.world.views.simat import phrase_filter

Box = tuple[int, int, int, int]  # x, y, w, h in pixels
PHRASE_EDITS = ("object", "attribute")
LAYOUT_EDITS = ("counting", "relation")
# Attributes an attribute edit may change (the object edit changes the shape).
EDITABLE_ATTRIBUTES = ("color", "material", "size")
# Words an instruction may use: the world's words plus the caption glue.
VOCABULARY = world_vocabulary(["to the left of", "to the right of", "in front of", "behind"])


@dataclass(frozen=True)
class EditInstruction:
    """An object or attribute edit: replace `selected_phrase` in the caption by `edited_phrase`. The region to
    repaint is the object `selected_phrase` names in the source image (what grounding looks for), and
    `edited_region_phrase` is what to paint there, the edited object (VisMin: SelectedPhrase "glass of ice water",
    EditedRegionPhrase "A glass of milk"). Introduced in notebook 04_vismin_minimal_change."""

    category: str
    input_caption: str
    selected_phrase: str
    edited_phrase: str
    edited_region_phrase: str
    edited_caption: str

    def to_json(self) -> dict:
        """VisMin's keys."""
        return {"InputCaption": self.input_caption, "SelectedPhrase": self.selected_phrase,
                "EditedPhrase": self.edited_phrase, "EditedRegionPhrase": self.edited_region_phrase,
                "EditedCaption": self.edited_caption, "Category": self.category}


@dataclass(frozen=True)
class LayoutEdit:
    """A counting or relation edit as two layouts of (phrase, box). Introduced in notebook 04_vismin_minimal_change."""

    category: str
    input_caption: str
    edited_caption: str
    layout0: tuple[tuple[str, Box], ...]
    layout1: tuple[tuple[str, Box], ...]

    def to_json(self) -> dict:
        return {"InputCaption": self.input_caption, "Category": self.category, "EditedCaption": self.edited_caption,
                "Layout0": [[p, list(b)] for p, b in self.layout0], "Layout1": [[p, list(b)] for p, b in self.layout1]}


Edit = EditInstruction | LayoutEdit


@dataclass(frozen=True)
class Rejection:
    """Why an edit was not accepted, with the text or edit it came from. Introduced in notebook 04."""

    reason: str
    source: str = ""


def visible_objects(rendering: Rendering, b: int) -> list[int]:
    """Indices of the objects with at least one visible pixel in image b. Introduced in notebook 04."""
    return sorted(int(i) for i in rendering.ids[b].unique() if i >= 0)


def visible_boxes(rendering: Rendering, b: int) -> dict[int, Box]:
    """Box (x, y, w, h) of every object visible in image b, by object index. Introduced in notebook 04."""
    return {i: tuple(int(v) for v in object_box(rendering, b, [i])) for i in visible_objects(rendering, b)}


def true_region(scene: Scene, rendering: Rendering, b: int, edit: "Edit") -> Box:
    """The exact box of the region an edit changes in image b: the object its SelectedPhrase names, or for a
    layout edit its first Layout0 box. Introduced in notebook 04_vismin_minimal_change."""
    if isinstance(edit, LayoutEdit):
        return edit.layout0[0][1]
    return visible_boxes(rendering, b)[Oracle(scene).select(**phrase_filter(edit.selected_phrase))[0]]


def unique_phrases(scene: Scene, index: int, required: Sequence[str], among: Sequence[int]) -> list[dict[str, str]]:
    """Filters (attribute -> value) that contain `required` and match object `index` alone among `among`.

    Introduced in notebook 04_vismin_minimal_change.
    """
    objects = [scene.objects[i] for i in among]
    filters = [look_filter(scene.objects[index], fields) for fields in field_sets(required)]
    return [f for f in filters if sum(o.matches(**f) for o in objects) == 1]


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _phrase_edit(rng, scene: Scene, boxes: dict[int, Box], category: str) -> Edit | Rejection:
    """Change the shape (object) or one of colour, material, size (attribute) of one uniquely named object."""
    attribute = "shape" if category == "object" else _pick(rng, EDITABLE_ATTRIBUTES)
    visible = list(boxes)
    order = [visible[k] for k in rng.permutation(len(visible))]
    for i in order:
        for before in unique_phrases(scene, i, {attribute, "shape"}, visible):
            values = [v for v in ATTRIBUTES[attribute] if v != before[attribute]]
            for value in (values[k] for k in rng.permutation(len(values))):
                after = {**before, attribute: value}
                if any(scene.objects[j].matches(**after) for j in visible if j != i):
                    continue  # the edited phrase would name another object too
                selected, edited = object_phrase(before), object_phrase(after)
                others = [j for j in visible if j != i and unique_phrases(scene, j, {"shape"}, visible)]
                if not others:
                    return EditInstruction(category, f"a {selected}", selected, edited, edited, f"a {edited}")
                j = _pick(rng, others)
                relation = scene.true_relation(i, j, lateral=bool(rng.integers(2)))
                other = object_phrase(unique_phrases(scene, j, {"shape"}, visible)[0])
                return EditInstruction(category, relation_caption(selected, relation, other), selected, edited,
                                       edited, relation_caption(edited, relation, other))
    return Rejection(f"no uniquely named object whose {attribute} can change to a free value")


def _counting_edit(rng, scene: Scene, boxes: dict[int, Box]) -> Edit | Rejection:
    """n objects of one kind -> n - 1: the layout loses one box."""
    visible = list(boxes)
    kinds = []
    for fields in field_sets({"shape"}):
        # sorted, not a set's order: that follows the string hashes, which change with PYTHONHASHSEED
        for kind in sorted({tuple(look_filter(scene.objects[i], fields).items()) for i in visible}):
            members = [i for i in visible if scene.objects[i].matches(**dict(kind))]
            if len(members) >= 2 and len(members) == Oracle(scene).count(**dict(kind)):
                kinds.append((dict(kind), members))
    if not kinds:
        return Rejection("no kind of object appears twice or more, all visible")
    kind, members = kinds[int(rng.integers(len(kinds)))]
    phrase, n = object_phrase(kind), len(members)
    removed = int(rng.integers(n))
    layout0 = tuple((phrase, boxes[i]) for i in members)
    layout1 = tuple(entry for k, entry in enumerate(layout0) if k != removed)
    return LayoutEdit("counting", count_phrase(n, phrase), count_phrase(n - 1, phrase), layout0, layout1)


def _relation_edit(rng, scene: Scene, boxes: dict[int, Box]) -> Edit | Rejection:
    """Two uniquely named objects swap places: "a X left of a Y" -> "a Y left of a X"."""
    visible = list(boxes)
    named = {i: unique_phrases(scene, i, {"shape"}, visible) for i in visible}
    named = {i: phrases[0] for i, phrases in named.items() if phrases}
    if len(named) < 2:
        return Rejection("fewer than two uniquely named visible objects")
    i, j = (list(named)[k] for k in rng.choice(len(named), 2, replace=False))
    relation = scene.true_relation(i, j, lateral=bool(rng.integers(2)))
    a, b = object_phrase(named[i]), object_phrase(named[j])
    return LayoutEdit("relation", relation_caption(a, relation, b), relation_caption(b, relation, a),
                      ((a, boxes[i]), (b, boxes[j])), ((a, boxes[j]), (b, boxes[i])))


def grammar_edit(scene: Scene, boxes: dict[int, Box], category: str, seed: int) -> Edit | Rejection:
    """An edit of `category` for a scene whose visible objects have `boxes`, written from the scene graph.

    The default writer of edit instructions; the same (scene, category, seed) gives the same edit.
    Introduced in notebook 04_vismin_minimal_change.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose from {list(CATEGORIES)}")
    rng = np.random.default_rng(seed)
    if not boxes:
        return Rejection("no visible object")
    if category in PHRASE_EDITS:
        return _phrase_edit(rng, scene, boxes, category)
    return _counting_edit(rng, scene, boxes) if category == "counting" else _relation_edit(rng, scene, boxes)


def _phrase_reasons(phrase: str, what: str) -> tuple[dict[str, str] | None, list[str]]:
    if not phrase.strip():
        return None, [f"{what} is empty"]
    try:
        return phrase_filter(phrase), []
    except ValueError as error:
        return None, [f"{what}: {error}"]


def _box_reasons(box: Sequence[int], size: int) -> list[str]:
    x, y, w, h = box
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > size or y + h > size:
        return [f"box {list(box)} lies outside the {size} x {size} image or is empty"]
    return []


def _region_reasons(edit: EditInstruction, region: dict[str, str], after: dict[str, str],
                    changed: Sequence[str]) -> list[str]:
    """EditedRegionPhrase is what the inpainter paints in the region: it must describe the edited object, i.e.
    name every attribute the edit gives a new value and agree with EditedPhrase on every attribute both name."""
    wrong = [a for a in after if region.get(a, None if a in changed else after[a]) != after[a]]
    if not wrong:
        return []
    return [f"EditedRegionPhrase {edit.edited_region_phrase!r} (what is painted) does not describe the edited "
            f"object {edit.edited_phrase!r} (attributes {wrong})"]


def _instruction_reasons(edit: EditInstruction, oracle: Oracle | None) -> list[str]:
    before, reasons = _phrase_reasons(edit.selected_phrase, "SelectedPhrase")
    after, more = _phrase_reasons(edit.edited_phrase, "EditedPhrase")
    region, region_reasons = _phrase_reasons(edit.edited_region_phrase, "EditedRegionPhrase")
    reasons += more + region_reasons
    if f" {edit.selected_phrase} " not in f" {edit.input_caption} ":
        reasons.append(f"SelectedPhrase {edit.selected_phrase!r} is not in the InputCaption {edit.input_caption!r}")
    elif edit.input_caption.replace(edit.selected_phrase, edit.edited_phrase, 1) != edit.edited_caption:
        reasons.append("EditedCaption is not the InputCaption with SelectedPhrase replaced by EditedPhrase")
    if before is not None and after is not None:
        changed = sorted(a for a in set(before) | set(after) if before.get(a) != after.get(a))
        if edit.category == "object":
            minimal, needed = changed == ["shape"], "the shape"
        else:
            minimal, needed = len(changed) == 1 and changed[0] in EDITABLE_ATTRIBUTES, "one of " + ", ".join(EDITABLE_ATTRIBUTES)
        if not minimal:
            reasons.append(f"a minimal {edit.category} edit changes {needed}; this one changes {changed or 'nothing'}")
        if region is not None:
            reasons += _region_reasons(edit, region, after, changed)
        if oracle is not None and not oracle.exists(**before):
            reasons.append(f"SelectedPhrase {edit.selected_phrase!r} names no object in the image")
    return reasons


def _layout_reasons(edit: LayoutEdit, size: int | None) -> list[str]:
    reasons = []
    for phrase, box in edit.layout0 + edit.layout1:
        reasons += _phrase_reasons(phrase, "layout phrase")[1]
        if size is not None:
            reasons += _box_reasons(box, size)
    if edit.category == "counting" and len(edit.layout1) != len(edit.layout0) - 1:
        reasons.append(f"a counting edit removes one box: {len(edit.layout0)} -> {len(edit.layout1)}")
    if edit.category == "relation":
        swapped = len(edit.layout0) == 2 and [p for p, _ in edit.layout0] == [p for p, _ in edit.layout1] and \
            [b for _, b in edit.layout0] == [b for _, b in edit.layout1][::-1]
        if not swapped:
            reasons.append("a relation edit swaps the boxes of exactly two phrases")
    return reasons


def validate(edit: Edit, scene: Scene | None = None, size: int | None = None) -> list[str]:
    """Reasons to reject `edit` (empty when it is fine): unknown category or words, empty phrases, a caption
    that is not the minimally edited input, boxes outside a `size` x `size` image, and (with the scene graph)
    a phrase that names no object in the image. Introduced in notebook 04_vismin_minimal_change.
    """
    expected = PHRASE_EDITS if isinstance(edit, EditInstruction) else LAYOUT_EDITS
    if edit.category not in expected:
        return [f"category {edit.category!r} is not one of {list(expected)} for a {type(edit).__name__}"]
    texts = [edit.input_caption, edit.edited_caption]
    if not all(t.strip() for t in texts):
        return ["InputCaption or EditedCaption is empty"]
    unknown = sorted({w for t in texts for w in tokenize(t) if w not in VOCABULARY.index})
    reasons = [f"unknown words {unknown}"] if unknown else []
    if edit.input_caption == edit.edited_caption:
        reasons.append("EditedCaption equals InputCaption")
    if isinstance(edit, EditInstruction):
        return reasons + _instruction_reasons(edit, Oracle(scene) if scene is not None else None)
    return reasons + _layout_reasons(edit, size)


__all__ = ["Box", "EditInstruction", "LayoutEdit", "Edit", "Rejection", "visible_boxes", "unique_phrases",
           "grammar_edit", "validate"]
