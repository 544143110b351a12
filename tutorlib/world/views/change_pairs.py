"""Change pairs (CLEVR-Change): a scene before, after one semantic change, and after only a view change.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..attributes import ATTRIBUTES
from ..oracle import Oracle
from ..render import check_image_size, render
from ..rng import check_seed
from ..sampling import place_object, sample_scene, sample_scenes
from ..scene import Camera, Light, Scene, project
from ..text import object_phrase
from .common import VIEW_CHANGE_PAIRS, SplitDataset, check_choices, check_count, item_seeds, split_names
from .minimal_change import MAX_DRAFTS, edit_boxes, field_sets, look_filter

CHANGE_TYPES = ("color", "material", "add", "drop", "move")
OBJECTS = (3, 6)  # objects in the scene before the change (inclusive range)
# Several phrasings per change; {phrase} names the changed object, {rest} names it without the changed attribute.
CHANGE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "color": ("the {phrase} changed to {new}", "the {rest} that was {old} is now {new}",
              "someone painted the {phrase} {new}"),
    "material": ("the {phrase} became {new}", "the {rest} that was {old} is now {new}",
                 "the {phrase} is now made of {new}"),
    "add": ("someone added a {phrase}", "a {phrase} has been added", "there is a new {phrase}"),
    "drop": ("the {phrase} is gone", "someone removed the {phrase}", "the {phrase} has disappeared"),
    "move": ("the {phrase} moved", "someone moved the {phrase}", "the {phrase} is in a different place"),
}
NO_CHANGE_CAPTIONS = (
    "no change was made", "the scene remains the same", "nothing has changed", "there is no change",
    "the two scenes are the same",
)
# View jitter at full strength: camera pan (world units) and tilt (image fraction), light direction noise
# (added to the unit vector, then renormalised) and intensity change; each drawn with magnitude in [1/2, 1] of these.
MAX_PAN, MAX_TILT, MAX_LIGHT_TURN, MAX_DIMMING = 0.08, 0.03, 0.3, 0.2
# Strength of the jitter on the semantic "after" image (CLEVR-Change moves its view slightly too).
SEMANTIC_JITTER = 0.3


@dataclass(frozen=True)
class SceneChange:
    """One semantic change: the scenes, its captions, and the changed object's index in each scene
    (empty where it is absent: before an add, after a drop).
    """

    change_type: str
    before: Scene
    after: Scene
    captions: tuple[str, ...]
    objects_before: tuple[int, ...]
    objects_after: tuple[int, ...]


def identifying_fields(
    rng: np.random.Generator, scene: Scene, index: int, required: Sequence[str] = ()
) -> tuple[str, ...] | None:
    """A random choice of attributes (always with the shape and `required`) that picks out object `index`
    alone in `scene`, checked with the Oracle; None when no choice does.
    """
    obj, oracle = scene.objects[index], Oracle(scene)
    unique = [f for f in field_sets({"shape", *required}) if oracle.select(**look_filter(obj, f)) == [index]]
    return unique[int(rng.integers(len(unique)))] if unique else None


def _captions(change_type: str, **words: str) -> tuple[str, ...]:
    return tuple(template.format(**words) for template in CHANGE_TEMPLATES[change_type])


def _new_value(rng: np.random.Generator, change_type: str, before: Scene) -> SceneChange | None:
    """Object i's color or material (`change_type`) changes to another value."""
    i = int(rng.integers(len(before)))
    obj = before.objects[i]
    fields = identifying_fields(rng, before, i, (change_type,))
    if fields is None:
        return None
    values = [v for v in ATTRIBUTES[change_type] if v != getattr(obj, change_type)]
    new = values[int(rng.integers(len(values)))]
    phrase, rest = object_phrase(obj, fields), object_phrase(obj, [f for f in fields if f != change_type])
    captions = _captions(change_type, phrase=phrase, rest=rest, old=getattr(obj, change_type), new=new)
    return SceneChange(change_type, before, before.replace(i, **{change_type: new}), captions, (i,), (i,))


def _add(rng: np.random.Generator, before: Scene) -> SceneChange | None:
    obj = place_object(before, int(rng.integers(2**62)))
    if obj is None:
        return None
    after = before.add(obj)
    fields = identifying_fields(rng, after, len(before))
    if fields is None:
        return None
    return SceneChange("add", before, after, _captions("add", phrase=object_phrase(obj, fields)), (), (len(before),))


def _drop(rng: np.random.Generator, before: Scene) -> SceneChange | None:
    i = int(rng.integers(len(before)))
    fields = identifying_fields(rng, before, i)
    if fields is None:
        return None
    captions = _captions("drop", phrase=object_phrase(before.objects[i], fields))
    return SceneChange("drop", before, before.remove(i), captions, (i,), ())


def _move(rng: np.random.Generator, before: Scene) -> SceneChange | None:
    """Object i moves to a free spot whose image box does not overlap its old one."""
    i = int(rng.integers(len(before)))
    obj = before.objects[i]
    fields = identifying_fields(rng, before, i)
    u0, v0, r0 = project(obj.x, obj.depth, obj.radius)

    def away(x: np.ndarray, depth: np.ndarray) -> np.ndarray:
        # boxes are disjoint when the centres differ by more than the sum of half-sizes along u or along v
        u, v, r = project(x, depth, obj.radius)
        return (np.abs(u - u0) > r + r0) | (np.abs(v - v0) > r + r0)

    spot = place_object(before.remove(i), int(rng.integers(2**62)), where=away, **obj.attributes())
    if fields is None or spot is None:
        return None
    after = before.replace(i, x=spot.x, depth=spot.depth)
    return SceneChange("move", before, after, _captions("move", phrase=object_phrase(obj, fields)), (i,), (i,))


