"""The world's entry points refuse bad values up front, with a ValueError naming the parameter and its range."""
from __future__ import annotations

import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from tutorlib.widgets import explore_world  # noqa: E402
from tutorlib.world import COLORS, Obj, Scene, place_object, render, sample_scenes, scene_captions  # noqa: E402
from tutorlib.world.sampling import SceneBatch  # noqa: E402
from tutorlib.world.text import NUMBER_WORDS  # noqa: E402
from tutorlib.world.views import (CaptionedScenes, ChangePairs, EditingDialogues, MinimalChangePairs,  # noqa: E402
                                  SimatDatabase)

SEED_RANGE = r"must be an integer from 0 to 2\*\*63 - 1"


@pytest.mark.parametrize("seed", [-5, 2**63, 2**70, 1.5, "3", True])
def test_bad_seeds_are_refused_by_name(seed):
    from tutorlib.world.rng import check_seed

    with pytest.raises(ValueError, match=re.escape(f"seed must be an integer from 0 to 2**63 - 1, got {seed!r}")):
        check_seed(seed)
    with pytest.raises(ValueError, match=rf"^seed {SEED_RANGE}"):
        explore_world(seed=seed)
    if seed is not True:  # numpy reads [0, True] as the integers [0, 1]
        with pytest.raises(ValueError, match=r"^seeds must be integers from 0 to 2\*\*63 - 1"):
            sample_scenes([0, seed])
    with pytest.raises(ValueError, match=rf"^seed {SEED_RANGE}"):
        place_object(Scene(), seed)
    with pytest.raises(ValueError, match=rf"^seed {SEED_RANGE}"):
        scene_captions(Scene(), seed)


def test_seed_arrays():
    from tutorlib.world.rng import seed_array

    assert seed_array(2**63 - 1).tolist() == [2**63 - 1]
    assert seed_array(np.arange(3, dtype=np.uint64)).dtype == np.int64
    assert seed_array([]).shape == (0,)
    for bad, shown in ((np.array([3, -1]), "-1"), (np.array([2**63], dtype=np.uint64), str(2**63))):
        with pytest.raises(ValueError, match=rf"seeds must be integers from 0 to 2\*\*63 - 1, got {shown}"):
            seed_array(bad)
    with pytest.raises(ValueError, match="got an array of float64"):
        seed_array(np.array([1.0, 2.0]))


def test_the_largest_seed_gives_a_scene():
    scene = sample_scenes([2**63 - 1], (3, 3)).scene(0)
    assert len(scene) == 3


def test_object_counts_have_a_stated_range():
    from tutorlib.world.sampling import MAX_OBJECTS

    assert MAX_OBJECTS == len(NUMBER_WORDS) - 1 == 10
    for bad in [(0, 11), (3, 2), (-1, 2), (2,), (1.5, 3)]:
        with pytest.raises(ValueError, match=r"^n_objects must be \(min, max\) with 0 <= min <= max <= 10"):
            sample_scenes([0], bad)
    with pytest.raises(ValueError, match="^n_objects must be an integer from 0 to 10, got 11"):
        explore_world(n_objects=11)
    scene = sample_scenes([4], (10, 10), tolerance=0.5, max_occlusion=0.9, tries=64).scene(0)
    assert scene_captions(scene)  # every allowed count has caption words


def test_explorer_options_are_checked_before_drawing():
    with pytest.raises(ValueError, match=r"^size must be an integer from 32 to 256 pixels, got 16"):
        explore_world(size=16)
    with pytest.raises(ValueError, match=r"'chartreuse' is not a color; choose one of \['gray'"):
        explore_world(color="chartreuse")
    with pytest.raises(ValueError, match=r"^concept must be 'auto' or 'attribute=value'"):
        explore_world(concept="red")
    plt.close(explore_world(seed=2**63 - 1, n_objects=0, size=32))


def test_rendering_no_scenes_gives_empty_tensors():
    for empty in ([], SceneBatch.from_scenes([])):
        rendering = render(empty, 48)
        assert rendering.images.shape == (0, 3, 48, 48) and rendering.images.dtype == torch.uint8
        assert rendering.ids.shape == (0, 48, 48) and rendering.ids.dtype == torch.int64
        assert len(rendering) == 0


