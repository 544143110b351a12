"""Minimal-change pairs (VisMin): two captioned images that differ by one object, attribute, count or relation.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Callable, Collection, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..attributes import ATTRIBUTES, RELATIONS
from ..render import Rendering, check_image_size, render
from ..rng import check_seed
from ..sampling import place_object
from ..scene import Obj, Scene, project, x_limit
from ..text import PHRASE_ORDER, count_phrase, object_phrase, relation_caption
from .common import VIEW_MINIMAL_CHANGE, check_choices, check_count, item_seeds


CATEGORIES = ("object", "attribute", "counting", "relation")
# Distractor objects per scene, besides the named ones (inclusive range).
DISTRACTORS = (1, 4)
# Identical objects in a counting scene before one is removed (inclusive range).
COUNTS = (2, 4)
# A relation is drawn only when it is clear in the image: left/right needs the centres SIDE_GAP image widths apart
# (in the same order as in the world), front/behind needs depths DEPTH_GAP world units apart.
SIDE_GAP, DEPTH_GAP = 0.1, 0.25
# Drafts of one item before giving up (a draft fails when there is no free spot; a few percent do).
MAX_DRAFTS = 200
# Every look an object can have: one dict per combination of size, colour, material and shape.
ALL_LOOKS = tuple(dict(zip(ATTRIBUTES, values)) for values in itertools.product(*ATTRIBUTES.values()))


@dataclass(frozen=True)
class MinimalEdit:
    """One minimal change: both scenes and captions, the edited phrases, and the edited objects of each scene.

    `objects1` is empty when the edit removed the object (counting).
    """

    category: str
    scene0: Scene
    scene1: Scene
    caption0: str
    caption1: str
    source_phrase: str
    edited_phrase: str
    objects0: tuple[int, ...]
    objects1: tuple[int, ...]


def field_sets(required: Collection[str]) -> list[tuple[str, ...]]:
    """Every choice of attributes for a phrase that contains `required`, in phrase order (size, colour, material,
    shape).
    """
    optional = [name for name in PHRASE_ORDER if name not in required]
    chosen = itertools.chain.from_iterable(itertools.combinations(optional, k) for k in range(len(optional) + 1))
    return [tuple(name for name in PHRASE_ORDER if name in required or name in extra) for extra in chosen]


def look_filter(obj: Obj, fields: Sequence[str]) -> dict[str, str]:
    """The object's values of `fields`, usable as Oracle filters and as object_phrase input."""
    return {name: getattr(obj, name) for name in fields}


def in_frame(obj: Obj) -> bool:
    """Whether the object fits inside the image at the reference camera (edits can move or grow objects)."""
    return abs(obj.x) <= x_limit(obj.depth, obj.radius)


