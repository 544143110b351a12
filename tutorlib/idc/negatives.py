"""Hard negative captions for fine-grained difference aligning: similar captions found by TF-IDF retrieval,
and captions with one colour, material, shape or change word swapped. Introduced in notebook
05_idc_difference_captioning.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.text import SYNONYMS, tokenize

# Words a swap may exchange, by group: a word is replaced by another word of its group with another meaning.
SWAP_GROUPS: dict[str, tuple[str, ...]] = {
    "color": ATTRIBUTES["color"],
    "material": ("rubber", "matte", "metal", "metallic", "shiny"),
    "shape": ("cube", "block", "sphere", "ball", "cylinder"),
    "change": ("added", "removed", "moved"),
}
_MEANING = {w: v for v, ws in SYNONYMS.items() for w in ws}  # "ball" means "sphere"


def swap_negatives(caption: str) -> list[str]:
    """Every caption made by replacing one colour, material, shape or change-type word with a word of another
    meaning in its group, e.g. "the red cube moved" -> "the blue cube moved", ..., "the red sphere moved",
    "the red cube added". Introduced in notebook 05_idc_difference_captioning.
    """
    words, out = tokenize(caption), []
    for k, word in enumerate(words):
        for group in SWAP_GROUPS.values():
            if word in group:
                meaning = _MEANING.get(word, word)
                out += [" ".join(words[:k] + [other] + words[k + 1 :]) for other in group
                        if _MEANING.get(other, other) != meaning]
    return list(dict.fromkeys(out))


def tfidf_neighbours(captions: list[str], k: int) -> np.ndarray:
    """(N, k) indices of each caption's k most similar other captions by the cosine of TF-IDF vectors.

    tfidf(w, c) = count(w, c) * log(N / df(w)), df(w) = number of captions containing w.
    Introduced in notebook 05_idc_difference_captioning.
    """
    if len(captions) < 2:
        raise ValueError("TF-IDF retrieval needs at least two captions")
    counts = [Counter(tokenize(c)) for c in captions]
    words = sorted({w for c in counts for w in c})
    column = {w: j for j, w in enumerate(words)}
    tf = np.zeros((len(captions), len(words)))
    for i, c in enumerate(counts):
        for w, n in c.items():
            tf[i, column[w]] = n
    idf = np.log(len(captions) / (tf > 0).sum(0))
    vectors = tf * idf
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(captions) - 1)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


class HardNegatives:
    """Draws hard negative captions for a pair: half retrieved (similar captions of other pairs), half swapped;
    never one of the pair's own references. Introduced in notebook 05_idc_difference_captioning.
    """

    def __init__(self, captions: list[str], retrieve: int = 20):
        self.captions = list(dict.fromkeys(captions))
        self.position = {c: i for i, c in enumerate(self.captions)}
        self.neighbours = tfidf_neighbours(self.captions, retrieve)

    def sample(self, caption: str, references: list[str], n: int, rng: np.random.Generator) -> list[str]:
        """n negatives of `caption` (one of `references`)."""
        own = set(references)
        retrieved = [self.captions[j] for j in self.neighbours[self.position[caption]]] if caption in self.position else []
        pools = [[c for c in swap_negatives(caption) if c not in own], [c for c in retrieved if c not in own]]
        chosen: list[str] = []
        for pool, want in zip(pools, (n // 2, n - n // 2)):
            picks = rng.permutation(len(pool))[:want]
            chosen += [pool[p] for p in picks]
        while len(chosen) < n:  # too few swaps or neighbours: any other caption
            other = self.captions[int(rng.integers(len(self.captions)))]
            if other not in own:
                chosen.append(other)
        return chosen
