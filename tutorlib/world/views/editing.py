"""Iterative editing dialogues in the style of GeNeVA's i-CLEVR: the data of notebook 01_sscr_iterative_editing.

A dialogue starts from an empty floor. Each turn adds one object and says where, in an instruction that is
TRUE of the resulting scene graph:

    turn 1   "add a red cube at the center"                 (a region of the floor)
    turn t   "add a blue sphere behind it on the left"      (relative to the previous object, "it")
             "add a green cylinder in front of the red cube on the right"   (relative to a named earlier object)

"behind it on the left" means two relations to the reference object, both checked with `Scene.related`:
the new object is behind (farther) AND to the left of it, each with a margin so that the picture agrees
with the words. The spot is drawn with `place_object(where=...)`; when there is no free spot the
generator tries the other relations and references, and then restarts the dialogue from a different
random stream, so an instruction is never false.

An item mirrors a GeNeVA sample: the canvas after every turn, the empty background, the instructions,
the cumulative bag of "shape color" entities and their coordinates, plus the scene graphs (ground truth).
Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...progress import progress as _progress
from ..attributes import COLORS, ENTITIES, MATERIALS, RELATIONS, SHAPES, SIZE_RADIUS, SIZES
from ..render import check_image_size, render
from ..rng import check_seed, uniform
from .common import VIEW_EDITING, check_choices, check_count, item_seeds
from ..sampling import place_object
from ..scene import FAR, NEAR, Obj, Scene, project, x_limit
from ..text import object_phrase

# ---------------------------------------------------------------------------------------------------------
# Where: the regions of the floor for the first turn, and the relations for later turns.
# ---------------------------------------------------------------------------------------------------------
# The floor is cut in a 3 x 3 grid: lateral position s = x / x_limit(depth) in [-1, 1] (left to right) and
# depth fraction d = (depth - NEAR) / (FAR - NEAR) in [0, 1] (front to back). Placement keeps a gap
# around the cut lines so that an object is never on the border of the region its instruction names.
LATERAL_BANDS = {"left": (-1.0, -1 / 3), "center": (-1 / 3, 1 / 3), "right": (1 / 3, 1.0)}
DEPTH_BANDS = {"front": (0.0, 1 / 3), "middle": (1 / 3, 2 / 3), "back": (2 / 3, 1.0)}
BAND_GAP = 0.05
REGION_PHRASES = {
    ("middle", "center"): "at the center",
    ("middle", "left"): "on the left",
    ("middle", "right"): "on the right",
    ("front", "center"): "in the front",
    ("back", "center"): "in the back",
    ("front", "left"): "in the front left",
    ("front", "right"): "in the front right",
    ("back", "left"): "in the back left",
    ("back", "right"): "in the back right",
}
# Relative placement: a depth relation and a lateral relation to the reference object.
DEPTH_WORDS = {"front": "in front of", "behind": "behind"}
LATERAL_WORDS = {"left": "on the left", "right": "on the right"}
# Margins that make the relation visible: depth (world units) and the image column (fraction of the width).
DEPTH_MARGIN = 0.08
LATERAL_MARGIN = 0.08
COLUMN_MARGIN = 0.02


def floor_coordinates(x, depth, radius):
    """(s, d): lateral position in [-1, 1] and depth fraction in [0, 1] of objects on the floor."""
    return np.asarray(x) / x_limit(np.asarray(depth), radius), (np.asarray(depth) - NEAR) / (FAR - NEAR)


def region_of(obj: Obj) -> tuple[str, str]:
    """The (depth band, lateral band) of the 3 x 3 floor grid that holds `obj`, e.g. ("back", "left").

    REGION_PHRASES turns it into words ("in the back left").
    """
    s, d = floor_coordinates(obj.x, obj.depth, obj.radius)
    lateral = "left" if s < -1 / 3 else "right" if s > 1 / 3 else "center"
    depth = "front" if d < 1 / 3 else "back" if d > 2 / 3 else "middle"
    return depth, lateral


def _region_where(region: tuple[str, str], radius: float):
    depth_band, lateral_band = region
    (s_lo, s_hi), (d_lo, d_hi) = LATERAL_BANDS[lateral_band], DEPTH_BANDS[depth_band]

    def where(x, depth):
        s, d = floor_coordinates(x, depth, radius)
        return (s > s_lo + BAND_GAP) & (s < s_hi - BAND_GAP) & (d > d_lo + BAND_GAP) & (d < d_hi - BAND_GAP)

    return where


def relation_where(ref: Obj, relation: str, radius: float):
    """Spots (x, depth) where a new object of `radius` stands in `relation` to `ref` with a visible margin:
    the depth differs by DEPTH_MARGIN for front / behind; for left / right both the floor position (by
    LATERAL_MARGIN) and the image column (by COLUMN_MARGIN) agree. Returns where(x, depth) -> bool array.
    """
    if relation not in RELATIONS:
        raise ValueError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")
    ref_u = project(ref.x, ref.depth, ref.radius)[0]

    def where(x, depth):
        x, depth = np.asarray(x), np.asarray(depth)
        if relation == "front":
            return depth < ref.depth - DEPTH_MARGIN
        if relation == "behind":
            return depth > ref.depth + DEPTH_MARGIN
        u = project(x, depth, radius)[0]
        if relation == "left":
            return (x < ref.x - LATERAL_MARGIN) & (u < ref_u - COLUMN_MARGIN)
        return (x > ref.x + LATERAL_MARGIN) & (u > ref_u + COLUMN_MARGIN)

    return where


def _relation_where(ref: Obj, depth_relation: str, lateral_relation: str, radius: float):
    """Spots that stand in both relations to `ref` ("behind it on the left")."""
    first, second = relation_where(ref, depth_relation, radius), relation_where(ref, lateral_relation, radius)
    return lambda x, depth: first(x, depth) & second(x, depth)


def entity_name(obj: Obj) -> str:
    """The i-CLEVR entity of an object: "shape color", e.g. "cube red".
    """
    return f"{obj.shape} {obj.color}"


# ---------------------------------------------------------------------------------------------------------
# The dataset.
# ---------------------------------------------------------------------------------------------------------
MAX_RESTARTS = 200
PLACEMENT_TRIES = 128
# Streams of one attempt: choices, then one placement stream per (turn, candidate).
_STREAM_CHOICES, _STREAM_PLACE = 11, 1000


class EditingDialogues(Dataset):
    """`n` dialogues of `turns` turns; each turn adds one object with a true instruction (see module doc).

    Objects of a dialogue are distinct "shape color" entities. Their size and material are drawn from
    `sizes` and `materials` (default: all "large" and "rubber", as in i-CLEVR); when several sizes or
    materials are allowed, the instruction names them too ("add a small red metal cube ...").
    `shapes` and `colors` restrict the entities. Images are rendered at `size` pixels when the dataset is
    built and kept in memory (1000 dialogues at 64 px: 61 MB, a few seconds on two CPU cores). Five large
    objects crowd the floor: about a third of the dialogues need a restart, and six or more large objects
    rarely fit (allow "small" in `sizes` for longer dialogues).

    Item (a dict):
        images        (turns, 3, H, W) uint8   the canvas after each turn
        background    (3, H, W) uint8          the empty floor
        instructions  list[str]                one per turn
        objects       (turns, 24) float32      cumulative bag over ENTITIES ("shape color")
        coords        (turns, 24, 3) float32   (column * 128, row * 128, depth) of each present entity, else 0
        scene_id      str                      zero-padded index, also the group name in the HDF5 file
        scenes        list[Scene]              the scene graph after each turn (ground truth)
        edits         list[dict]               what each turn did: entity, region (turn 1) or reference (object
                                               index), it (the reference was called "it") and relations
    """

    def __init__(
        self,
        n: int,
        size: int = 64,
        seed: int = 0,
        turns: int = 5,
        *,
        sizes: Sequence[str] = ("large",),
        materials: Sequence[str] = ("rubber",),
        shapes: Sequence[str] = SHAPES,
        colors: Sequence[str] = COLORS,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ):
        n, size, seed = check_count("n", n), check_image_size(size), check_seed(seed)
        sizes, materials = check_choices("sizes", sizes, SIZES), check_choices("materials", materials, MATERIALS)
        shapes, colors = check_choices("shapes", shapes, SHAPES), check_choices("colors", colors, COLORS)
        self.entities = ENTITIES
        allowed = [e for e in ENTITIES if e.split()[0] in shapes and e.split()[1] in colors]
        if isinstance(turns, bool) or not isinstance(turns, (int, np.integer)) or not 1 <= turns <= len(allowed):
            raise ValueError(f"turns must be an integer from 1 to {len(allowed)} (the entities that shapes and "
                             f"colors allow), got {turns!r}")
        self.n, self.size, self.seed, self.turns = n, size, seed, int(turns)
        self.sizes, self.materials = sizes, materials
        self._allowed = allowed
        self.restarts = 0  # how many dialogues needed a fresh stream (for the curious)

        dialogues = [self._dialogue(i) for i in range(self.n)]
        self.scenes: list[list[Scene]] = [d[0] for d in dialogues]
        self.instructions: list[list[str]] = [d[1] for d in dialogues]
        self.edits: list[list[dict]] = [d[2] for d in dialogues]
        self.scene_ids = [f"{i:06d}" for i in range(self.n)]
        self.objects, self.coords = self._bags()

        self.background = render(Scene(), self.size, device=device).images[0].cpu()
        flat = [scene for dialogue in self.scenes for scene in dialogue]
        chunks, step = [], 256
        bar = {} if progress else {"disable": True}
        for start in _progress(range(0, len(flat), step), desc="render dialogues", **bar):
            chunks.append(render(flat[start : start + step], self.size, device=device).images.cpu())
        images = torch.cat(chunks) if chunks else torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        self.images = images.view(self.n, self.turns, 3, self.size, self.size)

    # -- generation -------------------------------------------------------------------------------------
    def _dialogue(self, index: int) -> tuple[list[Scene], list[str], list[dict]]:
        for attempt in range(MAX_RESTARTS):
            key = int(item_seeds(self.seed, [index], VIEW_EDITING, attempt)[0])
            result = self._try_dialogue(key)
            if result is not None:
                self.restarts += attempt > 0
                return result
        raise RuntimeError(
            f"dialogue {index}: no layout found in {MAX_RESTARTS} attempts; allow smaller objects or fewer turns"
        )

    def _try_dialogue(self, key: int):
        k = len(self._allowed)
        draws = uniform([key], _STREAM_CHOICES, k + 6 * self.turns)[0]
        entities = [self._allowed[j] for j in np.argsort(draws[:k], kind="stable")[: self.turns]]
        turn_draws = draws[k:].reshape(self.turns, 6)
        pick = lambda values, u: values[min(int(u * len(values)), len(values) - 1)]  # noqa: E731
        fields = ("size", "color", "material", "shape") if len(self.sizes) > 1 else ("color", "material", "shape")
        if len(self.materials) == 1:
            fields = tuple(f for f in fields if f != "material")
        scene, scenes, instructions, edits = Scene(), [], [], []
        for t, entity in enumerate(entities):
            shape, color = entity.split()
            u = turn_draws[t]
            attrs = dict(shape=shape, color=color, size=pick(self.sizes, u[0]), material=pick(self.materials, u[1]))
            radius = SIZE_RADIUS[attrs["size"]]
            phrase = object_phrase(attrs, fields=fields)
            placed = None
            for c, candidate in enumerate(self._candidates(t, u, scene)):
                where = (_region_where(candidate["region"], radius) if t == 0 else
                         _relation_where(scene.objects[candidate["reference"]], *candidate["relations"], radius))
                obj = place_object(scene, key, stream=_STREAM_PLACE + 64 * t + c, where=where,
                                   tries=PLACEMENT_TRIES, **attrs)
                if obj is not None:
                    placed = (obj, candidate)
                    break
            if placed is None:
                return None
            obj, candidate = placed
            if t == 0:
                where_words = REGION_PHRASES[candidate["region"]]
                edit = {"entity": entity, "region": list(candidate["region"]), "reference": None, "it": False,
                        "relations": []}
            else:
                ref = scene.objects[candidate["reference"]]
                name = "it" if candidate["it"] else "the " + object_phrase(ref, fields=("color", "shape"))
                depth_rel, lateral_rel = candidate["relations"]
                where_words = f"{DEPTH_WORDS[depth_rel]} {name} {LATERAL_WORDS[lateral_rel]}"
                edit = {"entity": entity, "region": None, "reference": candidate["reference"],
                        "it": bool(candidate["it"]), "relations": [depth_rel, lateral_rel]}
            scene = scene.add(obj)
            scenes.append(scene)
            instructions.append(f"add a {phrase} {where_words}")
            edits.append(edit)
        return scenes, instructions, edits

    def _candidates(self, t: int, u: np.ndarray, scene: Scene):
        """Placements to try in order: the drawn one first, then the others (deterministic)."""
        if t == 0:
            regions = list(REGION_PHRASES)
            start = min(int(u[2] * len(regions)), len(regions) - 1)
            for r in regions[start:] + regions[:start]:
                yield {"region": r}
            return
        combos = [(d, lat) for d in DEPTH_WORDS for lat in LATERAL_WORDS]
        start = min(int(u[3] * len(combos)), len(combos) - 1)
        combos = combos[start:] + combos[:start]
        # The reference: "it" (the previous object) half of the time, else a named earlier object.
        previous = t - 1
        if u[4] < 0.5 or t == 1:
            references = [(previous, True)]
        else:
            named = min(int(u[5] * t), t - 1)
            references = [(named, False)]
        first = references[0][0]
        # Fallbacks, when the drawn reference leaves no room: the other earlier objects, always by name.
        references += [(j, False) for j in [previous] + list(range(t - 1)) if j != first]
        for j, is_it in references:
            for relations in combos:
                yield {"reference": j, "it": is_it, "relations": relations}

    def _bags(self) -> tuple[np.ndarray, np.ndarray]:
        objects = np.zeros((self.n, self.turns, len(ENTITIES)), dtype=np.float32)
        coords = np.zeros((self.n, self.turns, len(ENTITIES), 3), dtype=np.float32)
        for i, dialogue in enumerate(self.scenes):
            for t, scene in enumerate(dialogue):
                objects[i, t], coords[i, t] = scene_bag(scene)
        return objects, coords

    # -- Dataset API --------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.n <= index < self.n:
            raise IndexError(f"dialogue {index} out of range for {self.n} dialogues")
        index = index % self.n
        return {
            "images": self.images[index],
            "background": self.background,
            "instructions": list(self.instructions[index]),
            "objects": torch.from_numpy(self.objects[index]),
            "coords": torch.from_numpy(self.coords[index]),
            "scene_id": self.scene_ids[index],
            "scenes": list(self.scenes[index]),
            "edits": [dict(e) for e in self.edits[index]],
        }

    def describe(self) -> str:
        """A one-paragraph summary: counts of dialogues, turns, images and the words used."""
        words = sorted({w for dialogue in self.instructions for text in dialogue for w in text.split()})
        named = sum(1 for d in self.instructions for text in d[1:] if " it " not in f" {text} ")
        relative = self.n * max(self.turns - 1, 0)
        return (
            f"EditingDialogues: {self.n} dialogues x {self.turns} turns = {self.n * self.turns} canvases of "
            f"{self.size}x{self.size} px (seed {self.seed}); {len(self._allowed)} entities allowed, sizes "
            f"{list(self.sizes)}, materials {list(self.materials)}; {relative} relative turns "
            f"({named} name an earlier object, the rest say 'it'); vocabulary of {len(words)} words; "
            f"{self.restarts} dialogues needed a restart."
        )

    def __repr__(self) -> str:
        return (f"EditingDialogues(n={self.n}, size={self.size}, seed={self.seed}, turns={self.turns}, "
                f"sizes={self.sizes}, materials={self.materials})")


def scene_bag(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """The i-CLEVR `objects` row (24,) and `coords` rows (24, 3) of a scene: a 0/1 bag over ENTITIES and, for
    each present entity, (image column * 128, image row * 128, depth); zeros for absent entities.
    (i-CLEVR stores x / 320 * 128 and y / 240 * 128 of CLEVR's 320 x 240 pixels: the same 128-unit scale.)
    """
    objects = np.zeros(len(ENTITIES), dtype=np.float32)
    coords = np.zeros((len(ENTITIES), 3), dtype=np.float32)
    screen = scene.screen()
    for k, obj in enumerate(scene.objects):
        e = ENTITIES.index(entity_name(obj))
        objects[e] = 1.0
        coords[e] = (screen[k, 0] * 128.0, screen[k, 1] * 128.0, obj.depth)
    return objects, coords
