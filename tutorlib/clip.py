"""CLIP for the shapes world, built and trained with open_clip; the same entry point loads real CLIP models.

`load("world", config=...)` trains a small CLIP from scratch on rendered scenes and their template
captions (or loads it from the cache); `load("ViT-B-32", pretrained="openai")` loads a real one where the
weights are reachable, and `load(folder)` loads a saved checkpoint. Every notebook that needs image and text
embeddings goes through the `Clip` wrapper returned here.
Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import CLIPTextCfg, CLIPVisionCfg

from tutorlib.cache import config_from_json, train_or_load
from tutorlib.device import pick_device
from tutorlib.profiles import by_profile
from tutorlib.training import History, train_loop
from tutorlib.world import ATTRIBUTES, Vocabulary, object_phrase, relation_caption, render, sample_scenes
from tutorlib.world.rng import uniform
from tutorlib.world.text import PHRASE_ORDER, scene_captions, world_vocabulary

WORLD = "world"
# Pixel statistics the world model normalises with (the floor is mid-grey).
WORLD_MEAN, WORLD_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


@dataclass(frozen=True)
class ClipConfig:
    """A small CLIP for the shapes world and how it is trained."""

    image_size: int = 64  # side of the rendered training images, in pixels
    vision: str = "resnet"  # image tower: "resnet" (open_clip's ModifiedResNet) or "vit" (patch transformer)
    resnet_width: int = 16  # stem width of the ResNet tower (one bottleneck block per stage)
    patch_size: int = 8  # ViT patch side (vision="vit")
    width: int = 64  # width of the text transformer (and of the vision transformer with vision="vit")
    layers: int = 3  # transformer blocks per tower
    heads: int = 4  # attention heads per block
    embed_dim: int = 64  # size of the joint embedding
    context_length: int = 24  # tokens per caption, <bos> and <eos> included
    steps: int = 700  # optimizer steps
    batch_size: int = 256  # image-caption pairs per step (each step renders fresh scenes)
    lr: float = 2e-3  # peak learning rate (AdamW), after a linear warm-up, then cosine decay
    warmup: int = 100  # warm-up steps
    weight_decay: float = 0.1  # AdamW weight decay
    n_objects: tuple[int, int] = (1, 3)  # objects per training scene
    seed: int = 0  # training seed: model initialisation and the stream of training scenes
    recipe: int = 2  # version of the training code; bumping it retrains instead of loading a stale cache entry

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "ClipConfig":
        """The configuration of each profile. Introduced in notebook 02_simat_delta_retrieval."""
        return by_profile(
            profile,
            smoke=cls(image_size=32, resnet_width=8, width=32, layers=1, heads=2, embed_dim=32, steps=20,
                      batch_size=32, warmup=5, seed=seed),
            standard=cls(seed=seed),
            full=cls(resnet_width=32, width=128, layers=4, embed_dim=128, steps=5000, batch_size=512, lr=1e-3,
                     warmup=300, seed=seed),
        )


class WorldTokenizer:
    """Word-level tokenizer over the world vocabulary: <bos> words <eos>, padded with <pad> (id 0).

    With `strict`, text with unknown words raises a ValueError naming them; otherwise they map to <unk>.
    Introduced in notebook 02_simat_delta_retrieval.
    """

    def __init__(self, context_length: int = 24, vocabulary: Vocabulary | None = None, strict: bool = False):
        self.vocabulary = vocabulary or world_vocabulary()
        self.context_length = context_length
        self.strict = strict

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = torch.full((len(texts), self.context_length), self.vocabulary.pad, dtype=torch.long)
        for i, text in enumerate(texts):
            ids, unknown = self.vocabulary.encode(text, bos_eos=True)
            if unknown and self.strict:
                raise ValueError(f"words not in the vocabulary: {unknown} (in {text!r}); "
                                 f"known words include {self.vocabulary.words[4:14]} ...")
            if len(ids) > self.context_length:
                ids = ids[: self.context_length - 1] + ids[-1:]  # keep <eos> last
            rows[i, : len(ids)] = torch.tensor(ids)
        return rows


def build_clip(config: ClipConfig) -> open_clip.CLIP:
    """An untrained open_clip CLIP with a ViT image tower and a text tower pooled at <eos>.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    vocabulary = world_vocabulary()
    torch.manual_seed(config.seed)
    if config.vision not in ("vit", "resnet"):
        raise ValueError(f"vision must be 'vit' or 'resnet', got {config.vision!r}")
    vision = (CLIPVisionCfg(layers=config.layers, width=config.width, head_width=config.width // config.heads,
                            patch_size=config.patch_size, image_size=config.image_size) if config.vision == "vit"
              else CLIPVisionCfg(layers=(1, 1, 1, 1), width=config.resnet_width, head_width=32,
                                 image_size=config.image_size))
    text = CLIPTextCfg(context_length=config.context_length, vocab_size=len(vocabulary), width=config.width,
                       heads=config.heads, layers=config.layers, pad_id=vocabulary.pad,
                       eos_id=vocabulary.index["<eos>"], pool_type="eos")
    return open_clip.CLIP(embed_dim=config.embed_dim, vision_cfg=vision, text_cfg=text, output_dict=True)


