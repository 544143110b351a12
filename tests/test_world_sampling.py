import numpy as np
import pytest

from tutorlib.world import ATTRIBUTES, Obj, Scene, place_object, sample_scene, sample_scenes
from tutorlib.world.rng import uniform
from tutorlib.world.scene import FAR, FOOTPRINT, NEAR, X_MARGIN, placement_conflicts, project


def test_uniform_is_in_range_and_independent_of_the_batch():
    alone = uniform([7], 2, 100)
    together = uniform([3, 7, 11], 2, 100)
    assert np.array_equal(alone[0], together[1])
    assert 0.0 <= together.min() and together.max() < 1.0
    assert abs(uniform(np.arange(200), 0, 50).mean() - 0.5) < 0.01
    assert not np.array_equal(uniform([7], 2, 10), uniform([7], 3, 10))


def test_same_seed_same_scene_whatever_the_batch():
    batch = sample_scenes(np.arange(50), (3, 8))
    for b in (0, 17, 49):
        assert batch.scene(b) == sample_scene(b, (3, 8))
    assert sample_scene(1) != sample_scene(2)


def test_object_counts_attributes_and_frame():
    batch = sample_scenes(np.arange(400), (2, 5))
    assert batch.count.min() >= 2 and batch.count.max() <= 5
    for scene in batch.scenes()[:100]:
        screen = scene.screen()
        assert np.all(np.abs(screen[:, 0] - 0.5) + screen[:, 2] <= X_MARGIN + 1e-9)
        for o in scene.objects:
            assert NEAR <= o.depth <= FAR


def test_no_overlap_beyond_tolerance():
    for scene in sample_scenes(np.arange(300), (4, 8)).scenes():
        objs = scene.objects
        for i in range(len(objs)):
            for j in range(i + 1, len(objs)):
                gap = np.hypot(objs[i].x - objs[j].x, objs[i].depth - objs[j].depth)
                assert gap >= FOOTPRINT * (objs[i].radius + objs[j].radius) - 1e-9


def test_allowed_restricts_values_and_rejects_unknown():
    batch = sample_scenes(np.arange(100), (3, 3), allowed={"color": ["red"], "shape": ["cube", "sphere"]})
    assert {o.color for s in batch.scenes() for o in s.objects} == {"red"}
    assert {o.shape for s in batch.scenes() for o in s.objects} == {"cube", "sphere"}
    with pytest.raises(ValueError, match="unknown attributes"):
        sample_scenes([0], allowed={"colour": ["red"]})
    with pytest.raises(ValueError, match="not a color"):
        sample_scenes([0], allowed={"color": ["pink"]})
    with pytest.raises(ValueError, match="n_objects"):
        sample_scenes([0], (5, 2))


def test_projection_hand_computed():
    # u = 0.5 + 0.42 * x / depth ; r = 0.42 * radius / depth ; v = -0.06 + 0.98 / depth - r
    u, v, r = project(0.5, 1.4, 0.34)
    assert u == pytest.approx(0.5 + 0.42 * 0.5 / 1.4)
    assert r == pytest.approx(0.42 * 0.34 / 1.4)
    assert v == pytest.approx(-0.06 + 0.98 / 1.4 - r)
    # Farther objects sit higher in the image and look smaller.
    assert project(0.0, 1.8, 0.34)[1] < project(0.0, 1.2, 0.34)[1]


def test_placement_conflicts_hand_cases():
    # Two small objects 0.1 apart collide; 1.0 apart side by side they do not.
    assert placement_conflicts([0.0], [1.5], [0.2], [0.1], [1.5], [0.2])[0, 0]
    assert not placement_conflicts([0.0], [1.5], [0.2], [1.0], [1.5], [0.2])[0, 0]
    # Same column, 0.2 apart: with 90% interpenetration allowed the footprints pass, but the near box hides
    # 52% of the far one's box (far: r = 0.119, v in [0.519, 0.757]; near: v in [0.634, 0.92]).
    args = ([0.0], [1.0], [0.34], [0.0], [1.2], [0.34])
    assert placement_conflicts(*args, tolerance=0.9, max_occlusion=0.5)[0, 0]
    assert not placement_conflicts(*args, tolerance=0.9, max_occlusion=0.6)[0, 0]


def test_place_object_honours_attributes_and_constraint():
    scene = sample_scene(5, (3, 3))
    anchor = scene.objects[0]
    obj = place_object(scene, 11, where=lambda x, d: d > anchor.depth, color="cyan", shape="sphere")
    assert obj is not None and obj.color == "cyan" and obj.shape == "sphere"
    assert obj.depth > anchor.depth
    assert not scene.collides(obj)
    assert place_object(scene, 11, where=lambda x, d: d > 99.0) is None
    with pytest.raises(ValueError, match="unknown attributes"):
        place_object(scene, 1, colour="red")


def test_scene_edits_and_dict_round_trip():
    scene = sample_scene(9, (3, 3))
    assert len(scene.add(scene.objects[0])) == 4 and len(scene.remove(1)) == 2
    assert scene.replace(0, color="blue").objects[0].color == "blue"
    assert scene.objects[0].color == sample_scene(9, (3, 3)).objects[0].color  # the original is unchanged
    assert Scene.from_dict(scene.to_dict()) == scene
    with pytest.raises(IndexError, match="out of range"):
        scene.remove(3)
    with pytest.raises(ValueError, match="not a shape"):
        Obj("cone", "red", "small", "rubber", 0.0, 1.5)


def test_relations_follow_positions():
    a = Obj("cube", "red", "small", "rubber", x=-0.5, depth=1.2)
    b = Obj("sphere", "blue", "large", "metal", x=0.5, depth=1.6)
    scene = Scene((a, b))
    rel = scene.relations()
    # CLEVR layout: rel[r][j] lists the objects i that are r of object j.
    assert rel["left"] == [[], [0]] and rel["right"] == [[1], []]
    assert rel["front"] == [[], [0]] and rel["behind"] == [[1], []]
    assert set(ATTRIBUTES) == {"size", "color", "material", "shape"}


def test_true_relation_per_axis():
    a = Obj("cube", "red", "small", "rubber", x=-0.5, depth=1.6)
    b = Obj("sphere", "blue", "large", "metal", x=0.5, depth=1.2)
    scene = Scene((a, b))
    assert scene.true_relation(0, 1, lateral=True) == "left" and scene.true_relation(1, 0, lateral=True) == "right"
    assert scene.true_relation(0, 1, lateral=False) == "behind" and scene.true_relation(1, 0, lateral=False) == "front"