def mask_box(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """Box (x, y, w, h) around the True pixels of a (H, W) mask; None when it is empty."""
    rows, cols = torch.nonzero(mask.any(dim=1)).flatten(), torch.nonzero(mask.any(dim=0)).flatten()
    if len(rows) == 0:
        return None
    # w = last column - first column + 1, h likewise with rows
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def object_box(rendering: Rendering, b: int, objects: Sequence[int]) -> torch.Tensor:
    """(4,) int64 box x, y, w, h in pixels around the visible pixels of `objects` in image b."""
    box = mask_box(torch.isin(rendering.ids[b], torch.tensor(list(objects), device=rendering.ids.device)))
    if box is None:
        raise ValueError(f"objects {list(objects)} are not visible in image {b}")
    return torch.tensor(box, dtype=torch.long)


def edit_boxes(
    rendering: Rendering, b0: int, objects0: Sequence[int], b1: int, objects1: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes of the edited objects in images b0 and b1. Where an object is absent (added or removed), its box
    there is the region it occupies in the other image.
    """
    box0 = object_box(rendering, b0, objects0) if objects0 else None
    box1 = object_box(rendering, b1, objects1) if objects1 else box0
    return (box1 if box0 is None else box0), box1


def _draw(rng: np.random.Generator, scene: Scene, **kwargs) -> Obj | None:
    """A new object at a free spot of `scene` (attributes not given are random), or None."""
    return place_object(scene, int(rng.integers(2**62)), **kwargs)


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


def _with_distractors(rng: np.random.Generator, scene: Scene, avoid: Sequence[dict[str, str]]) -> Scene | None:
    """Add 1-4 objects that match none of the `avoid` filters, so the named phrases keep one meaning."""
    looks = [look for look in ALL_LOOKS if not any(f.items() <= look.items() for f in avoid)]
    for _ in range(int(rng.integers(DISTRACTORS[0], DISTRACTORS[1] + 1))):
        obj = _draw(rng, scene, **_pick(rng, looks))
        if obj is None:
            return None
        scene = scene.add(obj)
    return scene


def _change_one(rng: np.random.Generator, category: str, fields: Sequence[str], attribute: str) -> MinimalEdit | None:
    """Object 0 changes `attribute` to another value; captions "a <phrase>" before and after."""
    target = _draw(rng, Scene())
    value = _pick(rng, [v for v in ATTRIBUTES[attribute] if v != getattr(target, attribute)])
    edited = dataclasses.replace(target, **{attribute: value})
    before, after = look_filter(target, fields), look_filter(edited, fields)
    scene0 = _with_distractors(rng, Scene((target,)), [before, after])
    if scene0 is None or not in_frame(edited):
        return None
    scene1 = scene0.replace(0, **{attribute: value})
    if scene1.collides(edited, ignore=0):
        return None
    phrase0, phrase1 = object_phrase(before), object_phrase(after)
    return MinimalEdit(category, scene0, scene1, f"a {phrase0}", f"a {phrase1}", phrase0, phrase1, (0,), (0,))


def _object_edit(rng: np.random.Generator) -> MinimalEdit | None:
    return _change_one(rng, "object", _pick(rng, field_sets({"color", "shape"})), "shape")


def _attribute_edit(rng: np.random.Generator) -> MinimalEdit | None:
    attribute = _pick(rng, ("color", "material", "size"))
    return _change_one(rng, "attribute", _pick(rng, field_sets({attribute, "shape"})), attribute)


def _counting_edit(rng: np.random.Generator) -> MinimalEdit | None:
    """n identical objects, then one fewer: "three red cubes" -> "two red cubes"."""
    n = int(rng.integers(COUNTS[0], COUNTS[1] + 1))
    look = _pick(rng, ALL_LOOKS)
    scene = Scene()
    for _ in range(n):
        obj = _draw(rng, scene, **look)
        if obj is None:
            return None
        scene = scene.add(obj)
    kind = look_filter(scene.objects[0], _pick(rng, field_sets({"color", "shape"})))
    scene0 = _with_distractors(rng, scene, [kind])
    if scene0 is None:
        return None
    removed = int(rng.integers(n))
    caption0, caption1 = count_phrase(n, object_phrase(kind)), count_phrase(n - 1, object_phrase(kind))
    scene1 = scene0.remove(removed)
    return MinimalEdit("counting", scene0, scene1, caption0, caption1, caption0, caption1, (removed,), ())


def _clearly(a: Obj, relation: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Where an object b may stand so that "a <relation> b" clearly holds: a bool array over spots (x, depth)."""
    # "a left of b" and "a in front of b" need b's coordinates larger than a's; "right" and "behind" smaller.
    sign = 1.0 if relation in ("left", "front") else -1.0
    u_a = project(a.x, a.depth, a.radius)[0]

    def allowed(x: np.ndarray, depth: np.ndarray) -> np.ndarray:
        if relation in ("front", "behind"):
            return sign * (depth - a.depth) > DEPTH_GAP
        u = project(x, depth, a.radius)[0]  # the centre column does not depend on the radius
        return (sign * (x - a.x) > 0) & (sign * (u - u_a) > SIDE_GAP)

    return allowed


def _relation_edit(rng: np.random.Generator) -> MinimalEdit | None:
    """Objects 0 and 1 in a clear relation swap places: "a red cube left of a blue sphere" -> the converse."""
    relation = _pick(rng, RELATIONS)
    a = _draw(rng, Scene())
    fields_a = look_filter(a, _pick(rng, field_sets({"color", "shape"})))
    look_b = _pick(rng, [look for look in ALL_LOOKS if not fields_a.items() <= look.items()])
    b = _draw(rng, Scene((a,)), where=_clearly(a, relation), **look_b)
    if b is None:
        return None
    # b's look differs from a's in a field of a's phrase, so some phrase for b does not fit a (all fields at worst)
    phrases_b = [look_filter(b, fields) for fields in field_sets({"color", "shape"})]
    fields_b = _pick(rng, [f for f in phrases_b if not a.matches(**f)])
    scene0 = _with_distractors(rng, Scene((a, b)), [fields_a, fields_b])
    if scene0 is None:
        return None
    scene1 = scene0.replace(0, x=b.x, depth=b.depth).replace(1, x=a.x, depth=a.depth)
    if any(not in_frame(scene1.objects[k]) or scene1.collides(scene1.objects[k], ignore=k) for k in (0, 1)):
        return None
    phrase_a, phrase_b = object_phrase(fields_a), object_phrase(fields_b)
    caption0, caption1 = relation_caption(phrase_a, relation, phrase_b), relation_caption(phrase_b, relation, phrase_a)
    return MinimalEdit("relation", scene0, scene1, caption0, caption1, caption0, caption1, (0, 1), (0, 1))


_EDITS: dict[str, Callable[[np.random.Generator], MinimalEdit | None]] = {
    "object": _object_edit, "attribute": _attribute_edit, "counting": _counting_edit, "relation": _relation_edit,
}


def minimal_edit(category: str, seed: int, index: int = 0) -> MinimalEdit:
    """A random minimal edit of `category`, the same for the same (seed, index).

    Drafts that do not fit (no free spot, a collision after the edit) are redrawn.
    """
    if category not in _EDITS:
        raise ValueError(f"unknown category {category!r}; choose from {list(CATEGORIES)}")
    for attempt in range(MAX_DRAFTS):
        edit = _EDITS[category](np.random.default_rng(item_seeds(seed, [index], VIEW_MINIMAL_CHANGE, attempt)))
        if edit is not None:
            return edit
    raise RuntimeError(f"no {category} edit fits after {MAX_DRAFTS} drafts (seed {seed}, index {index})")


class MinimalChangePairs(Dataset):
    """VisMin-style pairs (c0, i0), (c1, i1) that differ by one minimal change; n items spread evenly over
    `categories` (item i has category categories[i % len(categories)]).

    Item: image0, image1 (3, size, size) uint8; caption0, caption1; category; scene0, scene1; source_phrase,
    edited_phrase; box0, box1: (4,) int64 x, y, w, h of the edited region in each image.
    """

    def __init__(self, n: int, size: int = 64, seed: int = 0, categories: Sequence[str] = CATEGORIES):
        n, size, seed = check_count("n", n, minimum=1), check_image_size(size), check_seed(seed)
        categories = check_choices("categories", categories, CATEGORIES)
        self.edits = [minimal_edit(categories[i % len(categories)], seed, i) for i in range(n)]
        rendering = render([e.scene0 for e in self.edits] + [e.scene1 for e in self.edits], size)
        self.images0, self.images1 = rendering.images[:n], rendering.images[n:]
        self.boxes = [edit_boxes(rendering, i, e.objects0, n + i, e.objects1) for i, e in enumerate(self.edits)]

    def __len__(self) -> int:
        return len(self.edits)

    def __getitem__(self, index: int) -> dict:
        edit = self.edits[index]
        return {
            "image0": self.images0[index], "caption0": edit.caption0,
            "image1": self.images1[index], "caption1": edit.caption1,
            "category": edit.category, "scene0": edit.scene0, "scene1": edit.scene1,
            "source_phrase": edit.source_phrase, "edited_phrase": edit.edited_phrase,
            "box0": self.boxes[index][0], "box1": self.boxes[index][1],
        }

    def describe(self) -> str:
        """Counts per category, e.g. for the notebook tour."""
        counts = {c: sum(e.category == c for e in self.edits) for c in dict.fromkeys(e.category for e in self.edits)}
        return f"{len(self)} minimal-change pairs at {self.images0.shape[-1]} px: " + ", ".join(
            f"{c} {k}" for c, k in counts.items())
