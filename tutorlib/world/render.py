"""A batched 2.5D renderer of the shapes world, written with torch tensor operations.

Each object is drawn in a small square patch around it, far objects first (painter's algorithm), with
analytic anti-aliased silhouettes, Lambert shading, a soft floor shadow, and a specular highlight on metal.
Only +, -, *, /, sqrt, min and max are used, so the same scene gives the same pixels on any machine.
Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .attributes import ATTRIBUTES, COLOR_RGB, SIZE_RADIUS
from .sampling import SceneBatch
from .scene import FOCAL, NEAR, Scene, project

MIN_SIZE, MAX_SIZE = 32, 256
# A patch spans [-PATCH_EXTENT, PATCH_EXTENT] object half-sizes around the centre (room for the shadow).
PATCH_EXTENT = 1.75
_SHAPE = {name: i for i, name in enumerate(ATTRIBUTES["shape"])}
_METAL = ATTRIBUTES["material"].index("metal")
_RGB = torch.tensor([COLOR_RGB[c] for c in ATTRIBUTES["color"]], dtype=torch.float32) / 255.0


@dataclass
class Rendering:
    """Rendered images (B, 3, H, W) uint8 and the object-id map (B, H, W) int64, -1 on the floor."""

    images: torch.Tensor
    ids: torch.Tensor
    batch: SceneBatch

    def __len__(self) -> int:
        return len(self.images)

    def instance_masks(self, b: int) -> torch.Tensor:
        """(K, H, W) boolean visible masks of the objects of scene b, in object order."""
        count = int(self.batch.count[b])
        return self.ids[b][None] == torch.arange(count, device=self.ids.device)[:, None, None]

    def concept_mask(self, attribute: str, value: str) -> torch.Tensor:
        """(B, H, W) boolean mask of the pixels showing an object whose `attribute` is `value`."""
        index = ATTRIBUTES[attribute].index(value) if value in ATTRIBUTES.get(attribute, ()) else None
        if index is None:
            raise ValueError(f"{value!r} is not a value of {attribute!r}; choose from {ATTRIBUTES.get(attribute)}")
        hits = torch.as_tensor((self.batch.attributes[attribute] == index) & self.batch.valid, device=self.ids.device)
        padded = torch.cat([torch.zeros_like(hits[:, :1]), hits], dim=1)  # id -1 (floor) -> column 0
        return torch.gather(padded, 1, (self.ids + 1).flatten(1)).view_as(self.ids)

    def concept_masks(self) -> dict[str, torch.Tensor]:
        """Every concept's mask, keyed "attribute=value" (e.g. "color=red")."""
        return {f"{a}={v}": self.concept_mask(a, v) for a, values in ATTRIBUTES.items() for v in values}


