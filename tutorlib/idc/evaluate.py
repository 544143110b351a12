"""Scoring difference captions: the coco-caption metrics (BLEU-4, METEOR, ROUGE-L, CIDEr from pycocoevalcap),
overall and per change type, and the oracle's check that a caption names the right change of the right object.

Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

import functools
import re
import shutil

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.oracle import Oracle
from tutorlib.world.scene import Scene
from tutorlib.world.text import SYNONYMS, tokenize
from tutorlib.world.views.change_pairs import CHANGE_TEMPLATES, NO_CHANGE_CAPTIONS

from .data import DISTRACTOR

METRICS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
METEOR_GAP = "METEOR not computed: it needs Java (the `java` command), which is not installed here"


@functools.lru_cache(maxsize=1)
def _meteor():
    from pycocoevalcap.meteor.meteor import Meteor

    return Meteor()  # one Java process for the whole session


def java_available() -> bool:
    """Whether METEOR can run (it is a Java program). Introduced in notebook 05_idc_difference_captioning."""
    return shutil.which("java") is not None


# coco-caption's PTBTokenizer (Stanford CoreNLP 3.4.1, -lowerCase) then drops these tokens; it compares them with
# "-LRB-" etc. in upper case, so the lower-cased brackets "-lrb-" ... survive, as they do here.
PTB_PUNCTUATION = {"''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";", '"'}
_PTB_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "{": "-lcb-", "}": "-rcb-", "[": "-lsb-", "]": "-rsb-"}
_PTB_CLITIC = re.compile(r"(?<=[a-z])(n't|'(?:s|m|d|re|ve|ll))\b")
_PTB_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|n't|'(?:s|m|d|re|ve|ll)\b|[a-z0-9]+(?:[-/'][a-z0-9]+)*|--|\.\.\.|\S")
TOKENIZERS = ("world", "ptb")


def ptb_tokenize(text: str) -> list[str]:
    """coco-caption's tokenisation: lower case; clitics split ("doesn't" -> "does n't", "cube's" -> "cube 's");
    hyphenated words, "blue/green" and numbers ("3.5", "1,000") kept whole; other symbols split off ("50%" ->
    "50 %"); brackets written "-lrb-" ...; the punctuation tokens of PTB_PUNCTUATION dropped.
    Introduced in notebook 05_idc_difference_captioning."""
    tokens = _PTB_TOKEN.findall(_PTB_CLITIC.sub(r" \1", text.lower()))
    return [_PTB_BRACKETS.get(t, t) for t in tokens if t not in PTB_PUNCTUATION]


def coco_scores(predictions: list[str], references: list[list[str]], meteor: bool | None = None,
                tokenizer: str = "world") -> dict:
    """BLEU-4, METEOR, ROUGE-L and CIDEr (x 100) of one caption per pair against all its references.

    Captions are compared as tokens: tokenizer="world" gives the lower-case words of the shapes world
    (its tokenize), "ptb" follows coco-caption's PTBTokenizer (ptb_tokenize) for real CLEVR-Change text. An empty
    prediction is scored as the empty string, as coco-caption does. METEOR is None when Java is missing (or
    meteor=False). Introduced in notebook 05.
    """
    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"need one prediction per reference list, got {len(predictions)} and {len(references)}")
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of {list(TOKENIZERS)}")
    split = tokenize if tokenizer == "world" else ptb_tokenize
    clean = lambda text: " ".join(split(text))  # noqa: E731
    res = {k: [clean(p)] for k, p in enumerate(predictions)}
    gts = {k: [clean(r) for r in refs] for k, refs in enumerate(references)}
    scores = {"BLEU-4": Bleu(4).compute_score(gts, res, verbose=0)[0][3],
              "ROUGE-L": Rouge().compute_score(gts, res)[0], "CIDEr": Cider().compute_score(gts, res)[0]}
    use_meteor = java_available() if meteor is None else meteor and java_available()
    scores["METEOR"] = _meteor().compute_score(gts, res)[0] if use_meteor else None
    return {m: None if scores[m] is None else 100.0 * float(scores[m]) for m in METRICS}


def scores_by_type(predictions: list[str], references: list[list[str]], types: list[str],
                   meteor: bool | None = None, tokenizer: str = "world") -> dict[str, dict]:
    """coco_scores over all pairs ("total") and over the pairs of each change type (distractor included).

    Introduced in notebook 05_idc_difference_captioning.
    """
    table = {"total": coco_scores(predictions, references, meteor, tokenizer)}
    for kind in dict.fromkeys(types):
        rows = [k for k, t in enumerate(types) if t == kind]
        table[kind] = coco_scores([predictions[k] for k in rows], [references[k] for k in rows], meteor, tokenizer)
    return table


# ---- the oracle's check -------------------------------------------------------------------------------------
_VALUE_OF = {w: (a, v) for a, vs in ATTRIBUTES.items() for v in vs for w in SYNONYMS.get(v, (v,))}
# a template becomes a pattern: {phrase} and {rest} match words, {old} and {new} one word
_GROUPS = {"phrase": "[a-z ]+?", "rest": "[a-z ]+?", "old": "[a-z]+", "new": "[a-z]+"}
_PATTERNS = [(kind, re.compile("^" + re.sub(r"\\{(\w+)\\}", lambda m: f"(?P<{m[1]}>{_GROUPS[m[1]]})", re.escape(t)) + "$"))
             for kind, templates in CHANGE_TEMPLATES.items() for t in templates]
_NO_CHANGE = {" ".join(tokenize(c)) for c in NO_CHANGE_CAPTIONS}


def parse_change(caption: str) -> dict | None:
    """The change a caption states: {"type", "object": attribute filter, "new": value or None}; "no change" for
    a no-change caption; None when it follows no template or names an unknown word. Introduced in notebook 05.
    """
    text = " ".join(tokenize(caption))
    if text in _NO_CHANGE:
        return {"type": DISTRACTOR, "object": {}, "new": None}
    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        words = match.groupdict()
        phrase = (words.get("phrase") or words.get("rest") or "").split()
        if "old" in words:
            phrase.append(words["old"])
        pairs = [_VALUE_OF.get(w) for w in phrase if w != "object"]
        new = _VALUE_OF.get(words.get("new", ""), (None, None))
        if None in pairs or ("new" in words and new[0] != kind):
            continue  # "the cube that was rubber is now metal" fits a colour template too: try the others
        return {"type": kind, "object": dict(pairs), "new": new[1]}
    return None


def changed_object(change_type: str, before: Scene, after: Scene) -> tuple[Scene, int]:
    """The scene in which the changed object is named (after for an add, before otherwise) and its index there.

    Introduced in notebook 05_idc_difference_captioning.
    """
    key = lambda o: (o.shape, o.color, o.size, o.material, round(o.x, 6), round(o.depth, 6))  # noqa: E731
    if change_type == "add":
        old = {key(o) for o in before.objects}
        return after, next(i for i, o in enumerate(after.objects) if key(o) not in old)
    if change_type == "drop":
        new = {key(o) for o in after.objects}
        return before, next(i for i, o in enumerate(before.objects) if key(o) not in new)
    if change_type in ("color", "material", "move"):
        return before, next(i for i, (a, b) in enumerate(zip(before.objects, after.objects)) if key(a) != key(b))
    raise ValueError(f"unknown change type {change_type!r}")


def oracle_check(caption: str, change_type: str, before: Scene | None, after: Scene | None) -> dict | None:
    """Whether a caption states the true change: right type ("type"), a phrase that picks out the changed
    object alone in its scene ("object"), and for colour and material the right new value; "correct" when all
    hold. A distractor pair needs a no-change caption. None without scenes (real data).
    Introduced in notebook 05_idc_difference_captioning.
    """
    if before is None or after is None:
        return None
    parsed = parse_change(caption)
    type_ok = parsed is not None and parsed["type"] == change_type
    if change_type == DISTRACTOR or not type_ok:
        return {"type": type_ok, "object": type_ok, "correct": type_ok}
    scene, index = changed_object(change_type, before, after)
    object_ok = Oracle(scene).select(**parsed["object"]) == [index]
    if change_type in ("color", "material"):
        object_ok &= parsed["new"] == getattr(after.objects[index], change_type)
    return {"type": True, "object": object_ok, "correct": object_ok}


def oracle_accuracy(checks: list[dict | None], types: list[str]) -> dict[str, dict] | None:
    """Share of captions of the right type and fully correct, over all pairs ("total"), over the changed pairs
    alone ("changed", when there are any) and per change type.

    Introduced in notebook 05_idc_difference_captioning.
    """
    if any(c is None for c in checks):
        return None
    groups = {"total": list(range(len(checks)))}
    changed = [k for k, t in enumerate(types) if t != DISTRACTOR]
    if changed:
        groups["changed"] = changed
    groups.update({t: [k for k, u in enumerate(types) if u == t] for t in dict.fromkeys(types)})
    return {name: {field: 100.0 * float(np.mean([checks[k][field] for k in rows])) for field in ("type", "correct")}
            for name, rows in groups.items()}
