"""The VisMin notebook's measurements: the oracle judging the filter, and CLIP scores before and after
fine-tuning on minimal-change data. Introduced in notebook 04_vismin_minimal_change."""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import Sequence

import numpy as np
import torch

from tutorlib.clip import Clip, load
from tutorlib.world.oracle import Oracle
from tutorlib.world.render import render
from tutorlib.world.views.minimal_change import CATEGORIES, MinimalChangePairs
from tutorlib.world.views.simat import phrase_filter

from .filtering import apply_edit, filter_edits, precision_recall
from .finetune import FinetuneConfig, finetune_clip
from .instructions import EditInstruction, Rejection, grammar_edit, visible_boxes
from .scores import pair_similarities, score_pairs, summarise_scores
from .sources import rendered_scenes
from .vqa import VqaModel

# Judge scenes come from the sources stream far past the pipeline's own sources.
JUDGE_OFFSET = 1_000_000


def rendered_edits(seed: int, n: int, image_size: int = 64, offset: int = JUDGE_OFFSET) -> list[dict]:
    """n grammar edits (categories in turn) realised exactly by the renderer, half of them faulty (apply_edit),
    each with its true region: what the oracle knows to be right or wrong. Introduced in notebook 04."""
    indices = range(offset, offset + n)
    scenes, rendering = rendered_scenes(seed, "sources", indices, image_size)
    items = []
    for b, (index, scene) in enumerate(zip(indices, scenes)):
        category = CATEGORIES[index % len(CATEGORIES)]
        boxes = visible_boxes(rendering, b)
        edit = grammar_edit(scene, boxes, category, seed=index)
        if isinstance(edit, Rejection):
            continue
        faulty = bool((index // len(CATEGORIES)) % 2)  # every category gets right and faulty edits
        region = boxes[Oracle(scene).select(**phrase_filter(edit.selected_phrase))[0]] \
            if isinstance(edit, EditInstruction) else None
        items.append({"edit": edit, "region": region, "correct": not faulty, "source": rendering.images[b],
                      "scene1": apply_edit(scene, boxes, edit, faulty=faulty, seed=index)})
    edited = render([item["scene1"] for item in items], image_size).images
    for item, image in zip(items, edited):
        item["edited"] = image
    return items


def judge_filter(vqa: VqaModel, items: Sequence[dict]) -> dict[str, dict[str, float]]:
    """The filter's precision and recall per category on rendered edits whose correctness the oracle knows.

    Introduced in notebook 04_vismin_minimal_change.
    """
    verdicts = filter_edits(vqa, torch.stack([i["edited"] for i in items]), [i["edit"] for i in items],
                            [i["region"] for i in items])
    table = {}
    for category in CATEGORIES:
        rows = [k for k, i in enumerate(items) if i["edit"].category == category]
        if rows:
            table[category] = {**precision_recall([verdicts[k].keep for k in rows], [items[k]["correct"] for k in rows]),
                               "edits": len(rows)}
    table["all"] = {**precision_recall([v.keep for v in verdicts], [i["correct"] for i in items]), "edits": len(items)}
    return table


def benchmark(seed: int, n: int, image_size: int = 64) -> list[dict]:
    """The minimal-change benchmark: n exactly rendered pairs, categories in turn, from a stream no training
    data uses. Introduced in notebook 04_vismin_minimal_change."""
    pairs = MinimalChangePairs(n, size=image_size, seed=10_000 + seed)
    return [pairs[i] for i in range(len(pairs))]


def clip_scores(clip: Clip, items: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Text, image and group scores per category (percent). Introduced in notebook 04_vismin_minimal_change."""
    return summarise_scores(score_pairs(pair_similarities(clip, items)), [i["category"] for i in items])


def finetuned_scores(clip_config, items: Sequence[dict], bench: Sequence[dict], config: FinetuneConfig,
                     device: torch.device) -> tuple[dict, dict]:
    """A fresh copy of the world CLIP fine-tuned on `items`, and its scores on `bench`; (scores, history).

    Introduced in notebook 04_vismin_minimal_change.
    """
    clip = load("world", config=clip_config, device=device)
    batch = min(config.pairs_per_batch, len(items))
    history = finetune_clip(clip, list(items), replace(config, pairs_per_batch=batch), device)
    return clip_scores(clip, bench), history.to_dict()


def rendered_training_pairs(seed: int, n: int, image_size: int = 64) -> list[dict]:
    """n exactly rendered minimal-change pairs from a stream neither the benchmark nor the pipeline uses: the
    output of a perfect pipeline, the control of the fine-tuning experiment. Introduced in notebook 04."""
    pairs = MinimalChangePairs(n, size=image_size, seed=20_000 + seed)
    return [pairs[i] for i in range(len(pairs))]


def finetune_runs(clip_config, items: Sequence[dict], bench: Sequence[dict], config: FinetuneConfig,
                  seeds: Sequence[int], losses: Sequence[str], device: torch.device,
                  timer=None) -> dict[tuple[str, int], dict]:
    """{(loss, seed): {"scores", "history"}}: a fresh world CLIP fine-tuned on `items` per loss and seed (the
    seed orders the training pairs), scored on `bench`. Introduced in notebook 04_vismin_minimal_change."""
    runs = {}
    for loss in losses:
        for seed in seeds:
            with timer.stage(f"fine-tune {loss}, seed {seed}") if timer else nullcontext():
                scores, history = finetuned_scores(clip_config, items, bench, replace(config, loss=loss, seed=seed),
                                                   device)
            runs[(loss, seed)] = {"scores": scores, "history": history}
    return runs


def score_summary(runs: dict[tuple[str, int], dict], loss: str) -> dict[str, dict[str, tuple[float, float]]]:
    """Per category and score (text, image, group): (mean, std over seeds) of the runs of `loss`.

    Introduced in notebook 04_vismin_minimal_change.
    """
    tables = [run["scores"] for (name, _), run in runs.items() if name == loss]
    if not tables:
        raise ValueError(f"no runs of loss {loss!r}; runs hold {sorted({name for name, _ in runs})}")
    return {category: {score: (float(np.mean([t[category][score] for t in tables])),
                               float(np.std([t[category][score] for t in tables])))
                       for score in tables[0][category]} for category in tables[0]}


def claim_check(before: dict, after: dict[str, dict[str, tuple[float, float]]]) -> dict:
    """The paper's claim on this run: fine-tuning raises the group score of object, attribute and counting by
    more than its spread over seeds (gain > std), and spatial relation keeps the lowest group score.

    `before` holds the base CLIP's scores (clip_scores), `after` a score_summary. Introduced in notebook 04.
    """
    gains = {c: (after[c]["group"][0] - before[c]["group"], after[c]["group"][1])
             for c in ("object", "attribute", "counting")}
    raised = {c: gain > spread for c, (gain, spread) in gains.items()}
    categories = [c for c in after if c != "average"]
    hardest = min(categories, key=lambda c: after[c]["group"][0])
    return {"gains": gains, "raised": raised, "hardest_after": hardest,
            "held": all(raised.values()) and hardest == "relation"}
