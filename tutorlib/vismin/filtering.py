"""VisMin's local-global VQA filter: questions written from each edit, asked on the whole edited image (global)
and on the crop of the edited region (local); an edit is kept when both shares of expected answers reach the
category's threshold. Also the exact realisation of an edit on a scene graph (and faulty ones), which lets the
oracle judge the filter. Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.oracle import Oracle
from tutorlib.world.scene import Scene
from tutorlib.world.text import NUMBER_WORDS, RELATION_PHRASES, plural
from tutorlib.world.views.simat import phrase_filter

from .instructions import Box, Edit, EditInstruction
from .vqa import MAX_COUNT, Question, VqaModel, answer, crop

# Keep thresholds of VisMin's training data: share of expected answers, global and local alike.
KEEP = {"object": 0.95, "attribute": 0.95, "counting": 0.9, "relation": 0.9}
# VisMin's stricter threshold for the benchmark pool.
BENCHMARK_KEEP = 0.98


def caption_relation(caption: str) -> str:
    """The relation word of "a X <relation phrase> a Y". Introduced in notebook 04_vismin_minimal_change."""
    found = [r for r, phrase in RELATION_PHRASES.items() if f" {phrase} a " in caption]
    if len(found) != 1:
        raise ValueError(f"{caption!r} does not hold exactly one relation phrase")
    return found[0]


def edit_questions(edit: Edit, region: Box | None = None) -> list[tuple[Question, Box | None]]:
    """Questions with their expected answers after `edit`, each with the box to crop (None: the whole image).

    Object/attribute: is there the edited phrase (yes) / the selected phrase (no), globally and on the crop of
    `region`, and what is the changed attribute on the crop. Counting: how many, and is the removed box empty.
    Relation: is the edited caption true (yes) and the input caption (no), and is each phrase at its new box.
    Introduced in notebook 04_vismin_minimal_change.
    """
    if isinstance(edit, EditInstruction):
        if region is None:
            raise ValueError("an object or attribute edit needs the region (x, y, w, h) that was edited")
        before, after = phrase_filter(edit.selected_phrase), phrase_filter(edit.edited_phrase)
        changed = next(a for a in after if before.get(a) != after[a])
        return [(Question(f"is there a {edit.edited_phrase}", "yes"), None),
                (Question(f"is there a {edit.selected_phrase}", "no"), None),
                (Question(f"is this a {edit.edited_phrase}", "yes", local=True), region),
                (Question(f"is this a {edit.selected_phrase}", "no", local=True), region),
                (Question(f"what {changed} is this", after[changed], ATTRIBUTES[changed], True), region)]
    if edit.category == "counting":
        phrase, n = edit.layout0[0][0], len(edit.layout1)
        removed = next(box for _, box in edit.layout0 if box not in [b for _, b in edit.layout1])
        return [(Question(f"how many {plural(phrase)} are there", NUMBER_WORDS[min(n, MAX_COUNT)],
                          NUMBER_WORDS[: MAX_COUNT + 1]), None),
                (Question(f"is this a {phrase}", "no", local=True), removed)]
    relation = RELATION_PHRASES[caption_relation(edit.input_caption)]
    (a, _), (b, _) = edit.layout0
    return [(Question(f"is the {b} {relation} the {a}", "yes"), None),
            (Question(f"is the {a} {relation} the {b}", "no"), None)] + \
        [(Question(f"is this a {phrase}", "yes", local=True), box) for phrase, box in edit.layout1]


@dataclass(frozen=True)
class Verdict:
    """The filter's answers for one edited image: shares of expected answers, globally and locally, and the
    decision. Introduced in notebook 04_vismin_minimal_change."""

    global_score: float
    local_score: float
    keep: bool
    answers: tuple[tuple[str, str, str], ...]  # (question, expected, answered)


def filter_edits(model: VqaModel, images: torch.Tensor, edits: Sequence[Edit], regions: Sequence[Box | None],
                 thresholds: dict[str, float] = KEEP) -> list[Verdict]:
    """Ask every edit's questions on its edited image (uint8) and keep it when the global and the local share of
    expected answers both reach its category's threshold. Introduced in notebook 04_vismin_minimal_change."""
    if not len(images) == len(edits) == len(regions):
        raise ValueError(f"{len(images)} images, {len(edits)} edits and {len(regions)} regions")
    size = images.shape[-1]
    asked = [edit_questions(edit, region) for edit, region in zip(edits, regions)]
    views = [image if box is None else crop(image, box, size) for image, qs in zip(images, asked) for _, box in qs]
    questions = [q for qs in asked for q, _ in qs]
    answered = iter(answer(model, torch.stack(views), questions) if questions else [])
    verdicts = []
    for edit, qs in zip(edits, asked):
        rows = [(q, next(answered)) for q, _ in qs]
        scores = [float(np.mean([given == q.answer for q, given in rows if q.local == local])) for local in (False, True)]
        keep = all(score >= thresholds[edit.category] for score in scores)
        verdicts.append(Verdict(scores[0], scores[1], keep, tuple((q.text, q.answer, given) for q, given in rows)))
    return verdicts


def _object_at(boxes: dict[int, Box], box: Box) -> int:
    return next(i for i, b in boxes.items() if tuple(b) == tuple(box))


def apply_edit(scene: Scene, boxes: dict[int, Box], edit: Edit, faulty: bool = False, seed: int = 0) -> Scene:
    """The scene graph after `edit` (boxes: the visible objects' boxes in the source image). With `faulty`, a
    plausible mistake instead: a wrong new value (object, attribute; the old value when there is no other),
    nothing removed (counting) or nothing moved (relation). Introduced in notebook 04_vismin_minimal_change."""
    rng = np.random.default_rng(seed)
    if isinstance(edit, EditInstruction):
        before, after = phrase_filter(edit.selected_phrase), phrase_filter(edit.edited_phrase)
        [index] = [i for i in Oracle(scene).select(**before)]
        changed = next(a for a in after if before.get(a) != after[a])
        value = after[changed]
        if faulty:
            wrong = [v for v in ATTRIBUTES[changed] if v not in (value, before[changed])]
            value = wrong[int(rng.integers(len(wrong)))] if wrong else before[changed]
        return scene.replace(index, **{changed: value})
    if edit.category == "counting":
        kept = [box for _, box in edit.layout1]
        [removed] = [_object_at(boxes, box) for _, box in edit.layout0 if box not in kept]
        return scene if faulty else scene.remove(removed)
    if faulty:
        return scene
    (_, box_a), (_, box_b) = edit.layout0
    i, j = _object_at(boxes, box_a), _object_at(boxes, box_b)
    a, b = scene.objects[i], scene.objects[j]
    return scene.replace(i, x=b.x, depth=b.depth).replace(j, x=a.x, depth=a.depth)


def precision_recall(kept: Sequence[bool], correct: Sequence[bool]) -> dict[str, float]:
    """precision = |kept and correct| / |kept|, recall = |kept and correct| / |correct| (NaN when undefined).

    Introduced in notebook 04_vismin_minimal_change.
    """
    kept, correct = np.asarray(kept, bool), np.asarray(correct, bool)
    hits = float((kept & correct).sum())
    return {"precision": hits / float(kept.sum()) if kept.any() else float("nan"),
            "recall": hits / float(correct.sum()) if correct.any() else float("nan"),
            "kept": float(kept.mean()) if len(kept) else float("nan")}


__all__ = ["KEEP", "BENCHMARK_KEEP", "caption_relation", "edit_questions", "Verdict", "filter_edits", "apply_edit",
           "precision_recall"]
