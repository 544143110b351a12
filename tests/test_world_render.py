import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from tutorlib.world import Camera, Light, Obj, Scene, render, sample_scenes
from tutorlib.world.bench import measure

RENDER_HASH_SCRIPT = """
import hashlib, numpy as np
from tutorlib.world import render, sample_scenes
r = render(sample_scenes(np.arange(32), (3, 8)), 64)
print(hashlib.sha256(r.images.numpy().tobytes() + r.ids.numpy().tobytes()).hexdigest())
"""


def _digest(rendering):
    return hashlib.sha256(rendering.images.numpy().tobytes() + rendering.ids.numpy().tobytes()).hexdigest()


def test_shapes_dtypes_and_sizes():
    batch = sample_scenes(np.arange(4), (3, 5))
    for size in (32, 64, 100, 256):
        r = render(batch, size)
        assert r.images.shape == (4, 3, size, size) and r.images.dtype == torch.uint8
        assert r.ids.shape == (4, size, size) and r.ids.dtype == torch.int64
    for bad in (16, 300, 64.0):
        with pytest.raises(ValueError, match="size must be"):
            render(batch, bad)


def test_same_pixels_in_two_processes():
    here = _digest(render(sample_scenes(np.arange(32), (3, 8)), 64))
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", RENDER_HASH_SCRIPT], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == here


def test_batch_composition_and_chunking_do_not_change_pixels():
    batch = sample_scenes(np.arange(10), (3, 6))
    whole = render(batch, 64, chunk=3)
    single = render(batch.scene(7), 64)
    assert torch.equal(whole.images[7], single.images[0])
    assert torch.equal(whole.ids[7], single.ids[0])


def test_every_object_is_visible_and_masks_partition_the_image():
    batch = sample_scenes(np.arange(64), (3, 7))
    r = render(batch, 128)
    for b in range(len(batch)):
        masks = r.instance_masks(b)
        assert (masks.sum(dim=(1, 2)) > 0).all()  # nobody is hidden completely
        assert masks.sum(dim=0).max() <= 1  # one object per pixel at most


def test_occlusion_nearer_object_wins():
    far = Obj("cube", "red", "large", "rubber", x=0.0, depth=1.8)
    near = Obj("cube", "blue", "large", "rubber", x=0.08, depth=1.2)
    r = render(Scene((far, near)), 128)
    overlap_row = r.ids[0][:, 64]
    assert (overlap_row == 1).sum() > 0
    # Where the two silhouettes overlap, the pixel belongs to the near object (index 1).
    u, v, s = Scene((near,)).screen()[0] * 128
    assert r.ids[0, int(v), int(u)] == 1


def test_colours_materials_and_lighting_show_in_pixels():
    def centre_colour(obj, light=Light()):
        r = render(Scene((obj,), light=light), 128)
        mask = r.instance_masks(0)[0]
        return r.images[0][:, mask].float().mean(dim=1)

    red = centre_colour(Obj("sphere", "red", "large", "rubber", 0.0, 1.4))
    blue = centre_colour(Obj("sphere", "blue", "large", "rubber", 0.0, 1.4))
    assert red[0] > red[2] and blue[2] > blue[0]
    dim = centre_colour(Obj("sphere", "red", "large", "rubber", 0.0, 1.4), Light(intensity=0.6))
    assert (dim < red).all()
    # Metal has a bright highlight: its brightest pixel is near white, rubber's is not.
    def brightest(material):
        r = render(Scene((Obj("sphere", "blue", "large", material, 0.0, 1.4),)), 128)
        return r.images[0].float().min(dim=0).values[r.instance_masks(0)[0]].max()
    assert brightest("metal") > 200 > brightest("rubber")


def test_concept_masks_match_attributes():
    batch = sample_scenes(np.arange(20), (3, 6))
    r = render(batch, 64)
    for b in range(20):
        scene = batch.scene(b)
        expected = torch.zeros(64, 64, dtype=torch.bool)
        for k, o in enumerate(scene.objects):
            if o.color == "red":
                expected |= r.ids[b] == k
        assert torch.equal(r.concept_mask("color", "red")[b], expected)
    assert len(r.concept_masks()) == 15
    with pytest.raises(ValueError, match="not a value"):
        r.concept_mask("color", "pink")


def test_camera_pan_shifts_the_picture():
    scene = Scene((Obj("cylinder", "green", "large", "metal", 0.0, 1.4),))
    centre = lambda s: render(s, 64).instance_masks(0)[0].nonzero()[:, 1].float().mean()  # noqa: E731
    assert centre(scene.with_view(Camera(pan=0.2))) < centre(scene) - 2


def test_empty_scene_is_floor_only():
    r = render(Scene(), 32)
    assert (r.ids == -1).all()
    assert r.images.float().std() < 20


def test_benchmark_reports_consistent_figures():
    result = measure(size=32, n_scenes=200, batch=100, repeats=1)
    assert result["scenes"] == 200 and result["seconds"] > 0
    assert result["scenes_per_second"] == pytest.approx(200 / result["seconds"])
