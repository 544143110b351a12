"""Instructions as token ids: the editor's vocabulary, padding, and a clear report of unknown words.

Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from tutorlib.world.attributes import COLORS, SHAPES
from tutorlib.world.text import Vocabulary, world_vocabulary
from tutorlib.world.views.editing import DEPTH_WORDS, LATERAL_WORDS, REGION_PHRASES

# Every word an i-CLEVR-style instruction of the shapes world can use, counterfactuals included.
INSTRUCTION_WORDS = ["add", "it", "at", "on", "in", "of", "the", "a", "an", *COLORS, *SHAPES,
                     *(w for p in [*REGION_PHRASES.values(), *DEPTH_WORDS.values(), *LATERAL_WORDS.values()]
                       for w in p.split())]


def instruction_vocabulary(texts: Iterable[str] = ()) -> Vocabulary:
    """The world vocabulary plus every instruction word (and the words of `texts`, e.g. a real i-CLEVR file).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    return world_vocabulary([" ".join(INSTRUCTION_WORDS), *texts])


@dataclass
class Encoded:
    """Padded token ids (N, L) with <bos> ... <eos>, their lengths (N,) and the unknown words of each text."""

    ids: torch.Tensor
    lengths: torch.Tensor
    unknown: list[list[str]]

    def report(self) -> str:
        """One line per instruction with unknown words ("" when every word is known)."""
        return "\n".join(f"instruction {i}: unknown words {words} were read as <unk>"
                         for i, words in enumerate(self.unknown) if words)


def encode(vocab: Vocabulary, texts: Sequence[str], max_len: int | None = None) -> Encoded:
    """Token ids of `texts`, padded with <pad> to the longest (or cut to `max_len`, keeping <eos> last).

    Unknown words map to <unk> and are listed in `.unknown` (see `.report()`), never an error.
    Introduced in notebook 01_sscr_iterative_editing.
    """
    rows, unknown = [], []
    for text in texts:
        ids, missing = vocab.encode(text, bos_eos=True)
        if max_len is not None and len(ids) > max_len:
            ids = ids[: max_len - 1] + ids[-1:]
        rows.append(ids)
        unknown.append(missing)
    width = max((len(r) for r in rows), default=2) if max_len is None else max_len
    ids = torch.full((len(rows), width), vocab.pad, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return Encoded(ids, torch.tensor([len(r) for r in rows], dtype=torch.long), unknown)
