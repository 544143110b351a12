"""Edit instructions from a language model, few-shot prompted as in VisMin, through the same parser and validator.

Any `transformers` text-generation pipeline plugs in. Offline, `tiny_random_pipeline` builds a small randomly
initialised GPT-2 over the world's words: its outputs are mostly malformed, which is what the parser must survive.
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

from tutorlib.world.scene import Scene

from .instructions import Edit, EditInstruction, LayoutEdit, Rejection, VOCABULARY, validate

PHRASE_KEYS = ("InputCaption", "Category", "SelectedPhrase", "EditedPhrase", "EditedRegionPhrase", "EditedCaption")
LAYOUT_KEYS = ("InputCaption", "Category", "Layout0", "EditedCaption", "Layout1")
INSTRUCTION = ("Write a minimal edit of the caption in the requested category. Object and attribute edits give the "
               "selected phrase (the object to change), its edit, and the edited region phrase (the object painted "
               "in its place); counting and relation edits give layouts of phrases with boxes [x, y, w, h].")
# A generator maps a prompt to the generated continuation.
Generator = Callable[[str], str]


def edit_text(edit: Edit) -> str:
    """The edit as `Key: value` lines, the format of the prompt's examples. Introduced in notebook 04."""
    fields = edit.to_json()
    keys = PHRASE_KEYS if isinstance(edit, EditInstruction) else LAYOUT_KEYS
    lines = []
    for key in keys:
        value = fields[key]
        if key.startswith("Layout"):
            value = "; ".join(f"{phrase} [{', '.join(str(v) for v in box)}]" for phrase, box in value)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def few_shot_prompt(caption: str, category: str, examples: Sequence[Edit], layout: str = "") -> str:
    """The instruction, the worked examples, then the query: its caption and category (and, for layout edits,
    the source layout) with the rest left for the model. Introduced in notebook 04_vismin_minimal_change."""
    shots = "\n\n".join(edit_text(e) for e in examples)
    query = f"InputCaption: {caption}\nCategory: {category}\n"
    if layout:
        query += f"Layout0: {layout}\n"
    return f"{INSTRUCTION}\n\n{shots}\n\n{query}"


_BOX = re.compile(r"^\s*(.*?)\s*\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\]\s*$")


def _layout(text: str) -> tuple[tuple[str, tuple[int, int, int, int]], ...]:
    entries = []
    for part in text.split(";"):
        match = _BOX.match(part)
        if match is None:
            raise ValueError(f"layout entry {part.strip()!r} is not 'phrase [x, y, w, h]'")
        entries.append((match.group(1), tuple(int(match.group(k)) for k in range(2, 6))))
    return tuple(entries)


def region_phrase(text: str) -> str:
    """EditedRegionPhrase without a leading article: VisMin writes the region's text as "A glass of milk", the
    world's phrases (what the inpainter was trained on) have none. Introduced in notebook 04_vismin_minimal_change."""
    words = text.split()
    return " ".join(words[1:] if words and words[0].lower() in ("a", "an") else words)


def parse_edit(text: str) -> Edit | Rejection:
    """An edit from `Key: value` lines (the first block; later text ignored), or a Rejection naming what is
    missing or malformed. SelectedPhrase is the object to change (grounded in the source image), EditedRegionPhrase
    what is painted in its region (see `region_phrase`). Introduced in notebook 04_vismin_minimal_change."""
    fields: dict[str, str] = {}
    for line in text.strip().splitlines():
        if not line.strip():
            if fields:
                break  # the block ends at the first blank line
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or key not in set(PHRASE_KEYS) | set(LAYOUT_KEYS):
            return Rejection(f"line {line.strip()[:60]!r} is not a 'Key: value' line of the format", text)
        if key in fields:
            break  # the model started another example
        fields[key] = value.strip()
    category = fields.get("Category", "")
    keys = LAYOUT_KEYS if category in ("counting", "relation") else PHRASE_KEYS
    missing = [k for k in keys if k not in fields]
    if missing:
        return Rejection(f"missing {missing}", text)
    if keys is PHRASE_KEYS:
        return EditInstruction(category, fields["InputCaption"], fields["SelectedPhrase"], fields["EditedPhrase"],
                               region_phrase(fields["EditedRegionPhrase"]), fields["EditedCaption"])
    try:
        return LayoutEdit(category, fields["InputCaption"], fields["EditedCaption"], _layout(fields["Layout0"]),
                          _layout(fields["Layout1"]))
    except ValueError as error:
        return Rejection(str(error), text)


def language_model_edit(generate: Generator, caption: str, category: str, examples: Sequence[Edit],
                        scene: Scene | None = None, size: int | None = None, layout: str = "") -> Edit | Rejection:
    """Prompt the model, parse its continuation and validate the edit; every failure is a Rejection with its
    reason. Introduced in notebook 04_vismin_minimal_change."""
    prompt = few_shot_prompt(caption, category, examples, layout)
    head = f"InputCaption: {caption}\nCategory: {category}\n" + (f"Layout0: {layout}\n" if layout else "")
    edit = parse_edit(head + generate(prompt))
    if isinstance(edit, Rejection):
        return edit
    if edit.input_caption != caption or edit.category != category:
        return Rejection("the edit is not of the requested caption and category", edit_text(edit))
    reasons = validate(edit, scene, size)
    return Rejection("; ".join(reasons), edit_text(edit)) if reasons else edit


def pipeline_generator(pipeline, max_new_tokens: int = 60) -> Generator:
    """A Generator from a `transformers` text-generation pipeline (greedy decoding, continuation only).

    Introduced in notebook 04_vismin_minimal_change.
    """
    def generate(prompt: str) -> str:
        out = pipeline(prompt, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False)
        return out[0]["generated_text"]

    return generate


def tiny_random_pipeline(seed: int = 0, layers: int = 2, width: int = 64):
    """A randomly initialised GPT-2 text-generation pipeline over the world's words and the format's keys.

    It runs offline and writes near-random text: the parser and validator must reject it with reasons.
    A real model (`transformers.pipeline("text-generation", model=name)`) plugs in the same way.
    Introduced in notebook 04_vismin_minimal_change.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, pipeline

    words = list(VOCABULARY.words) + list(PHRASE_KEYS + LAYOUT_KEYS) + [":", ";", "[", "]", ",", "\n"] + \
        [str(v) for v in range(128)]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                        eos_token="<eos>", bos_token="<bos>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(vocab), n_positions=1024, n_embd=width, n_layer=layers, n_head=2,
                        bos_token_id=vocab["<bos>"], eos_token_id=vocab["<eos>"], pad_token_id=vocab["<pad>"])
    return pipeline("text-generation", model=GPT2LMHeadModel(config).eval(), tokenizer=tokenizer, device="cpu")