@pytest.mark.parametrize("make, message", [
    (lambda: EditingDialogues(1, colors=["chartreuse"], progress=False),
     r"^colors: unknown \['chartreuse'\]; choose from \['gray', 'red'"),
    (lambda: EditingDialogues(1, shapes="cube", progress=False), r"^shapes must be a list of names from \['cube'"),
    (lambda: EditingDialogues(1, sizes=(), progress=False), r"^sizes must name at least one of \['small', 'large'\]"),
    (lambda: EditingDialogues(1, materials=["wood"], progress=False), r"^materials: unknown \['wood'\]"),
    (lambda: EditingDialogues(1, turns=4, shapes=["cube"], colors=["red", "blue"], progress=False),
     r"^turns must be an integer from 1 to 2 \(the entities that shapes and colors allow\), got 4"),
    (lambda: EditingDialogues(-1, progress=False), r"^n must be an integer >= 0, got -1"),
    (lambda: EditingDialogues(1, seed=-5, progress=False), rf"^seed {SEED_RANGE}"),
    (lambda: EditingDialogues(1, size=1000, progress=False), r"^size must be an integer from 32 to 256"),
    (lambda: SimatDatabase(4, relations=["above"], progress=False),
     r"^relations: unknown \['above'\]; choose from \['left', 'right', 'front', 'behind'\]"),
    (lambda: SimatDatabase(4, subjects=["red dragon"], progress=False),
     r"^subjects: 'dragon' in 'red dragon' is not an attribute value"),
    (lambda: SimatDatabase(4, objects="green cube", progress=False), r"^objects must be a list of phrases"),
    (lambda: SimatDatabase(4, objects=[], progress=False), r"^objects must name at least one phrase"),
    (lambda: SimatDatabase(4, seed=-1, progress=False), rf"^seed {SEED_RANGE}"),
    (lambda: SimatDatabase(-4, progress=False), r"^n_images must be an integer >= 0"),
    (lambda: CaptionedScenes(4, n_objects=(2, 12), progress=False),
     r"^n_objects must be \(min, max\) with 0 <= min <= max <= 10, got \(2, 12\)"),
    (lambda: CaptionedScenes(4, seed=2**63, progress=False), rf"^seed {SEED_RANGE}"),
    (lambda: MinimalChangePairs(2, categories=["colour"]),
     r"^categories: unknown \['colour'\]; choose from \['object', 'attribute', 'counting', 'relation'\]"),
    (lambda: MinimalChangePairs(0), r"^n must be an integer >= 1, got 0"),
    (lambda: ChangePairs(2, types=["recolor"]),
     r"^types: unknown \['recolor'\]; choose from \['color', 'material', 'add', 'drop', 'move'\]"),
    (lambda: ChangePairs(2, size=8), r"^size must be an integer from 32 to 256 pixels, got 8"),
])
def test_view_options_name_the_bad_value_and_the_valid_ones(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_objects_and_scene_graphs_refuse_positions_that_are_not_finite():
    for bad in (math.nan, math.inf, "0.5", True):
        with pytest.raises(ValueError, match=r"^x must be a finite number"):
            Obj("cube", "red", "small", "rubber", x=bad, depth=1.5)
    scene = Scene((Obj("cube", "red", "small", "rubber", x=0.1, depth=1.5),)).to_dict()
    assert Scene.from_dict(scene).objects[0].x == 0.1
    for key, value, message in (("depth", math.nan, "depth must be a finite number"),
                                ("camera", {"pan": math.inf}, "pan must be a finite number"),
                                ("light", {"direction": [0, 1]}, "light direction must be 3 numbers")):
        broken = {**scene, key: value} if key != "depth" else {
            **scene, "objects": [{**scene["objects"][0], "depth": value}]}
        with pytest.raises(ValueError, match=message):
            Scene.from_dict(broken)
    assert COLORS  # the colour list the messages quote