_CHANGES: dict[str, Callable[[np.random.Generator, Scene], SceneChange | None]] = {
    "color": lambda rng, scene: _new_value(rng, "color", scene),
    "material": lambda rng, scene: _new_value(rng, "material", scene),
    "add": _add, "drop": _drop, "move": _move,
}


def _draw_change(rng: np.random.Generator, change_type: str, before: Scene, seed: int, index: int) -> SceneChange:
    """A change of `change_type`; when none fits the scene, the item's next scenes are tried."""
    for attempt in range(1, MAX_DRAFTS + 1):
        change = _CHANGES[change_type](rng, before)
        if change is not None:
            return change
        before = sample_scene(int(item_seeds(seed, [index], VIEW_CHANGE_PAIRS, attempt)[0]), OBJECTS)
    raise RuntimeError(f"no {change_type} change fits after {MAX_DRAFTS} scenes (seed {seed}, index {index})")


def jitter_view(rng: np.random.Generator, scene: Scene, camera: float, light: float) -> Scene:
    """The scene seen from a slightly shifted camera and lit slightly differently; `camera` and `light` scale
    the jitter (0: unchanged, 1: full strength).
    """
    # each jitter = strength * random sign * U(1/2, 1) * its maximum
    pan, tilt, dimming = np.array([camera, camera, light]) * rng.choice([-1.0, 1.0], 3) * rng.uniform(0.5, 1.0, 3)
    turned = np.array(scene.light.direction) + light * MAX_LIGHT_TURN * rng.uniform(-1.0, 1.0, 3)
    return scene.with_view(
        Camera(float(scene.camera.pan + MAX_PAN * pan), float(scene.camera.tilt + MAX_TILT * tilt)),
        Light(tuple(float(c) for c in turned / math.sqrt(float(turned @ turned))),
              float(scene.light.intensity * (1.0 + MAX_DIMMING * dimming))),
    )


class ChangePairs(SplitDataset):
    """CLEVR-Change-style triples: a scene before (3-6 objects), after one semantic change of one of `types`
    (item i has type types[i % len(types)]), and a distractor with only the view or light changed. Splits are
    contiguous index ranges (train first): the scenes are independent draws, so this is a random split.

    Item: before, after, distractor (3, size, size) uint8; change_type; change_captions, no_change_captions
    (lists of str); scene_before, scene_after, scene_distractor; index; split; box_before, box_after: (4,) int64
    x, y, w, h of the changed object (where it is absent, its region in the other image).
    """

    def __init__(self, n: int, size: int = 64, seed: int = 0, types: Sequence[str] = CHANGE_TYPES,
                 split_shares: Sequence[float] = (0.8, 0.1, 0.1)):
        n, size, seed = check_count("n", n, minimum=1), check_image_size(size), check_seed(seed)
        types = check_choices("types", types, CHANGE_TYPES)
        self.splits = split_names(n, split_shares)
        seeds = item_seeds(seed, range(n), VIEW_CHANGE_PAIRS)
        firsts = sample_scenes(seeds, OBJECTS).scenes()
        self.changes, self.distractors = [], []
        for i in range(n):
            rng = np.random.default_rng(seeds[i])
            change = _draw_change(rng, types[i % len(types)], firsts[i], seed, i)
            # the distractor changes the camera, the light, or both; the semantic image gets a weaker jitter
            camera, light = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0))[int(rng.integers(3))]
            self.distractors.append(jitter_view(rng, change.before, camera, light))
            self.changes.append(
                dataclasses.replace(change, after=jitter_view(rng, change.after, SEMANTIC_JITTER, SEMANTIC_JITTER))
            )
        rendering = render([c.before for c in self.changes] + [c.after for c in self.changes] + self.distractors, size)
        self.before, self.after, self.distractor = rendering.images.split(n)
        self.boxes = [edit_boxes(rendering, i, c.objects_before, n + i, c.objects_after)
                      for i, c in enumerate(self.changes)]

    def __len__(self) -> int:
        return len(self.changes)

    def __getitem__(self, index: int) -> dict:
        change = self.changes[index]
        return {
            "before": self.before[index], "after": self.after[index], "distractor": self.distractor[index],
            "change_type": change.change_type, "change_captions": list(change.captions),
            "no_change_captions": list(NO_CHANGE_CAPTIONS),
            "scene_before": change.before, "scene_after": change.after, "scene_distractor": self.distractors[index],
            "index": index, "split": self.splits[index],
            "box_before": self.boxes[index][0], "box_after": self.boxes[index][1],
        }

    def describe(self) -> str:
        """Counts per change type and split, e.g. for the notebook tour."""
        types = [c.change_type for c in self.changes]
        by_type = ", ".join(f"{t} {types.count(t)}" for t in dict.fromkeys(types))
        by_split = ", ".join(f"{s} {self.splits.count(s)}" for s in dict.fromkeys(self.splits))
        return f"{len(self)} change pairs at {self.before.shape[-1]} px: {by_type}; splits: {by_split}"
