import json
import math
from dataclasses import asdict, replace

import pytest
import torch

from tutorlib.drawing import checkpoints
from tutorlib.drawing.gan import (LAYERS, Discriminator, GanConfig, Generator, bank_codes, discriminator_loss, generate,
                                  generator_loss, latent_bank, to_signed, to_uint8, train_gan)
from tutorlib.drawing.segmenter import (CONCEPTS, Segmenter, SegmenterConfig, concept_iou, connected_components,
                                        describe, find_objects, render_masks, segment, train_segmenter,
                                        well_formed_share)
from tutorlib.world.text import object_phrase
from tutorlib.world.views.captioned import CaptionedScenes

TINY = replace(GanConfig(), image_size=32, z_dim=8, widths=(16, 8, 8, 4), d_width=4, steps=4, batch=4, pool=16)



pytestmark = pytest.mark.usefixtures("one_thread")

def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(TINY).eval()


def test_latent_bank_rows_do_not_depend_on_its_length():
    assert torch.equal(latent_bank(3, 5, 4), latent_bank(3, 20, 4)[:5])
    assert not torch.equal(latent_bank(3, 5, 4), latent_bank(4, 5, 4))
    assert torch.equal(bank_codes([4, 1], 3, 4), latent_bank(3, 5, 4)[[4, 1]])
    with pytest.raises(ValueError, match=">= 0"):
        bank_codes([-1], 0, 4)


def test_generator_layers_double_the_side_and_continue_from_a_feature_map():
    g = tiny_generator()
    z = torch.randn(3, TINY.z_dim)
    sides = [g.features(z, layer).shape for layer in LAYERS]
    assert [tuple(s) for s in sides] == [(3, 16, 2, 2), (3, 8, 4, 4), (3, 8, 8, 8), (3, 4, 16, 16)]
    image = g(z)
    assert image.shape == (3, 3, 32, 32) and image.abs().max() <= 1
    for layer in LAYERS:
        assert torch.allclose(g.from_layer(g.features(z, layer), layer), image, atol=1e-6)
    with pytest.raises(ValueError, match="valid layers.*layer1"):
        g.features(z, "layer9")
    with pytest.raises(ValueError, match="valid layers"):
        g.from_layer(image, "conv")


def test_generate_is_a_function_of_the_sample_id():
    g = tiny_generator()
    images = generate(g, ids=[0, 1, 2])
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 32, 32)
    assert torch.equal(generate(g, ids=[2]), images[2:])
    assert torch.equal(generate(g, z=latent_bank(0, 3, TINY.z_dim)), images)
    with pytest.raises(ValueError, match="either ids"):
        generate(g)


def test_uint8_round_trip():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(to_uint8(to_signed(x)), x)


def test_training_runs_and_resumes(tmp_path):
    real = CaptionedScenes(16, 32, 1, (1, 2), progress=False).images
    torch.manual_seed(0)
    g, d = Generator(TINY), Discriminator(TINY)
    assert d(to_signed(real[:2])).shape == (2,)
    history = train_gan(g, d, TINY, torch.device("cpu"), checkpoint=tmp_path / "gan.pt", real=real)
    assert len(history.series("loss_d")[0]) >= 1
    # a second call with the same checkpoint finds every step done and changes nothing
    before = {k: v.clone() for k, v in g.state_dict().items()}
    train_gan(g, d, TINY, torch.device("cpu"), checkpoint=tmp_path / "gan.pt", real=real)
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())


def test_checkpoint_round_trip_in_half_precision(tmp_path, monkeypatch):
    from tutorlib.shipped import ShippedError, ShippedModel, save_shipped

    g = tiny_generator()
    save_shipped(g, TINY, {"command": "test", "history": {"loss_d": [[0, 1.0]]}}, tmp_path / "gan")
    monkeypatch.setattr(ShippedModel, "folder", property(lambda self: tmp_path / "gan"))
    loaded, log = checkpoints.generator_for(TINY, torch.device("cpu"), use_shipped=True)
    z = torch.randn(2, TINY.z_dim)
    assert loaded.config == TINY and log["from_checkpoint"] == str(tmp_path / "gan")
    assert torch.allclose(loaded(z), g.eval()(z), atol=2e-2)
    assert json.loads((tmp_path / "gan" / "config.json").read_text()) == json.loads(json.dumps(asdict(TINY)))
    # a different config is an error naming the entry point, never a silent 4000-step retrain
    with pytest.raises(ShippedError, match=r"another config.*python -m tutorlib.drawing.checkpoints"):
        checkpoints.generator_for(replace(TINY, steps=TINY.steps + 1), torch.device("cpu"), use_shipped=True)
    (tmp_path / "gan" / "config.json").unlink()
    with pytest.raises(ShippedError, match=r"config.json is missing"):
        checkpoints.generator_for(TINY, torch.device("cpu"), use_shipped=True)


