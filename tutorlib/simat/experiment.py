"""One seed of the SIMAT experiment: train (or load) the world CLIP, embed the database, train the heads, and
score every method on dev and test. Introduced in notebook 02_simat_delta_retrieval."""
from __future__ import annotations

import numpy as np
import torch

from tutorlib.clip import Clip, load, training_caption, zero_shot_attributes
from tutorlib.world import render, sample_scenes
from tutorlib.world.views.simat import SimatData

from .config import SimatConfig
from .heads import train_heads
from .retrieval import Embeddings, embed_database, evaluate

NO_HEADS = "CLIP"
SPLITS = ("dev", "test")


def head_training_pairs(clip: Clip, config: SimatConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen CLIP embeddings of world scenes and one training caption each (scenes the database never uses)."""
    seeds = np.arange(config.head_pairs, dtype=np.int64) + 10**12 + config.seed * 10**7
    batch = sample_scenes(seeds, config.clip.n_objects)
    images = clip.encode_images(render(batch, config.image_size).images)
    texts = clip.encode_texts([training_caption(batch.scene(b), int(seeds[b])) for b in range(len(seeds))])
    return images, texts


def heads_settings(clip: Clip, emb: Embeddings, config: SimatConfig) -> dict[str, tuple[Embeddings, dict]]:
    """The embeddings seen without heads and through heads trained at each temperature, with their histories."""
    settings = {NO_HEADS: (emb, {})}
    images, texts = head_training_pairs(clip, config)
    for tau in config.taus:
        heads, history = train_heads(images, texts, tau, config.head_steps, config.head_batch, config.head_lr,
                                     config.seed)
        settings[f"CLIP + heads tau={tau}"] = (emb.with_heads(heads), history.to_dict())
    return settings


def score_table(settings: dict[str, Embeddings], db: SimatData, lambdas) -> dict:
    """scores[setting][split] = {"image": s, "text": s, "lambda=1.0": s, ...}."""
    table = {}
    for name, emb in settings.items():
        table[name] = {}
        for split in SPLITS:
            row = {"image": evaluate(emb, db, split, "image"), "text": evaluate(emb, db, split, "text")}
            row.update({f"lambda={lam}": evaluate(emb, db, split, "arithmetic", lam) for lam in lambdas})
            table[name][split] = row
    return table


def run_seed(config: SimatConfig, db: SimatData, device: torch.device) -> dict:
    """Everything one seed measures: CLIP training info, zero-shot accuracy, and the score table."""
    clip = load("world", config=config.clip, device=device)
    emb = embed_database(clip, db)
    settings = heads_settings(clip, emb, config)
    return {
        "clip": clip,
        "embeddings": {name: e for name, (e, _) in settings.items()},
        "head_histories": {name: h for name, (_, h) in settings.items()},
        "zero_shot": zero_shot_attributes(clip, size=config.image_size),
        "scores": score_table({name: e for name, (e, _) in settings.items()}, db, config.lambdas),
    }


def best_lambda(scores: dict, setting: str) -> float:
    """The lambda with the best dev score for a setting (then reported on test, as model selection should)."""
    dev = scores[setting]["dev"]
    return max((float(k.split("=")[1]) for k in dev if k.startswith("lambda=")), key=lambda lam: dev[f"lambda={lam}"])
