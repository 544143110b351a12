"""The vocabulary of the shapes world: attribute values, their colours and sizes, and relations.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

SHAPES = ("cube", "sphere", "cylinder")
COLORS = ("gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow")
SIZES = ("small", "large")
MATERIALS = ("rubber", "metal")
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "size": SIZES,
    "color": COLORS,
    "material": MATERIALS,
    "shape": SHAPES,
}
# Relation r of object i to object j: "left" means i is left of j, "front" means i is nearer the camera.
RELATIONS = ("left", "right", "front", "behind")
OPPOSITE = {"left": "right", "right": "left", "front": "behind", "behind": "front"}

# CLEVR's eight colours (sRGB, 0-255).
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
# Radius of the object's ground footprint in world units (CLEVR: large is twice small).
SIZE_RADIUS = {"small": 0.2, "large": 0.34}

# Entities of the i-CLEVR format: "shape color", shapes outer, colours inner (24 names).
ENTITIES = tuple(f"{shape} {color}" for shape in SHAPES for color in COLORS)


def check_value(attribute: str, value: str) -> str:
    """Return `value` if it is a valid value of `attribute`, else raise a ValueError naming the choices."""
    if attribute not in ATTRIBUTES:
        raise ValueError(f"unknown attribute {attribute!r}; choose one of {sorted(ATTRIBUTES)}")
    if value not in ATTRIBUTES[attribute]:
        raise ValueError(f"{value!r} is not a {attribute}; choose one of {list(ATTRIBUTES[attribute])}")
    return value