def test_the_shipped_generator_matches_the_standard_config():
    from tutorlib.drawing.config import DrawingConfig

    generator, log = checkpoints.generator_for(DrawingConfig.for_profile("standard").gan, torch.device("cpu"), True)
    assert log["command"].startswith(checkpoints.COMMAND)


def test_concept_iou_by_hand():
    predicted = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    truth = torch.zeros(1, 2, 2, 2, dtype=torch.bool)
    predicted[0, 0, 0, :] = True  # 2 pixels
    truth[0, 0, :, 0] = True  # 2 pixels, 1 shared: IoU 1 / 3
    iou = concept_iou(predicted, truth)
    assert iou[0].item() == pytest.approx(1 / 3) and torch.isnan(iou[1])
    with pytest.raises(ValueError, match="shape"):
        concept_iou(predicted, truth[:, :1])


def test_connected_components():
    mask = torch.tensor([[1, 1, 0, 0, 1],
                         [0, 1, 0, 0, 1],
                         [0, 0, 0, 0, 0],
                         [1, 0, 0, 1, 1]], dtype=torch.bool)
    labels = connected_components(mask)
    assert int(labels.max()) == 4 and bool(((labels > 0) == mask).all())
    assert labels[0, 0] == labels[1, 1] and labels[0, 4] == labels[1, 4] and labels[3, 3] == labels[3, 4]
    assert len({int(labels[0, 0]), int(labels[0, 4]), int(labels[3, 0]), int(labels[3, 3])}) == 4
    assert torch.equal(connected_components(torch.ones(2, 2, dtype=torch.bool)), torch.ones(2, 2, dtype=torch.long))


def test_describe_exact_masks_names_every_object():
    data = CaptionedScenes(6, 64, 7, (1, 2), progress=False)
    masks = render_masks(data)
    assert all(torch.equal(masks[n], data[n]["masks"]) for n in range(len(data)))
    for n in range(len(data)):
        objects, caption = describe(masks[n].float(), min_pixels=1)
        visible = [o for k, o in enumerate(data.scenes[n].objects) if bool((data.ids[n] == k).any())]
        if len(objects) == len(visible):  # objects that touch on screen merge into one component
            assert sorted(o.phrase for o in objects) == sorted(object_phrase(o) for o in visible)
            assert all(min(o.purity.values()) == 1.0 for o in objects)
            assert caption.startswith("a ") and caption.count(" and ") == len(objects) - 1
    empty = torch.zeros(len(CONCEPTS), 8, 8)
    assert describe(empty) == ([], "an empty floor")
    assert well_formed_share(masks.float(), min_pixels=1) == 1.0 and well_formed_share(empty[None]) == 0.0
    with pytest.raises(ValueError, match="probabilities must be"):
        find_objects(torch.zeros(3, 8, 8))


def test_segmenter_learns_and_segments():
    config = replace(SegmenterConfig(), image_size=32, width=4, steps=30, batch=8, pool=64, lr=1e-2)
    torch.manual_seed(0)
    model = Segmenter(config)
    history = train_segmenter(model, config, torch.device("cpu"))
    losses = history.series("loss")[1]
    assert losses[-1] < losses[0]
    images = CaptionedScenes(3, 32, 9, (1, 2), progress=False).images
    p = segment(model, images)
    assert p.shape == (3, len(CONCEPTS), 32, 32) and 0 <= float(p.min()) and float(p.max()) <= 1


def test_profiles_fit_their_layers():
    from tutorlib.drawing.config import DrawingConfig

    for profile in ("smoke", "standard", "full"):
        config = DrawingConfig.for_profile(profile, seed=3)
        generator_units = dict(zip(LAYERS, config.gan.widths))
        assert max(config.curve_units) <= generator_units[config.edit_layer]
        assert config.words.seed == 3 and config.speech.caption == "speech"
        assert config.segmenter.image_size == config.gan.image_size
    assert DrawingConfig.for_profile("standard").use_shipped_gan
    with pytest.raises(ValueError, match="unknown profile"):
        DrawingConfig.for_profile("huge")


def test_gan_losses_by_hand():
    # D undecided (logits 0): -log(1/2) for each term
    zeros = torch.zeros(4)
    assert float(discriminator_loss(zeros, zeros)) == pytest.approx(2 * math.log(2))
    assert float(generator_loss(zeros)) == pytest.approx(math.log(2))
    # D right with margin 2 on both: 2 log(1 + e^-2); the generator then pays log(1 + e^2)
    real, fake = torch.full((3,), 2.0), torch.full((3,), -2.0)
    assert float(discriminator_loss(real, fake)) == pytest.approx(2 * math.log1p(math.exp(-2)))
    assert float(generator_loss(fake)) == pytest.approx(math.log1p(math.exp(2)))
    # the mean over the batch, not the sum
    assert float(generator_loss(torch.tensor([0.0, 100.0]))) == pytest.approx(math.log(2) / 2, rel=1e-6)
