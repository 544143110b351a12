"""Diffusion inpainting: the text tower matches the CLIP's, masks and windows on hand cases, training runs and
inpainting changes pixels inside the region only."""
import pytest
import torch

from tutorlib.clip import WORLD_MEAN, WORLD_STD, Clip, ClipConfig, WorldTokenizer, build_clip
from tutorlib.vismin.inpainting import (ClipTextTower, InpaintConfig, InpaintData, Inpainter, crop_inputs, inpaint,
                                        train_inpainter, window_mask)
from tutorlib.vismin.instructions import visible_boxes
from tutorlib.vismin.sources import rendered_scenes

CONFIG = InpaintConfig(channels=(16, 16), steps=2, batch=4, pool=8, sample_steps=3)


@pytest.fixture(scope="module")
def clip():
    config = ClipConfig.for_profile("smoke")
    torch.manual_seed(0)
    return Clip(build_clip(config).eval(), WorldTokenizer(config.context_length), config.image_size, WORLD_MEAN,
                WORLD_STD)


def test_text_tower_is_the_clip_text_encoder_before_pooling(clip):
    tokens = clip.tokenizer(["a red cube", "two blue spheres"])
    tower = ClipTextTower(clip.model)
    features = tower(tokens)
    assert features.shape == (2, tokens.shape[1], tower.width)
    # pooled at <eos> and projected, the tower's features are the CLIP's text embedding
    eos = (tokens == clip.tokenizer.vocabulary.index["<eos>"]).int().argmax(1)
    pooled = features[torch.arange(2), eos] @ clip.model.text_projection
    assert torch.allclose(pooled, clip.model.encode_text(tokens), atol=1e-5)
    assert not any(p.requires_grad for p in tower.parameters())


def test_window_mask_hand_case():
    mask = window_mask((10, 10, 4, 4), (8, 8, 16), 32, pad=1)  # box 9..15 in a window from 8, scale 2
    rows = torch.nonzero(mask[0].any(1)).flatten()
    cols = torch.nonzero(mask[0].any(0)).flatten()
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (2, 13, 2, 13)


def test_training_data_and_steps(clip):
    data = InpaintData(CONFIG)
    crops, masks, texts = data.batch(0)
    assert crops.shape == (4, 3, 32, 32) and masks.shape == (4, 1, 32, 32) and len(texts) == 4
    assert crops.min() >= -1 and crops.max() <= 1 and all(0 < m.mean() < 1 for m in masks)
    assert data.batch(0)[2] == texts
    history = train_inpainter(Inpainter(CONFIG, clip), CONFIG, torch.device("cpu"))
    assert len(history.to_dict()["loss"]) >= 1


def test_interrupted_training_resumes_to_the_uninterrupted_weights(clip, tmp_path, monkeypatch):
    config = InpaintConfig(channels=(16, 16), steps=4, batch=2, pool=8, sample_steps=3)

    def trained(checkpoint=None):
        torch.manual_seed(0)
        model = Inpainter(config, clip)
        train_inpainter(model, config, torch.device("cpu"), checkpoint=checkpoint)
        return model.unet.state_dict()

    checkpoint = tmp_path / "inpainter.pt"
    monkeypatch.setenv("TUTORLIB_STEP_CAP", "2")  # the first run stops (and saves) after 2 of the 4 steps
    trained(checkpoint)
    assert torch.load(checkpoint, weights_only=True)["step"] == 2  # plain floats only: loadable without pickle
    monkeypatch.delenv("TUTORLIB_STEP_CAP")
    resumed, uninterrupted = trained(checkpoint), trained()
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_inpaint_changes_the_region_only_and_is_seeded(clip):
    model = Inpainter(CONFIG, clip).eval()
    scenes, rendering = rendered_scenes(0, "inpaint-test", range(2), 64)
    regions = [next(iter(visible_boxes(rendering, b).values())) for b in range(2)]
    out = inpaint(model, rendering.images, regions, ["red cube", ""], seed=3)
    again = inpaint(model, rendering.images, regions, ["red cube", ""], seed=3)
    assert torch.equal(out, again) and out.dtype == torch.uint8
    for k, (x, y, w, h) in enumerate(regions):
        outside = torch.ones(64, 64, dtype=torch.bool)
        outside[max(0, y - 2) : y + h + 2, max(0, x - 2) : x + w + 2] = False
        assert torch.equal(out[k][:, outside], rendering.images[k][:, outside])
        assert not torch.equal(out[k], rendering.images[k])
    _, mask, window = crop_inputs(rendering.images[0], regions[0], CONFIG)
    assert mask.shape == (1, 32, 32) and window[2] <= 64
    with pytest.raises(ValueError, match="2 images, 1 regions and 2 phrases"):
        inpaint(model, rendering.images, regions[:1], ["a", "b"])


def test_saved_inpainter_loads_back_and_damage_is_named(clip, tmp_path, monkeypatch):
    from tutorlib.shipped import ShippedError, ShippedModel, save_shipped
    from tutorlib.vismin.checkpoints import InpainterSetup, inpainter_for

    setup = InpainterSetup(CONFIG, ClipConfig.for_profile("smoke"))
    model = Inpainter(CONFIG, clip)
    save_shipped(model, setup, {"history": {"loss": [[0, 1.0]]}, "command": "test"}, tmp_path / "inpainter")
    monkeypatch.setattr(ShippedModel, "folder", property(lambda self: tmp_path / "inpainter"))
    loaded, info = inpainter_for(setup.inpaint, setup.clip, torch.device("cpu"), use_shipped=True)
    assert info["history"] == {"loss": [[0, 1.0]]} and loaded.config == CONFIG
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a.half().float(), b)
    (tmp_path / "inpainter" / "training_log.json").unlink()
    with pytest.raises(ShippedError, match=r"training_log.json is missing.*python -m tutorlib.vismin.checkpoints"):
        inpainter_for(setup.inpaint, setup.clip, torch.device("cpu"), use_shipped=True)
