"""Scene graphs of the shapes world: objects on a floor, a camera, a light, and their relations.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .attributes import ATTRIBUTES, OPPOSITE, RELATIONS, SIZE_RADIUS, check_value

# The camera looks over the floor: depth runs from NEAR to FAR world units.
NEAR, FAR = 1.0, 1.9
# Image coordinates are fractions of the image side: u to the right, v down.
# u = 0.5 + FOCAL * (x - pan) / depth ; the contact point on the floor is at v = HORIZON + tilt + V_SCALE / depth,
# so farther objects sit higher and are smaller (screen radius r = FOCAL * radius / depth).
FOCAL = 0.42
HORIZON, V_SCALE = -0.06, 0.98
# Objects are kept inside |u - 0.5| + r <= X_MARGIN at the reference camera.
X_MARGIN = 0.44
# Cube corners reach past the footprint radius: footprints are compared at FOOTPRINT * radius.
FOOTPRINT = 1.15
# Light direction (x right, y up, z towards the camera), unit length; from the upper left, in front.
DEFAULT_LIGHT = (-0.4961389383568338, 0.7442084075352507, 0.4465250445211504)


def project(x, depth, radius, pan=0.0, tilt=0.0):
    """Image position of objects: (u, v, r) = centre column, centre row and half-size, as image fractions."""
    r = FOCAL * radius / depth
    u = 0.5 + FOCAL * (x - pan) / depth
    v = HORIZON + tilt + V_SCALE / depth - r  # the centre sits one half-size above the contact point
    return u, v, r


def x_limit(depth, radius):
    """Largest |x| that keeps an object of `radius` at `depth` inside the frame (reference camera)."""
    return (X_MARGIN * depth - FOCAL * radius) / FOCAL


@dataclass(frozen=True)
class Obj:
    """One object: four attributes and a position on the floor (x to the right, depth away from the camera)."""

    shape: str
    color: str
    size: str
    material: str
    x: float
    depth: float

    def __post_init__(self):
        for name in ATTRIBUTES:
            check_value(name, getattr(self, name))
        for name in ("x", "depth"):
            _number(getattr(self, name), name)

    @property
    def radius(self) -> float:
        return SIZE_RADIUS[self.size]

    def attributes(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ATTRIBUTES}

    def matches(self, **attributes: str) -> bool:
        """True when every given attribute has the given value (e.g. color="red", shape="cube")."""
        for name, value in attributes.items():
            check_value(name, value)
            if getattr(self, name) != value:
                return False
        return True


@dataclass(frozen=True)
class Camera:
    """Small viewpoint changes: pan shifts the view sideways (world units), tilt shifts it vertically (image fraction)."""

    pan: float = 0.0
    tilt: float = 0.0


@dataclass(frozen=True)
class Light:
    """A directional light (unit vector, x right, y up, z towards the camera) and its intensity."""

    direction: tuple[float, float, float] = DEFAULT_LIGHT
    intensity: float = 1.0


@dataclass(frozen=True)
class Scene:
    """A scene graph: objects, camera and light. Object indices are positions in `objects`."""

    objects: tuple[Obj, ...] = ()
    camera: Camera = field(default_factory=Camera)
    light: Light = field(default_factory=Light)

    def __len__(self) -> int:
        return len(self.objects)

    def screen(self) -> np.ndarray:
        """(K, 3) array of each object's centre column u, centre row v and half-size r, as image fractions."""
        if not self.objects:
            return np.zeros((0, 3))
        x, depth, radius = (np.array([getattr(o, k) for o in self.objects]) for k in ("x", "depth", "radius"))
        return np.stack(project(x, depth, radius, self.camera.pan, self.camera.tilt), axis=1)

    def related(self, i: int, relation: str, j: int) -> bool:
        """Whether object i stands in `relation` to object j ("left": i is left of j; "front": i is nearer)."""
        a, b = self.objects[i], self.objects[j]
        if relation == "left":
            return a.x < b.x
        if relation == "right":
            return a.x > b.x
        if relation == "front":
            return a.depth < b.depth
        if relation == "behind":
            return a.depth > b.depth
        raise ValueError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")

    def true_relation(self, i: int, j: int, lateral: bool) -> str:
        """The relation of object i to object j that holds on one axis: left/right if lateral, else front/behind."""
        first, second = ("left", "right") if lateral else ("front", "behind")
        return first if self.related(i, first, j) else second

    def relations(self) -> dict[str, list[list[int]]]:
        """CLEVR's layout: relations[r][j] lists the objects i that stand in relation r to object j."""
        n = len(self.objects)
        return {r: [[i for i in range(n) if i != j and self.related(i, r, j)] for j in range(n)] for r in RELATIONS}

    def collides(self, obj: Obj, ignore: int | None = None, tolerance: float = 0.0, max_occlusion: float = 0.5) -> bool:
        """Whether `obj` would overlap an object of the scene (footprints closer than allowed, or hide too much)."""
        others = [o for k, o in enumerate(self.objects) if k != ignore]
        if not others:
            return False
        xs = np.array([o.x for o in others])
        ds = np.array([o.depth for o in others])
        rs = np.array([o.radius for o in others])
        return bool(
            placement_conflicts(
                np.array([obj.x]), np.array([obj.depth]), np.array([obj.radius]), xs, ds, rs, tolerance, max_occlusion
            ).any()
        )

    # Edits return new scenes; the original is unchanged.
    def add(self, obj: Obj) -> "Scene":
        return dataclasses.replace(self, objects=self.objects + (obj,))

    def remove(self, index: int) -> "Scene":
        self._check_index(index)
        return dataclasses.replace(self, objects=self.objects[:index] + self.objects[index + 1 :])

    def replace(self, index: int, **changes) -> "Scene":
        self._check_index(index)
        new = dataclasses.replace(self.objects[index], **changes)
        return dataclasses.replace(self, objects=self.objects[:index] + (new,) + self.objects[index + 1 :])

    def with_view(self, camera: Camera | None = None, light: Light | None = None) -> "Scene":
        return dataclasses.replace(self, camera=camera or self.camera, light=light or self.light)

    def _check_index(self, index: int) -> None:
        if not -len(self.objects) <= index < len(self.objects):
            raise IndexError(f"object index {index} out of range for a scene of {len(self.objects)} objects")

    def to_dict(self) -> dict:
        """A JSON-ready scene graph: objects with attributes, 3D and image positions, relations, camera, light."""
        screen = self.screen()
        objects = [
            {**o.attributes(), "x": o.x, "depth": o.depth, "pixel": [float(screen[k, 0]), float(screen[k, 1])],
             "half_size": float(screen[k, 2])}
            for k, o in enumerate(self.objects)
        ]
        return {
            "objects": objects,
            "relationships": self.relations(),
            "camera": dataclasses.asdict(self.camera),
            "light": {"direction": list(self.light.direction), "intensity": self.light.intensity},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Scene":
        """Inverse of to_dict (derived fields are recomputed). Raises ValueError, KeyError or TypeError, naming
        the field, when `data` is not a scene graph (a missing key, a wrong type, a number that is not finite)."""
        objects = tuple(
            Obj(**{k: o[k] for k in ("shape", "color", "size", "material")}, x=_number(o["x"], "x"),
                depth=_number(o["depth"], "depth"))
            for o in data["objects"]
        )
        camera, light = data.get("camera", {}), data.get("light", {})
        direction = light.get("direction", DEFAULT_LIGHT)
        if not isinstance(direction, (list, tuple)) or len(direction) != 3:
            raise ValueError(f"light direction must be 3 numbers, found {direction!r}")
        return cls(
            objects=objects,
            camera=Camera(**{k: _number(v, k) for k, v in camera.items()}),
            light=Light(tuple(_number(v, "light direction") for v in direction),
                        _number(light.get("intensity", 1.0), "light intensity")),
        )


def _number(value, name: str) -> float:
    """`value` as a float; ValueError naming `name` unless it is a finite real number (not a bool or a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, found {value!r}")
    return float(value)


def placement_conflicts(x, depth, radius, other_x, other_depth, other_radius, tolerance=0.0, max_occlusion=0.5):
    """Boolean array (..., n_candidates, n_others): True where a candidate collides with another object.

    Two objects collide when their floor footprints are closer than FOOTPRINT * (r1 + r2) * (1 - tolerance),
    or when their image boxes overlap by more than `max_occlusion` of the smaller box.
    """
    x, depth, radius = (np.asarray(a, dtype=np.float64)[..., :, None] for a in (x, depth, radius))
    ox, od, orad = (np.asarray(a, dtype=np.float64)[..., None, :] for a in (other_x, other_depth, other_radius))
    gap = FOOTPRINT * (radius + orad) * (1.0 - tolerance)
    too_close = (x - ox) ** 2 + (depth - od) ** 2 < gap**2
    u1, v1, r1 = project(x, depth, radius)
    u2, v2, r2 = project(ox, od, orad)
    overlap_u = np.clip(np.minimum(u1 + r1, u2 + r2) - np.maximum(u1 - r1, u2 - r2), 0.0, None)
    overlap_v = np.clip(np.minimum(v1 + r1, v2 + r2) - np.maximum(v1 - r1, v2 - r2), 0.0, None)
    smaller_area = 4.0 * np.minimum(r1, r2) ** 2
    hidden = overlap_u * overlap_v > max_occlusion * smaller_area
    return too_close | hidden


def opposite(relation: str) -> str:
    """The converse relation: left <-> right, front <-> behind."""
    if relation not in OPPOSITE:
        raise ValueError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")
    return OPPOSITE[relation]
