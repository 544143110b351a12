"""One seed of the SIMAT experiment: train (or load) the world CLIP, embed the database, train the heads, and
score every method on dev and test. Introduced in notebook 02_simat_delta_retrieval."""
from __future__ import annotations

import numpy as np
import torch

from tutorlib.clip import Clip, load, training_caption, zero_shot_attributes
from tutorlib.world import object_phrase, relation_caption, render, sample_scenes
from tutorlib.world.rng import uniform
from tutorlib.world.views.simat import SimatData

from .config import SimatConfig
from .heads import train_heads
from .retrieval import Embeddings, embed_database, evaluate

NO_HEADS = "CLIP"
SPLITS = ("dev", "test")


CAPTION_STYLES = ("mixed", "relations")


def relation_pair_caption(scene, seed: int) -> str:
    """SIMAT's caption style for a two-object scene: "a red cube to the left of a green sphere" (colour and
    shape phrases, a random true relation of object 0 to object 1)."""
    relation = scene.true_relation(0, 1, lateral=uniform([seed], 31, 1)[0, 0] < 0.5)
    phrase = lambda o: object_phrase(o, ("color", "shape"))  # noqa: E731
    return relation_caption(phrase(scene.objects[0]), relation, phrase(scene.objects[1]))


def head_training_pairs(clip: Clip, config: SimatConfig, style: str = "mixed") -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen CLIP embeddings of world scenes and one caption each, from scenes the database never uses.

    "mixed": scenes and captions like CLIP's own training data; "relations": two-object scenes captioned
    in SIMAT's style, the analogue of the paper adapting CLIP to COCO-like captions.
    """
    if style not in CAPTION_STYLES:
        raise ValueError(f"caption style must be one of {list(CAPTION_STYLES)}, got {style!r}")
    seeds = np.arange(config.head_pairs, dtype=np.int64) + 10**12 + config.seed * 10**7
    batch = sample_scenes(seeds, config.clip.n_objects if style == "mixed" else (2, 2))
    caption = training_caption if style == "mixed" else relation_pair_caption
    images = clip.encode_images(render(batch, config.image_size).images)
    texts = clip.encode_texts([caption(batch.scene(b), int(seeds[b])) for b in range(len(seeds))])
    return images, texts


def heads_settings(clip: Clip, emb: Embeddings, config: SimatConfig) -> dict[str, tuple[Embeddings, dict]]:
    """The embeddings seen without heads, through heads trained on CLIP-like captions at each temperature, and
    through heads trained on SIMAT-style relation captions at the first temperature; with their histories."""
    settings = {NO_HEADS: (emb, {})}
    for style in CAPTION_STYLES:
        images, texts = head_training_pairs(clip, config, style)
        for tau in config.taus if style == "mixed" else config.taus[:1]:
            heads, history = train_heads(images, texts, tau, config.head_steps, config.head_batch, config.head_lr,
                                         config.seed)
            name = f"CLIP + heads tau={tau}" + ("" if style == "mixed" else ", SIMAT-style captions")
            settings[name] = (emb.with_heads(heads), history.to_dict())
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


def summarise(results: dict[int, dict]) -> dict[tuple[str, str], dict]:
    """Mean and standard deviation over seeds of each (setting, method) on dev and test; for the arithmetic
    with lambda chosen on dev, also the chosen lambdas. Introduced in notebook 02_simat_delta_retrieval."""
    runs = list(results.values())
    rows: dict[tuple[str, str], dict] = {}
    for name in runs[0]["scores"]:
        chosen = [best_lambda(r["scores"], name) for r in runs]
        for split in SPLITS:
            values = {
                "image only": [r["scores"][name][split]["image"] for r in runs],
                "text only": [r["scores"][name][split]["text"] for r in runs],
                "arithmetic λ=1": [r["scores"][name][split]["lambda=1.0"] for r in runs],
                "arithmetic, λ chosen on dev": [r["scores"][name][split][f"lambda={lam}"]
                                                for r, lam in zip(runs, chosen)],
            }
            for method, v in values.items():
                rows.setdefault((name, method), {})[split] = (float(np.mean(v)), float(np.std(v)))
        rows[(name, "arithmetic, λ chosen on dev")]["lambda"] = chosen
    return rows