@dataclass
class Clip:
    """A CLIP model with its tokenizer and image preprocessing; embeddings come out L2-normalised.

    Introduced in notebook 02_simat_delta_retrieval.
    """

    model: torch.nn.Module
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    name: str = WORLD
    info: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) images -> normalised float images at the model's resolution."""
        x = images.to(self.device, torch.float32) / 255.0
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", antialias=True,
                              align_corners=False)
        mean = torch.tensor(self.mean, device=self.device)[:, None, None]
        std = torch.tensor(self.std, device=self.device)[:, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """(N, D) unit-length image embeddings (on CPU) of uint8 images."""
        self.model.eval()
        parts = [self.model.encode_image(self.preprocess(images[i : i + batch]), normalize=True).float().cpu()
                 for i in range(0, len(images), batch)]
        return torch.cat(parts) if parts else torch.zeros(0, self.embed_dim)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch: int = 1024) -> torch.Tensor:
        """(N, D) unit-length text embeddings (on CPU)."""
        self.model.eval()
        texts = list(texts)
        parts = [self.model.encode_text(self.tokenizer(texts[i : i + batch]).to(self.device), normalize=True)
                 .float().cpu() for i in range(0, len(texts), batch)]
        return torch.cat(parts) if parts else torch.zeros(0, self.embed_dim)

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1])


def training_caption(scene, seed: int, with_shape: bool = False) -> str:
    """One caption for a training scene, drawn from a mix of phrasings so that bare phrases ("a red cube",
    "a metal object"), relations and listings all land in the text tower's training distribution.
    `with_shape` makes every phrase name the objects' shapes.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    draws = uniform([seed], 21, 8)[0]
    n = len(scene)
    if n >= 2 and draws[0] < 0.5:
        i = int(draws[1] * n)
        j = (i + 1 + int(draws[2] * (n - 1))) % n
        relation = scene.true_relation(i, j, lateral=draws[3] < 0.5)
        fields = ("color", "shape") if draws[4] < 0.6 else PHRASE_ORDER
        return relation_caption(object_phrase(scene.objects[i], fields), relation,
                                object_phrase(scene.objects[j], fields))
    if draws[0] < 0.75 or n == 1:
        names = [a for a, d in zip(ATTRIBUTES, draws[4:8]) if d < 0.5 or (with_shape and a == "shape")] or ["shape"]
        return "a " + object_phrase(scene.objects[int(draws[1] * n)], tuple(names))
    return scene_captions(scene, seed)[0]


def shape_twin(scene):
    """The same scene with every object's shape moved to the next one (cube -> sphere -> cylinder -> cube):
    a minimal change that only shape tells apart. Introduced in notebook 02_simat_delta_retrieval."""
    shapes = ATTRIBUTES["shape"]
    for k, obj in enumerate(scene.objects):
        scene = scene.replace(k, shape=shapes[(shapes.index(obj.shape) + 1) % len(shapes)])
    return scene


def training_batch(config: ClipConfig, step: int, tokenizer: WorldTokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    """The rendered images (uint8) and tokenised captions of one training step; a function of the step alone,
    so an interrupted run resumes exactly.

    Half of the batch are scenes with captions of every kind; the other half are pairs of a scene and its
    shape twin (`shape_twin`), captioned with shapes, so that colour and size alone cannot tell the batch's
    pairs apart and the model has to learn shape. Introduced in notebook 02_simat_delta_retrieval.
    """
    seeds = np.arange(config.batch_size, dtype=np.int64) + (config.seed * 1_000_003 + step) * config.batch_size
    half, quarter = config.batch_size // 2, config.batch_size // 4
    general = sample_scenes(seeds[:half], config.n_objects).scenes()
    originals = sample_scenes(seeds[half : half + quarter], config.n_objects).scenes()
    scenes = general + originals + [shape_twin(s) for s in originals]
    captions = [training_caption(s, int(seed)) for s, seed in zip(general, seeds)]
    captions += [training_caption(s, int(seed), with_shape=True)
                 for s, seed in zip(scenes[half:], np.concatenate([seeds[half : half + quarter]] * 2))]
    return render(scenes, config.image_size).images, tokenizer(captions)


def train_clip(model: open_clip.CLIP, config: ClipConfig, device: torch.device,
               checkpoint: Path | None = None) -> History:
    """Contrastive training with open_clip's ClipLoss on freshly rendered scenes and template captions.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    model.to(device).train()
    clip = Clip(model, WorldTokenizer(config.context_length), config.image_size, WORLD_MEAN, WORLD_STD)
    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    # lr(step) = lr * step / warmup during warm-up, then lr * (1 + cos(pi * progress)) / 2
    def schedule(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def step_fn(batch, step):
        images, tokens = batch
        out = model(clip.preprocess(images), tokens.to(device))
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item(), "temperature": 1.0 / out["logit_scale"].item()}

    state = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    return train_loop(step_fn, lambda step: training_batch(config, step, clip.tokenizer), config.steps,
                      device=device, desc="CLIP", checkpoint=checkpoint, state=state, log_every=10)


