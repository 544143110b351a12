import dataclasses

import pytest
import torch

from tutorlib.clip import WORLD_MEAN, WORLD_STD, Clip, ClipConfig, WorldTokenizer, build_clip, load
from tutorlib.clip import training_caption, zero_shot_attributes
from tutorlib.world import Oracle, sample_scene
from tutorlib.world.text import RELATION_PHRASES
from tutorlib.world.views.simat import phrase_filter

TINY = dataclasses.replace(ClipConfig.for_profile("smoke"), steps=8, batch_size=16)


def test_tokenizer_layout_truncation_and_unknown_words():
    tokenizer = WorldTokenizer(context_length=6)
    vocab = tokenizer.vocabulary
    rows = tokenizer(["a red cube", "a big red shiny metal ball"])
    assert rows.shape == (2, 6)
    assert rows[0].tolist() == [vocab.index["<bos>"], vocab.index["a"], vocab.index["red"], vocab.index["cube"],
                                vocab.index["<eos>"], vocab.pad]
    assert rows[1, -1] == vocab.index["<eos>"]  # truncated, <eos> kept last
    assert tokenizer("a dragon")[0, 2] == vocab.unk
    with pytest.raises(ValueError, match=r"\['dragon'\]"):
        WorldTokenizer(strict=True)("a red dragon")


def test_training_captions_are_true_of_their_scene():
    for seed in range(300):
        scene = sample_scene(seed, (1, 3))
        caption = training_caption(scene, seed)
        for rel, phrase in RELATION_PHRASES.items():
            marker = f" {phrase} a "
            if marker in caption:
                subject, obj = caption[2:].split(marker)
                assert Oracle(scene).relate(phrase_filter(subject), rel, phrase_filter(obj)), caption


def test_built_model_embeds_to_unit_vectors():
    model = build_clip(TINY)
    clip = Clip(model, WorldTokenizer(TINY.context_length), TINY.image_size, WORLD_MEAN, WORLD_STD)
    images = torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8)
    x = clip.encode_images(images)
    t = clip.encode_texts(["a red cube", "a blue sphere to the left of a green cylinder"])
    assert x.shape == (3, TINY.embed_dim) and t.shape == (2, TINY.embed_dim)
    assert torch.allclose(x.norm(dim=1), torch.ones(3), atol=1e-5)


def test_world_clip_trains_caches_and_loads_from_a_folder(isolated_dirs):
    first = load("world", config=TINY, device="cpu")
    assert first.info["from_cache"] is False and len(first.info["history"]["loss"]) > 0
    again = load("world", config=TINY, device="cpu")
    assert again.info["from_cache"] is True
    texts = ["a red cube", "a metal object"]
    assert torch.allclose(first.encode_texts(texts), again.encode_texts(texts))
    folder = next((isolated_dirs / "data" / "cache").glob("clip-world-*"))
    saved = load(str(folder), device="cpu")
    assert torch.allclose(saved.encode_texts(texts), first.encode_texts(texts))
    accuracy = zero_shot_attributes(saved, n=20, size=32)
    assert set(accuracy) == {"size", "color", "material", "shape"} and all(0 <= a <= 1 for a in accuracy.values())


def test_open_clip_names_build_offline_and_bad_names_fail(tmp_path):
    clip = load("ViT-B-32", pretrained=None, device="cpu")
    assert clip.image_size == 224 and clip.embed_dim == 512
    assert clip.encode_texts(["a photo of a red cube"]).shape == (1, 512)
    with pytest.raises(ValueError, match="unknown CLIP 'not-a-model'"):
        load("not-a-model")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load(str(tmp_path))


def test_vision_towers():
    vit = build_clip(dataclasses.replace(TINY, vision="vit", width=32, heads=2))
    assert type(vit.visual).__name__ == "VisionTransformer"
    assert type(build_clip(TINY).visual).__name__ == "ModifiedResNet"
    with pytest.raises(ValueError, match="vision must be"):
        build_clip(dataclasses.replace(TINY, vision="mlp"))
