"""Counterfactual instructions: the real instruction with its colour, shape or relation words swapped.

"add a red cube behind it on the left" -> "add a blue cube in front of it on the left". Only the NEW object's
colour and shape change (an earlier object named as the reference keeps its words, so the reference still
exists). Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import numpy as np

from tutorlib.world.attributes import COLORS, SHAPES
from tutorlib.world.text import tokenize

CATEGORIES = ("color", "shape", "relation")
LATERAL_SWAP = {"left": "right", "right": "left"}
REGION_DEPTH_SWAP = {"front": "back", "back": "front"}


def new_object_words(text: str) -> tuple[str | None, str | None]:
    """The colour and shape words of the object an instruction adds (the first of each), None when absent.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    tokens = tokenize(text)
    color = next((t for t in tokens if t in COLORS), None)
    shape = next((t for t in tokens if t in SHAPES), None)
    return color, shape


def swap_words(text: str, color: str | None = None, shape: str | None = None, flip_lateral: bool = False,
               flip_depth: bool = False) -> str:
    """The instruction with the new object's colour and/or shape replaced and relations flipped.

    flip_lateral: left <-> right; flip_depth: "in front of" <-> "behind" and, for the first turn's regions,
    front <-> back. Introduced in notebook 01_sscr_iterative_editing.
    """
    tokens = tokenize(text)
    out, i, seen_color, seen_shape = [], 0, False, False
    while i < len(tokens):
        t = tokens[i]
        if t in COLORS and not seen_color:
            seen_color = True
            out.append(color or t)
        elif t in SHAPES and not seen_shape:
            seen_shape = True
            out.append(shape or t)
        elif flip_lateral and t in LATERAL_SWAP:
            out.append(LATERAL_SWAP[t])
        elif flip_depth and tokens[i : i + 3] == ["in", "front", "of"]:
            out.append("behind")
            i += 2
        elif flip_depth and t == "behind":
            out += ["in", "front", "of"]
        elif flip_depth and t in REGION_DEPTH_SWAP:
            out.append(REGION_DEPTH_SWAP[t])
        else:
            out.append(t)
        i += 1
    return " ".join(out)


def counterfactual(text: str, rng: np.random.Generator) -> str:
    """A counterfactual of `text`: a random non-empty subset of {colour, shape, relation} is swapped, a colour
    or shape for another value, a relation by flipping its lateral or depth word (whichever the text has).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    color, shape = new_object_words(text)
    tokens = set(tokenize(text))
    lateral, depth = bool(tokens & set(LATERAL_SWAP)), bool(tokens & ({"behind"} | set(REGION_DEPTH_SWAP)))
    available = [c for c, ok in zip(CATEGORIES, (color, shape, lateral or depth)) if ok]
    if not available:
        return text
    chosen = [c for c in available if rng.random() < 0.5] or [available[rng.integers(len(available))]]
    new_color = str(rng.choice([c for c in COLORS if c != color])) if "color" in chosen else None
    new_shape = str(rng.choice([s for s in SHAPES if s != shape])) if "shape" in chosen else None
    flips = [k for k, ok in (("lateral", lateral), ("depth", depth)) if ok]
    flip = flips[rng.integers(len(flips))] if "relation" in chosen else None
    return swap_words(text, new_color, new_shape, flip == "lateral", flip == "depth")


def coverage(instructions: list[list[str]], rng: np.random.Generator, samples: int = 1000) -> dict[str, float]:
    """How far counterfactuals reach beyond a set of training dialogues: the fewest and the median number of turns
    that add each of the 24 entities, and the share (%) of `samples` counterfactuals of random training
    instructions that are themselves, word for word, some training instruction.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    texts = [t for dialogue in instructions for t in dialogue]
    if not texts:
        raise ValueError("coverage needs at least one instruction")
    counts = {f"{shape} {color}": 0 for shape in SHAPES for color in COLORS}
    for text in texts:
        color, shape = new_object_words(text)
        if color and shape:
            counts[f"{shape} {color}"] += 1
    seen = set(texts)
    drawn = [counterfactual(texts[k], rng) for k in rng.integers(len(texts), size=samples)]
    return {"fewest turns per entity": float(min(counts.values())),
            "median turns per entity": float(np.median(list(counts.values()))),
            "counterfactuals seen in training (%)": 100 * float(np.mean([t in seen for t in drawn]))}
