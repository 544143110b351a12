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


def test_every_control_redraws_the_picture(monkeypatch):
    import io

    import IPython.display

    drawn = []

    def record(figure):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        drawn.append(buffer.getvalue())

    monkeypatch.setattr(IPython.display, "display", record)
    panel = world_explorer()
    controls = {child.description: child for child in panel.children[:-1]}
    assert set(controls) == {"seed", "objects", "pixels", "shape", "color", "material", "size", "mask"}
    panel.update()
    # A constraint the scene already meets draws the same scene (two metal spheres stay the same when "metal" is
    # chosen), so each control tries its values in turn and one of them must change the picture.
    for name, control in controls.items():
        values = [v for v in getattr(control, "options", None) or (control.min, control.max) if v != control.value]
        for value in values:
            before = len(drawn)
            control.value = value
            assert len(drawn) == before + 1, f"changing {name} did not redraw"
            if drawn[-1] != drawn[-2]:
                break
        else:
            raise AssertionError(f"no value of {name} ({values}) changed the picture")