def check_image_size(size, name: str = "size") -> int:
    """`size` as an int; ValueError naming `name` unless it is an integer from MIN_SIZE to MAX_SIZE pixels."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"{name} must be an integer from {MIN_SIZE} to {MAX_SIZE} pixels, got {size!r}")
    return int(size)


def _as_batch(scenes: SceneBatch | Scene | Sequence[Scene]) -> SceneBatch:
    if isinstance(scenes, SceneBatch):
        return scenes
    if isinstance(scenes, Scene):
        return SceneBatch.from_scenes([scenes])
    return SceneBatch.from_scenes(list(scenes))


def render(
    scenes: SceneBatch | Scene | Sequence[Scene], size: int = 64, device: str | torch.device = "cpu", chunk: int = 1024
) -> Rendering:
    """Render scenes to RGB images and object-id maps at `size` x `size` pixels (32 to 256)."""
    size = check_image_size(size)
    batch = _as_batch(scenes)
    device = torch.device(device)
    # No scenes: empty images (0, 3, size, size) and id maps (0, size, size).
    images = [torch.zeros(0, 3, size, size, dtype=torch.uint8, device=device)]
    ids = [torch.zeros(0, size, size, dtype=torch.int64, device=device)]
    for start in range(0, len(batch), chunk):
        part = _slice(batch, slice(start, start + chunk))
        image, id_map = _render_chunk(part, int(size), device)
        images.append(image)
        ids.append(id_map)
    return Rendering(torch.cat(images), torch.cat(ids), batch)


def _slice(batch: SceneBatch, rows: slice) -> SceneBatch:
    return SceneBatch(
        {k: v[rows] for k, v in batch.attributes.items()}, batch.x[rows], batch.depth[rows], batch.count[rows],
        batch.pan[rows], batch.tilt[rows], batch.light[rows], batch.intensity[rows],
    )


def _floor(size: int, intensity: torch.Tensor) -> torch.Tensor:
    # floor(u, v) = intensity * (0.42 + 0.2 * (1 - v)) * (1 - 0.35 * (u - 0.5)^2): brighter far away, soft vignette.
    t = (torch.arange(size, dtype=torch.float32, device=intensity.device) + 0.5) / size
    rows = 0.42 + 0.2 * (1.0 - t)
    cols = 1.0 - 0.35 * (t - 0.5) * (t - 0.5)
    return intensity[:, None, None] * (rows[:, None] * cols[None, :])[None]


def _render_chunk(batch: SceneBatch, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    n, k = len(batch), batch.slots
    radius = batch.radius
    u, v, r = project(batch.x, batch.depth, radius, batch.pan[:, None], batch.tilt[:, None])
    f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
    u, v, r = f32(u * size), f32(v * size), f32(r * size)
    light, intensity = f32(batch.light), f32(batch.intensity)

    patch = int(math.ceil(2 * PATCH_EXTENT * FOCAL * SIZE_RADIUS["large"] / NEAR * size)) + 2
    pad = patch // 2 + 2  # object centres lie inside the image, so half a patch of margin is enough
    patch_sizes = sorted({int(math.ceil(patch * 0.5)), int(math.ceil(patch * 0.75)), patch})
    canvas = torch.zeros(n, 4, size + 2 * pad, size + 2 * pad, device=device)
    floor = _floor(size, intensity)
    canvas[:, :3, pad : pad + size, pad : pad + size] = floor[:, None]

    valid = torch.as_tensor(batch.valid, device=device)
    shapes = torch.as_tensor(batch.attributes["shape"], device=device)
    metal = torch.as_tensor(batch.attributes["material"] == _METAL, device=device)
    rgb = _RGB.to(device)[torch.as_tensor(batch.attributes["color"], device=device)]  # (n, k, 3)
    # Painter's algorithm: far objects first; empty slots sort last.
    order = torch.as_tensor(np.argsort(-np.where(batch.valid, batch.depth, -1.0), axis=1, kind="stable"), device=device)

    for pass_name in ("shadow", "object"):
        for slot in range(k):
            obj = order[:, slot]
            rows = torch.nonzero(valid[torch.arange(n, device=device), obj]).flatten()
            if len(rows) == 0:
                break
            obj = obj[rows]
            params = dict(u=u[rows, obj], v=v[rows, obj], r=r[rows, obj], light=light[rows], intensity=intensity[rows])
            # Small (far or small) objects are drawn in smaller patches: the same pixels, less work.
            needed = torch.ceil(2 * PATCH_EXTENT * params["r"]) + 2
            bucket = torch.searchsorted(torch.tensor(patch_sizes, dtype=needed.dtype, device=device), needed)
            for bucket_index, patch_size in enumerate(patch_sizes):
                in_bucket = bucket.clamp(max=len(patch_sizes) - 1) == bucket_index
                if pass_name == "shadow":
                    if in_bucket.any():
                        sub = {key: val[in_bucket] for key, val in params.items()}
                        _draw(canvas, rows[in_bucket], sub, patch_size, pad, _shadow_layer, None)
                    continue
                for shape_name, shade_fn in _SHAPE_LAYERS.items():
                    sel = in_bucket & (shapes[rows, obj] == _SHAPE[shape_name])
                    if sel.any():
                        sub = {key: val[sel] for key, val in params.items()}
                        sub.update(metal=metal[rows[sel], obj[sel]], rgb=rgb[rows[sel], obj[sel]])
                        _draw(canvas, rows[sel], sub, patch_size, pad, shade_fn, obj[sel])

    crop = canvas[:, :, pad : pad + size, pad : pad + size]
    images = (crop[:, :3].clamp(0.0, 1.0) * 255.0 + 0.5).floor().to(torch.uint8)
    return images, crop[:, 3].round().long() - 1


def _draw(canvas, rows, params, patch, pad, layer_fn, obj_index) -> None:
    """Composite one layer per selected scene into the canvas, inside a patch centred on the object."""
    n, channels, height, width = canvas.shape
    device = canvas.device
    x0 = torch.floor(params["u"] - patch / 2).long().clamp(-pad, width - pad - patch)
    y0 = torch.floor(params["v"] - patch / 2).long().clamp(-pad, height - pad - patch)
    steps = torch.arange(patch, device=device)
    # Local coordinates in object half-sizes: a to the right, b downwards (b = 1 at the floor contact).
    a = ((x0[:, None] + steps[None] + 0.5).float() - params["u"][:, None]) / params["r"][:, None]
    b = ((y0[:, None] + steps[None] + 0.5).float() - params["v"][:, None]) / params["r"][:, None]
    alpha, colour = layer_fn(a[:, None, :], b[:, :, None], params)  # (m, P, P), (m, 3, P, P) or None
    # Flat canvas index = ((row * C + c) * H + y0 + pad + dy) * W + x0 + pad + dx = start(row) + offset(c, dy, dx)
    start = (rows * channels * height + y0 + pad) * width + x0 + pad
    offset = (torch.arange(channels, device=device)[:, None, None] * height + steps[None, :, None]) * width + steps
    index = start[:, None, None, None] + offset[None]
    flat = canvas.view(-1)
    region = flat[index]  # (m, 4, P, P)
    alpha = alpha[:, None]
    if colour is None:  # a shadow darkens what is there
        region[:, :3] = region[:, :3] * (1.0 - alpha)
    else:
        region[:, :3] = region[:, :3] * (1.0 - alpha) + colour * alpha
        region[:, 3:] = torch.where(alpha > 0.5, (obj_index + 1).float()[:, None, None, None], region[:, 3:])
    flat[index] = region


def _coverage(inside: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Anti-aliased coverage: the signed distance inside the silhouette (in half-sizes) turned into pixels."""
    return (inside * r[:, None, None] + 0.5).clamp(0.0, 1.0)


