import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tutorlib.widgets import explore_world, world_explorer  # noqa: E402
from tutorlib.world import Oracle, count_phrase, sample_scenes  # noqa: E402


def test_explorer_figure_shows_the_requested_scene():
    figure = explore_world(seed=3, n_objects=3, size=64, color="blue", concept="color=blue")
    image_ax, instance_ax, mask_ax = figure.axes
    assert image_ax.get_title() == "seed 3: 3 objects"
    assert image_ax.images[0].get_array().shape == (64, 64, 3)
    # Every object is blue, so the blue mask is exactly the set of object pixels.
    instances = instance_ax.images[0].get_array()
    blue = mask_ax.images[0].get_array()
    assert np.array_equal(np.asarray(blue, dtype=bool), np.asarray(instances).sum(axis=2) > 0)
    scene = sample_scenes([3], (3, 3), allowed={"color": ["blue"]}).scene(0)
    cubes = count_phrase(Oracle(scene).count(shape="cube"), "cube")
    assert f"oracle: {cubes}, zero red objects" in figure._suptitle.get_text()


def test_explorer_auto_concept_is_the_first_objects_colour():
    first = sample_scenes([5], (4, 4)).scene(0).objects[0]
    figure = explore_world(seed=5, n_objects=4, size=64)
    assert figure.axes[2].get_title() == f"mask of color={first.color}"


def test_explorer_rejects_bad_values():
    with pytest.raises(ValueError, match="not a color"):
        explore_world(color="pink")
    with pytest.raises(ValueError, match="size must be"):
        explore_world(size=16)


def test_widget_wraps_the_function():
    panel = world_explorer()
    names = {child.description for child in panel.children[:-1]}
    assert {"seed", "objects", "pixels", "shape", "color", "material", "size", "mask"} <= names