def load(name: str = WORLD, pretrained: str | None = None, *, config: ClipConfig | None = None,
         device: str | torch.device = "auto") -> Clip:
    """A CLIP ready to embed images and texts.

    - `"world"`: the world CLIP of `config` (default ClipConfig()), loaded from the cache or trained first;
    - a folder holding `model.safetensors` and `config.json` (a saved world CLIP, e.g. a cache entry);
    - an open_clip model name, e.g. `"ViT-B-32"`, with `pretrained` a tag (`"openai"`) or a local weights
      file; `pretrained=None` builds it untrained (offline).
    Introduced in notebook 02_simat_delta_retrieval.
    """
    device = pick_device(device) if isinstance(device, str) else device
    if name == WORLD:
        config = config or ClipConfig()
        model, info = train_or_load("clip-world", config, lambda: build_clip(config),
                                   lambda m: {"history": train_clip(m, config, device).to_dict()}, device)
        return Clip(model.to(device).eval(), WorldTokenizer(config.context_length), config.image_size,
                    WORLD_MEAN, WORLD_STD, WORLD, info)
    if Path(name).is_dir():
        return _load_folder(Path(name), device)
    if name not in open_clip.list_models():
        raise ValueError(f"unknown CLIP {name!r}: not 'world', not a folder with model.safetensors and "
                         f"config.json, and not an open_clip model name such as 'ViT-B-32'")
    model, _, transform = open_clip.create_model_and_transforms(name, pretrained=pretrained, device=device)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    return Clip(model.eval(), open_clip.get_tokenizer(name), size, tuple(cfg["mean"]), tuple(cfg["std"]),
                f"{name}/{pretrained}")


def _load_folder(folder: Path, device: torch.device) -> Clip:
    from safetensors.torch import load_model

    for needed in ("model.safetensors", "config.json"):
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"{folder / needed}: missing; a saved world CLIP holds model.safetensors "
                                    "and config.json")
    values = json.loads((folder / "config.json").read_text())
    # a cache entry stores its whole key ({"config": ..., "code": ...}); a plain saved folder the config alone
    config = config_from_json(ClipConfig, values.get("config", values), str(folder / "config.json"))
    model = build_clip(config)
    load_model(model, str(folder / "model.safetensors"))
    return Clip(model.to(device).eval(), WorldTokenizer(config.context_length), config.image_size, WORLD_MEAN,
                WORLD_STD, str(folder))


def zero_shot_attributes(clip: Clip, n: int = 400, seed: int = 12345, size: int = 64) -> dict[str, float]:
    """Zero-shot accuracy per attribute on single-object scenes: the prompt "a {value} object" (or "a {shape}")
    with the highest similarity must name the object's true value. Chance: 1 / number of values.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    batch = sample_scenes(np.arange(n) + seed, (1, 1))
    images = clip.encode_images(render(batch, size).images)
    accuracy = {}
    for name, values in ATTRIBUTES.items():
        prompts = clip.encode_texts(["a " + object_phrase({name: v}, (name,)) for v in values])
        predicted = (images @ prompts.T).argmax(dim=1).numpy()
        accuracy[name] = float((predicted == batch.attributes[name][:, 0]).mean())
    return accuracy


def config_dict(config: ClipConfig) -> dict:
    """The config as a plain dict (for reports)."""
    return asdict(config)