def _smoothstep(lo: float, hi: float, x: torch.Tensor) -> torch.Tensor:
    # s = t^2 (3 - 2t), t = clamp((x - lo) / (hi - lo), 0, 1)
    t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _shadow_layer(a, b, p):
    # A soft ellipse on the floor under the object, pushed away from the light:
    # darkness = 0.42 * clamp(1 - ((a - ax)/1.15)^2 - ((b - 0.95)/0.36)^2, 0, 1), ax = -0.8 * light_x
    ax = -0.8 * p["light"][:, 0, None, None]
    d = ((a - ax) / 1.15) ** 2 + ((b - 0.95) / 0.36) ** 2
    return 0.42 * (1.0 - d).clamp(0.0, 1.0), None


def _material(diffuse, spec, p):
    """Rubber: shade = 0.42 + 0.68 diffuse, faint highlight; metal: shade = 0.22 + 0.9 diffuse^2, bright highlight."""
    metal = p["metal"][:, None, None]
    shade = torch.where(metal, 0.22 + 0.9 * diffuse * diffuse, 0.42 + 0.68 * diffuse)
    highlight = torch.where(metal, 0.9 * spec, 0.12 * spec)
    level = p["intensity"][:, None, None, None]
    return (p["rgb"][:, :, None, None] * shade[:, None] + highlight[:, None]) * level


def _half_vector(light):
    # H = normalize(L + V) with the viewer V = (0, 0, 1)
    h = light + torch.tensor([0.0, 0.0, 1.0], device=light.device)
    return h / torch.sqrt((h * h).sum(dim=1, keepdim=True))


