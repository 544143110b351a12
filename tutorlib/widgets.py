"""Interactive explorers: a tested function draws the picture, a thin ipywidgets wrapper drives it.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from tutorlib.world import ATTRIBUTES, Oracle, count_phrase, render, sample_scenes, scene_captions
from tutorlib.world.attributes import check_value
from tutorlib.world.render import check_image_size
from tutorlib.world.rng import check_seed
from tutorlib.world.sampling import MAX_OBJECTS

ANY = "any"
# A distinct colour per object index for the instance-mask panel (floor is black).
_INSTANCE_PALETTE = plt.get_cmap("tab10")(np.arange(10))[:, :3]


def explore_world(
    seed: int = 0,
    n_objects: int = 4,
    size: int = 128,
    shape: str = ANY,
    color: str = ANY,
    material: str = ANY,
    object_size: str = ANY,
    concept: str = "auto",
) -> Figure:
    """Render one scene and show its image, instance masks, one concept mask, captions and oracle answers.

    Dropdown values other than "any" restrict every object of the scene to that attribute value; `concept`
    is "attribute=value", or "auto" for the colour of object 0. seed is an integer from 0 to 2**63 - 1 and
    n_objects from 0 to MAX_OBJECTS (10); bad values raise a ValueError naming the parameter.
    """
    seed, size = check_seed(seed), check_image_size(size)
    if isinstance(n_objects, bool) or not isinstance(n_objects, (int, np.integer)) or not 0 <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be an integer from 0 to {MAX_OBJECTS}, got {n_objects!r}")
    allowed = {name: [check_value(name, value)] for name, value in
               (("shape", shape), ("color", color), ("material", material), ("size", object_size)) if value != ANY}
    if concept != "auto":
        attribute, _, value = concept.partition("=")
        if attribute not in ATTRIBUTES or value not in ATTRIBUTES[attribute]:
            raise ValueError(f"concept must be 'auto' or 'attribute=value' such as 'color=red', got {concept!r}")
    batch = sample_scenes([seed], (n_objects, n_objects), allowed=allowed)
    rendering = render(batch, size)
    scene = batch.scene(0)
    if concept == "auto":
        concept = f"color={scene.objects[0].color}" if scene.objects else "color=red"
    attribute, _, value = concept.partition("=")
    concept_mask = rendering.concept_mask(attribute, value)[0].numpy()
    ids = rendering.ids[0].numpy()
    instances = np.where(ids[..., None] >= 0, _INSTANCE_PALETTE[ids % 10], 0.0)

    figure, axes = plt.subplots(1, 3, figsize=(9, 3.6))
    panels = [(rendering.images[0].permute(1, 2, 0).numpy(), f"seed {seed}: {len(scene)} objects"),
              (instances, "instance masks"), (concept_mask, f"mask of {concept}")]
    for ax, (picture, title) in zip(axes, panels):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1) if picture.ndim == 2 else ax.imshow(picture)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    for k, (u, v, _) in enumerate(scene.screen() * size):
        axes[1].text(u, v, str(k), color="white", ha="center", va="center", fontsize=8)
    oracle = Oracle(scene)
    facts = f"oracle: {count_phrase(oracle.count(shape='cube'), 'cube')}, {count_phrase(oracle.count(color='red'), 'red object')}"
    figure.suptitle("\n".join(scene_captions(scene, seed)[1:] + [facts]), fontsize=8)
    figure.tight_layout()
    return figure


def world_explorer():
    """ipywidgets panel around explore_world: seed, object count and image size sliders, attribute dropdowns."""
    import ipywidgets as widgets
    from IPython.display import display

    def show(**kwargs) -> None:
        figure = explore_world(**kwargs)
        display(figure)
        plt.close(figure)

    def dropdown(name: str, values) -> widgets.Dropdown:
        return widgets.Dropdown(options=[ANY, *values], value=ANY, description=name)

    concepts = ["auto"] + [f"{a}={v}" for a, values in ATTRIBUTES.items() for v in values]
    controls = dict(
        seed=widgets.IntSlider(value=0, min=0, max=999, description="seed", continuous_update=False),
        n_objects=widgets.IntSlider(value=4, min=1, max=8, description="objects", continuous_update=False),
        size=widgets.IntSlider(value=128, min=32, max=256, step=32, description="pixels", continuous_update=False),
        shape=dropdown("shape", ATTRIBUTES["shape"]),
        color=dropdown("color", ATTRIBUTES["color"]),
        material=dropdown("material", ATTRIBUTES["material"]),
        object_size=dropdown("size", ATTRIBUTES["size"]),
        concept=widgets.Dropdown(options=concepts, value="auto", description="mask"),
    )
    return widgets.interactive(show, **controls)
