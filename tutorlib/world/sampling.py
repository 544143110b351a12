"""Random scenes, sampled in batches with arrays (fast) or one object at a time (for edits).

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .attributes import ATTRIBUTES, SIZE_RADIUS, check_value
from .rng import check_seed, seed_array, uniform
from .scene import DEFAULT_LIGHT, FAR, NEAR, Camera, Light, Obj, Scene, placement_conflicts, x_limit
from .text import NUMBER_WORDS

_NAMES = tuple(ATTRIBUTES)  # size, color, material, shape
# The most objects a scene may ask for: the captions count objects in words, up to ten.
MAX_OBJECTS = len(NUMBER_WORDS) - 1
_RADII = np.array([SIZE_RADIUS[s] for s in ATTRIBUTES["size"]])


@dataclass
class SceneBatch:
    """A batch of scenes as arrays, the renderer's input. Slots k < count[b] hold objects, the rest are empty.

    `attributes[name]` holds (B, K) indices into ATTRIBUTES[name]; x and depth are (B, K) floats.
    """

    attributes: dict[str, np.ndarray]
    x: np.ndarray
    depth: np.ndarray
    count: np.ndarray
    pan: np.ndarray
    tilt: np.ndarray
    light: np.ndarray  # (B, 3) unit directions
    intensity: np.ndarray

    def __len__(self) -> int:
        return len(self.count)

    @property
    def slots(self) -> int:
        return self.x.shape[1]

    @property
    def valid(self) -> np.ndarray:
        return np.arange(self.slots)[None, :] < self.count[:, None]

    @property
    def radius(self) -> np.ndarray:
        return _RADII[self.attributes["size"]]

    def scene(self, b: int) -> Scene:
        """The scene graph of batch entry b."""
        objects = tuple(
            Obj(**{n: ATTRIBUTES[n][self.attributes[n][b, k]] for n in _NAMES}, x=float(self.x[b, k]),
                depth=float(self.depth[b, k]))
            for k in range(int(self.count[b]))
        )
        light = Light(tuple(float(v) for v in self.light[b]), float(self.intensity[b]))
        return Scene(objects, Camera(float(self.pan[b]), float(self.tilt[b])), light)

    def scenes(self) -> list[Scene]:
        return [self.scene(b) for b in range(len(self))]

    @classmethod
    def from_scenes(cls, scenes: Sequence[Scene]) -> "SceneBatch":
        """Pack scene graphs into arrays (empty slots padded up to the largest scene)."""
        n, k = len(scenes), max([len(s) for s in scenes] + [1])
        attributes = {name: np.zeros((n, k), dtype=np.int64) for name in _NAMES}
        x, depth = np.zeros((n, k)), np.full((n, k), FAR)
        for b, scene in enumerate(scenes):
            for j, o in enumerate(scene.objects):
                for name in _NAMES:
                    attributes[name][b, j] = ATTRIBUTES[name].index(getattr(o, name))
                x[b, j], depth[b, j] = o.x, o.depth
        return cls(
            attributes, x, depth,
            count=np.array([len(s) for s in scenes], dtype=np.int64),
            pan=np.array([s.camera.pan for s in scenes], dtype=np.float64),
            tilt=np.array([s.camera.tilt for s in scenes], dtype=np.float64),
            light=np.array([s.light.direction for s in scenes], dtype=np.float64).reshape(n, 3),
            intensity=np.array([s.light.intensity for s in scenes], dtype=np.float64),
        )


def check_object_range(n_objects, name: str = "n_objects") -> tuple[int, int]:
    """(min, max) objects per scene as ints; ValueError naming `name` unless 0 <= min <= max <= MAX_OBJECTS."""
    valid = (isinstance(n_objects, (tuple, list)) and len(n_objects) == 2
             and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in n_objects)
             and 0 <= n_objects[0] <= n_objects[1] <= MAX_OBJECTS)
    if not valid:
        raise ValueError(f"{name} must be (min, max) with 0 <= min <= max <= {MAX_OBJECTS}, got {n_objects!r}")
    return int(n_objects[0]), int(n_objects[1])


def _choice_indices(draws: np.ndarray, allowed: Sequence[str], name: str) -> np.ndarray:
    allowed_idx = np.array([ATTRIBUTES[name].index(check_value(name, v)) for v in allowed])
    if len(allowed_idx) == 0:
        raise ValueError(f"no allowed values left for {name}")
    return allowed_idx[np.minimum((draws * len(allowed_idx)).astype(np.int64), len(allowed_idx) - 1)]


def sample_scenes(
    seeds: Sequence[int] | np.ndarray,
    n_objects: tuple[int, int] = (3, 6),
    *,
    tolerance: float = 0.0,
    max_occlusion: float = 0.5,
    tries: int = 32,
    allowed: dict[str, Sequence[str]] | None = None,
) -> SceneBatch:
    """Sample one scene per seed: between n_objects[0] and n_objects[1] objects, uniform attributes,
    positions on the floor with no footprint overlap beyond `tolerance` and no object hidden by more than
    `max_occlusion` of its box. The same seed always gives the same scene, whatever the batch. Seeds are
    integers from 0 to 2**63 - 1; n_objects allows at most MAX_OBJECTS (10: what captions can count).

    An object that finds no free spot in `tries` attempts is left out (rare below 8 objects).
    `allowed` restricts attribute values, e.g. {"color": ["red", "blue"]}.
    """
    lo, hi = check_object_range(n_objects)
    unknown = set(allowed or {}) - set(_NAMES)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)} in allowed; choose from {list(_NAMES)}")
    seeds = seed_array(seeds)
    b, k = len(seeds), max(hi, 1)
    count = lo + np.minimum((uniform(seeds, 0, 1)[:, 0] * (hi - lo + 1)).astype(np.int64), hi - lo)
    attribute_draws = uniform(seeds, 1, k * len(_NAMES)).reshape(b, k, len(_NAMES))
    attributes = {
        name: _choice_indices(attribute_draws[..., i], (allowed or {}).get(name, ATTRIBUTES[name]), name)
        for i, name in enumerate(_NAMES)
    }
    radius = _RADII[attributes["size"]]
    position_draws = uniform(seeds, 2, k * tries * 2).reshape(b, k, tries, 2)
    depth_try = NEAR + (FAR - NEAR) * position_draws[..., 0]
    x_try = (2.0 * position_draws[..., 1] - 1.0) * x_limit(depth_try, radius[..., None])

    x, depth = np.zeros((b, k)), np.full((b, k), FAR)
    placed = np.zeros((b, k), dtype=bool)
    for slot in range(k):
        conflicts = placement_conflicts(
            x_try[:, slot], depth_try[:, slot], np.repeat(radius[:, slot : slot + 1], tries, 1),
            x[:, :slot], depth[:, :slot], radius[:, :slot], tolerance, max_occlusion,
        )  # (B, tries, slot)
        free = ~(conflicts & placed[:, None, :slot]).any(axis=2)
        first = free.argmax(axis=1)
        rows = np.arange(b)
        placed[:, slot] = free[rows, first] & (slot < count)
        x[:, slot] = np.where(placed[:, slot], x_try[rows, slot, first], 0.0)
        depth[:, slot] = np.where(placed[:, slot], depth_try[rows, slot, first], FAR)

    # Move the placed objects to the front slots so that objects are indexed 0..count-1.
    order = np.argsort(~placed, axis=1, kind="stable")
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    return SceneBatch(
        attributes={name: take(v) for name, v in attributes.items()},
        x=take(x), depth=take(depth), count=placed.sum(axis=1),
        pan=np.zeros(b), tilt=np.zeros(b), light=np.tile(np.array(DEFAULT_LIGHT), (b, 1)), intensity=np.ones(b),
    )


def sample_scene(seed: int, n_objects: tuple[int, int] = (3, 6), **kwargs) -> Scene:
    """One scene graph from a seed (see sample_scenes)."""
    return sample_scenes([seed], n_objects, **kwargs).scene(0)


def place_object(
    scene: Scene,
    seed: int,
    *,
    stream: int = 3,
    where: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    tries: int = 64,
    tolerance: float = 0.0,
    max_occlusion: float = 0.5,
    **attributes: str,
) -> Obj | None:
    """A new object for `scene` at a free spot, or None when there is none.

    Attributes not given are drawn uniformly; `where(x, depth)` (arrays -> bool array) restricts the spot,
    e.g. to the left of an object.
    """
    draws = uniform([check_seed(seed)], stream, len(_NAMES) + 2 * tries)[0]
    values = {
        name: attributes[name] if name in attributes else ATTRIBUTES[name][min(int(draws[i] * len(ATTRIBUTES[name])), len(ATTRIBUTES[name]) - 1)]
        for i, name in enumerate(_NAMES)
    }
    unknown = set(attributes) - set(_NAMES)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)}; choose from {list(_NAMES)}")
    radius = SIZE_RADIUS[check_value("size", values["size"])]
    position = draws[len(_NAMES):].reshape(tries, 2)
    depth = NEAR + (FAR - NEAR) * position[:, 0]
    x = (2.0 * position[:, 1] - 1.0) * x_limit(depth, radius)
    ok = np.ones(tries, dtype=bool) if where is None else np.asarray(where(x, depth), dtype=bool)
    if scene.objects:
        others = [np.array([getattr(o, a) for o in scene.objects]) for a in ("x", "depth", "radius")]
        ok &= ~placement_conflicts(x, depth, np.full(tries, radius), *others, tolerance, max_occlusion).any(axis=1)
    if not ok.any():
        return None
    t = int(ok.argmax())
    return Obj(**values, x=float(x[t]), depth=float(depth[t]))