def _sphere_layer(a, b, p):
    d2 = a * a + b * b
    inside = 1.0 - torch.sqrt(d2)
    # Normal of the unit sphere seen head-on: n = (a, -b, sqrt(1 - a^2 - b^2)); diffuse = max(n . L, 0)
    nz = torch.sqrt((1.0 - d2).clamp(min=0.0))
    lx, ly, lz = (p["light"][:, i, None, None] for i in range(3))
    diffuse = (a * lx - b * ly + nz * lz).clamp(0.0, 1.0)
    h = _half_vector(p["light"])
    n_dot_h = a * h[:, 0, None, None] - b * h[:, 1, None, None] + nz * h[:, 2, None, None]
    spec = _smoothstep(0.93, 0.995, n_dot_h)
    return _coverage(inside, p["r"]), _material(diffuse, spec, p)


# Cube: a front face and, above b = CUBE_TOP, the top face seen from above (slightly narrower at the back).
CUBE_HALF_WIDTH, CUBE_TOP = 0.85, -0.45


def _cube_layer(a, b, p):
    depth_along_top = ((CUBE_TOP - b) / (1.0 + CUBE_TOP)).clamp(0.0, 1.0)
    half_width = CUBE_HALF_WIDTH * (1.0 - 0.12 * depth_along_top)
    inside = torch.minimum(half_width - a.abs(), torch.minimum(b + 1.0, 1.0 - b))
    on_top = _coverage(CUBE_TOP - b, p["r"])
    lx, ly, lz = (p["light"][:, i, None, None] for i in range(3))
    # Front face normal (0, 0, 1), top face normal (0, 1, 0); the front darkens towards the floor.
    front = lz.clamp(min=0.0) * (1.0 - 0.18 * ((b - CUBE_TOP) / (1.0 - CUBE_TOP)).clamp(0.0, 1.0))
    diffuse = front + (ly.clamp(min=0.0) - front) * on_top
    glint = (1.0 - ((a + 0.3) ** 2 + (b + 0.1) ** 2) / 0.5).clamp(0.0, 1.0)
    spec = 0.6 * glint * glint * (1.0 - on_top)
    return _coverage(inside, p["r"]), _material(diffuse, spec, p)


# Cylinder: a body between two elliptic caps (top cap centre CYL_TOP, bottom cap centre CYL_BOTTOM).
CYL_HALF_WIDTH, CYL_TOP, CYL_TOP_RY, CYL_BOTTOM, CYL_BOTTOM_RY = 0.8, -0.7, 0.3, 0.78, 0.22


def _ellipse_inside(a, b, centre, ry):
    # Approximate signed distance to an ellipse with radii (CYL_HALF_WIDTH, ry), in units of ry.
    return (1.0 - torch.sqrt((a / CYL_HALF_WIDTH) ** 2 + ((b - centre) / ry) ** 2)) * ry


def _cylinder_layer(a, b, p):
    body = torch.minimum(CYL_HALF_WIDTH - a.abs(), torch.minimum(b - CYL_TOP, CYL_BOTTOM - b))
    top = _ellipse_inside(a, b, CYL_TOP, CYL_TOP_RY)
    inside = torch.maximum(body, torch.maximum(top, _ellipse_inside(a, b, CYL_BOTTOM, CYL_BOTTOM_RY)))
    on_top = _coverage(top, p["r"])
    lx, ly, lz = (p["light"][:, i, None, None] for i in range(3))
    # Body normal n = (s, 0, sqrt(1 - s^2)) with s = a / half-width; the cap's normal is (0, 1, 0).
    s = (a / CYL_HALF_WIDTH).clamp(-1.0, 1.0)
    nz = torch.sqrt(1.0 - s * s)
    side = (s * lx + nz * lz).clamp(0.0, 1.0) * torch.ones_like(b)
    diffuse = side + (ly.clamp(min=0.0) - side) * on_top
    h = _half_vector(p["light"])
    streak = (1.0 - ((s * h[:, 0, None, None] + nz * h[:, 2, None, None]) - 1.0).abs() / 0.04).clamp(0.0, 1.0)
    spec = streak * (1.0 - on_top)
    return _coverage(inside, p["r"]), _material(diffuse, spec, p)


_SHAPE_LAYERS = {"sphere": _sphere_layer, "cube": _cube_layer, "cylinder": _cylinder_layer}
