"""Words for the shapes world: object phrases, relation phrases, template captions and a vocabulary.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

from .attributes import ATTRIBUTES, RELATIONS
from .rng import check_seed, uniform
from .scene import Obj, Scene

# Other words for the same value, used to vary captions ("a big shiny ball").
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "block"),
    "sphere": ("sphere", "ball"),
    "cylinder": ("cylinder",),
    "small": ("small", "tiny"),
    "large": ("large", "big"),
    "rubber": ("rubber", "matte"),
    "metal": ("metal", "metallic", "shiny"),
}
RELATION_PHRASES = {"left": "to the left of", "right": "to the right of", "front": "in front of", "behind": "behind"}
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
PHRASE_ORDER = ("size", "color", "material", "shape")


def object_phrase(obj: Obj | Mapping[str, str], fields: Sequence[str] = PHRASE_ORDER, variant: int = 0) -> str:
    """Noun phrase for an object, e.g. "large red metal cube"; `variant` picks synonyms ("big red shiny block").
    """
    values = obj.attributes() if isinstance(obj, Obj) else dict(obj)
    words = []
    for name in PHRASE_ORDER:
        if name in fields and name in values:
            choices = SYNONYMS.get(values[name], (values[name],))
            words.append(choices[variant % len(choices)])
    return " ".join(words) if "shape" in fields and "shape" in values else " ".join(words + ["object"])


def plural(phrase: str) -> str:
    """Plural of a noun phrase: "red cube" -> "red cubes", "red sphere" -> "red spheres"."""
    return phrase + "s"


def count_phrase(n: int, phrase: str) -> str:
    """"two red cubes", "one red cube"."""
    if not 0 <= n < len(NUMBER_WORDS):
        raise ValueError(f"counts from 0 to {len(NUMBER_WORDS) - 1} have words, got {n}")
    return f"{NUMBER_WORDS[n]} {phrase if n == 1 else plural(phrase)}"


def relation_caption(subject: str, relation: str, obj: str) -> str:
    """"a red cube to the left of a blue sphere"."""
    if relation not in RELATION_PHRASES:
        raise ValueError(f"unknown relation {relation!r}; choose one of {list(RELATIONS)}")
    return f"a {subject} {RELATION_PHRASES[relation]} a {obj}"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def scene_captions(scene: Scene, seed: int = 0) -> list[str]:
    """Several phrasings of one scene: a left-to-right listing, a count by shape, and a relation."""
    draws = uniform([check_seed(seed)], 7, 4)[0]
    if not scene.objects:
        return ["an empty floor", "there are no objects", "nothing is on the floor"]
    variant = int(draws[0] * 6)
    left_to_right = sorted(range(len(scene)), key=lambda i: scene.objects[i].x)
    listing = _join(["a " + object_phrase(scene.objects[i], variant=variant) for i in left_to_right])
    counts = [(sum(o.shape == s for o in scene.objects), s) for s in ATTRIBUTES["shape"]]
    counting = count_phrase(len(scene), "object") + ": " + _join([count_phrase(n, s) for n, s in counts if n > 0])
    captions = [listing, counting]
    if len(scene) >= 2:
        i = int(draws[1] * len(scene))
        j = (i + 1 + int(draws[2] * (len(scene) - 1))) % len(scene)
        relation = scene.true_relation(i, j, lateral=draws[3] < 0.5)
        captions.append(relation_caption(object_phrase(scene.objects[i]), relation, object_phrase(scene.objects[j])))
    return captions


def tokenize(text: str) -> list[str]:
    """Lower-case words, punctuation dropped: "Add a red cube." -> ["add", "a", "red", "cube"]."""
    return re.findall(r"[a-z]+", text.lower())


class Vocabulary:
    """Word <-> index with special tokens; unknown words map to <unk> and are reported, never fatal."""

    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, words: Iterable[str]):
        self.words = list(self.SPECIALS) + sorted(set(words) - set(self.SPECIALS))
        self.index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad(self) -> int:
        return self.index["<pad>"]

    @property
    def unk(self) -> int:
        return self.index["<unk>"]

    def encode(self, text: str, bos_eos: bool = False) -> tuple[list[int], list[str]]:
        """Token ids of `text` and the list of its unknown words (mapped to <unk>)."""
        tokens = tokenize(text)
        unknown = [t for t in tokens if t not in self.index]
        ids = [self.index.get(t, self.unk) for t in tokens]
        if bos_eos:
            ids = [self.index["<bos>"]] + ids + [self.index["<eos>"]]
        return ids, unknown

    def decode(self, ids: Iterable[int]) -> str:
        """Words of the ids, stopping at <eos> and skipping <pad> and <bos>."""
        words = []
        for i in ids:
            word = self.words[int(i)]
            if word == "<eos>":
                break
            if word not in ("<pad>", "<bos>"):
                words.append(word)
        return " ".join(words)


def world_vocabulary(extra_texts: Iterable[str] = ()) -> Vocabulary:
    """A vocabulary of every attribute word, synonym, relation and number word, plus the words of extra_texts."""
    words = {w for values in SYNONYMS.values() for w in values} | {v for vs in ATTRIBUTES.values() for v in vs}
    words |= {w for phrase in RELATION_PHRASES.values() for w in tokenize(phrase)} | set(NUMBER_WORDS)
    words |= {"a", "an", "the", "there", "is", "are", "and", "of", "object", "objects"}
    words |= {plural(s) for s in ATTRIBUTES["shape"]} | {plural(s) for s in SYNONYMS["cube"] + SYNONYMS["sphere"]}
    for text in extra_texts:
        words |= set(tokenize(text))
    return Vocabulary(words)
