"""VisMin's data-creation pipeline end to end: edit instructions -> grounding -> diffusion editing -> VQA filter.

Sources are processed in chunks; each finished chunk is written to the cache at once (atomically, as safetensors
with JSON metadata, so loading a chunk never runs code), so an interrupted run resumes where it stopped and never
redoes or loses finished work. Chunks are keyed by the configs and by a hash of every model's weights, so a run
with changed weights recomputes instead of mixing old and new chunks. Every item records the stage that rejected it
and why; the kept ones become minimal-change pairs (and VisMin's training JSON through formats.vismin).
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from tutorlib.cache import CacheError, cache_path, to_json_value
from tutorlib.paths import atomic_write
from tutorlib.progress import progress
from tutorlib.world.views.minimal_change import CATEGORIES
from tutorlib.world.views.simat import phrase_filter

from .filtering import KEEP, Verdict, filter_edits
from .grounding import PhraseGrounder, box_iou, ground
from .inpainting import Inpainter, inpaint
from .instructions import Box, Edit, EditInstruction, Rejection, grammar_edit, true_region, validate, visible_boxes
from .sources import rendered_scenes
from .vqa import VqaModel

STAGES = ("instruction", "grounding", "filter")
# A size edit may grow the object: its region is grown by this factor about the centre before inpainting.
SIZE_GROWTH = 1.7


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline makes: how many sources, in which categories, how they are sampled."""

    sources: int = 800  # source images (each gets one edit, categories in turn)
    chunk: int = 100  # sources per cached chunk
    image_size: int = 64
    sample_steps: int = 25  # DDIM steps of the inpainter
    seed: int = 0
    categories: tuple[str, ...] = CATEGORIES
    keep: float | None = None  # one keep threshold for every category; None means VisMin's (KEEP)

    def thresholds(self) -> dict[str, float]:
        """The filter's keep threshold per category."""
        return dict(KEEP) if self.keep is None else {category: self.keep for category in KEEP}


def grow(box: Box, factor: float, size: int) -> Box:
    """`box` scaled by `factor` about its centre, clipped to the image. Introduced in notebook 04."""
    x, y, w, h = box
    cx, cy, nw, nh = x + w / 2, y + h / 2, w * factor, h * factor
    left, top = max(0, int(round(cx - nw / 2))), max(0, int(round(cy - nh / 2)))
    right, bottom = min(size, int(round(cx + nw / 2))), min(size, int(round(cy + nh / 2)))
    return left, top, right - left, bottom - top


def _square_at(box: Box, like: Box, size: int) -> Box:
    """A region at `box`'s centre large enough for either object (relation edits paint one object at another's place)."""
    side = max(box[2], box[3], like[2], like[3]) + 2
    return grow((box[0] + box[2] // 2 - side // 2, box[1] + box[3] // 2 - side // 2, side, side), 1.0, size)


def realise(inpainter: Inpainter, images: torch.Tensor, edits: Sequence[Edit], regions: Sequence[Box | None],
            seed: int, steps: int) -> torch.Tensor:
    """The edited images: object/attribute edits repaint the grounded region (the object SelectedPhrase names)
    with EditedRegionPhrase (a size change grows the region first); counting erases the removed box; relation
    erases both boxes, then paints each phrase at the other's box.
    Introduced in notebook 04_vismin_minimal_change."""
    size = images.shape[-1]
    passes: list[list[tuple[int, Box, str]]] = [[], []]  # (row, region, phrase) of the first and second pass
    for row, (edit, region) in enumerate(zip(edits, regions)):
        if isinstance(edit, EditInstruction):
            changed = phrase_filter(edit.selected_phrase).get("size") != phrase_filter(edit.edited_phrase).get("size")
            passes[0].append((row, grow(region, SIZE_GROWTH, size) if changed else region, edit.edited_region_phrase))
        elif edit.category == "counting":
            kept = [box for _, box in edit.layout1]
            passes[0] += [(row, box, "") for _, box in edit.layout0 if box not in kept]
        else:
            (a, box_a), (b, box_b) = edit.layout0
            passes[0] += [(row, box_a, ""), (row, box_b, "")]
            passes[1] += [(row, _square_at(box_b, box_a, size), a), (row, _square_at(box_a, box_b, size), b)]
    out = images.clone()
    for number, jobs in enumerate(passes):
        # one object per call: a row with two jobs in a pass is painted in two calls
        while jobs:
            now, seen, later = [], set(), []
            for job in jobs:
                (later if job[0] in seen else now).append(job)
                seen.add(job[0])
            rows = [j[0] for j in now]
            out[rows] = inpaint(inpainter, out[rows], [j[1] for j in now], [j[2] for j in now],
                                seed=seed * 7 + number, steps=steps)
            jobs = later
    return out


def process_sources(config: PipelineConfig, indices: Sequence[int], categories: Sequence[str],
                    grounder: PhraseGrounder, inpainter: Inpainter, vqa: VqaModel) -> dict:
    """Every stage on the source images `indices`, one edit of the given category each: a plain dict with the
    JSON-ready records, the source images and the edited images (of the sources that reached the editor).
    Introduced in notebook 04_vismin_minimal_change."""
    scenes, rendering = rendered_scenes(config.seed, "sources", indices, config.image_size)
    records, edits, rows = [], [], []
    for b, (index, scene, category) in enumerate(zip(indices, scenes, categories)):
        boxes = visible_boxes(rendering, b)
        edit = grammar_edit(scene, boxes, category, seed=config.seed * 1_000_003 + index)
        reasons = [edit.reason] if isinstance(edit, Rejection) else validate(edit, scene, config.image_size)
        record = {"index": index, "category": category, "scene": scene.to_dict()}
        if reasons:
            record.update(stage="instruction", reason="; ".join(reasons))
        else:
            record["edit"] = edit.to_json()
            edits.append(edit)
            rows.append(b)
        records.append(record)
    # Grounding: the region of each object/attribute edit is the object its SelectedPhrase names in the source
    # image (layout edits carry their boxes).
    phrase_rows = [k for k, e in enumerate(edits) if isinstance(e, EditInstruction)]
    regions: list[Box | None] = [None] * len(edits)
    if phrase_rows:
        _, found, _ = ground(grounder, rendering.images[[rows[k] for k in phrase_rows]],
                             [edits[k].selected_phrase for k in phrase_rows])
        for k, box in zip(phrase_rows, found):
            regions[k] = box
    survivors = []
    for k, (edit, b) in enumerate(zip(edits, rows)):
        record = records[b]
        if isinstance(edit, EditInstruction):
            truth = true_region(scenes[b], rendering, b, edit)
            record["true_region"] = list(truth)
            if regions[k] is None:
                record.update(stage="grounding", reason="the phrase was not found (or its box covers > 85%)")
                continue
            record["region"] = list(regions[k])
            record["grounding_iou"] = box_iou(regions[k], truth)
        survivors.append(k)
    kept_edits = [edits[k] for k in survivors]
    source_images = rendering.images[[rows[k] for k in survivors]]
    edited = realise(inpainter, source_images, kept_edits, [regions[k] for k in survivors], config.seed + indices[0],
                     config.sample_steps) if survivors else source_images
    verdicts: list[Verdict] = filter_edits(vqa, edited, kept_edits, [regions[k] for k in survivors],
                                                  config.thresholds()) if survivors else []
    for k, verdict in zip(survivors, verdicts):
        record = records[rows[k]]
        record.update(global_score=verdict.global_score, local_score=verdict.local_score,
                      answers=[list(a) for a in verdict.answers])
        if not verdict.keep:
            record.update(stage="filter", reason=f"VQA scores {verdict.global_score:.2f} global, "
                          f"{verdict.local_score:.2f} local, below {config.thresholds()[edits[k].category]}")
    return {"records": records, "sources": rendering.images, "edited": edited,
            "edited_rows": [rows[k] for k in survivors]}


# A chunk's images are tensors of its safetensors file; the rest is JSON in the file's metadata.
CHUNK_TENSORS = ("sources", "edited")
CHUNK_JSON = ("records", "edited_rows")


def weights_hash(model: nn.Module) -> str:
    """12 hex characters of the sha256 over the model's state_dict: each entry's name, dtype, shape and bytes.

    Introduced in notebook 04_vismin_minimal_change.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{list(tensor.shape)}\0".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def chunk_folder(config: PipelineConfig, grounder: PhraseGrounder, inpainter: Inpainter, vqa: VqaModel,
                 model_key: dict) -> Path:
    """The cache folder of the pipeline's chunks: keyed by the pipeline config, `model_key` (the models' configs)
    and the hash of each model's weights. Introduced in notebook 04_vismin_minimal_change."""
    weights = {"grounder": weights_hash(grounder), "inpainter": weights_hash(inpainter), "vqa": weights_hash(vqa)}
    return cache_path("vismin-pipeline", {"pipeline": asdict(config), "models": model_key, "weights": weights})


def chunk_checksum(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over a chunk's content: each tensor's name, dtype, shape and bytes, then each JSON entry.

    Introduced in notebook 04_vismin_minimal_change.
    """
    digest = hashlib.sha256()
    for name in CHUNK_TENSORS:
        flat = tensors[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{list(tensors[name].shape)}\0".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    for name in CHUNK_JSON:
        digest.update(f"{name}\0{metadata[name]}\0".encode())
    return digest.hexdigest()


def save_chunk(chunk: dict, path: Path) -> None:
    """Write a processed chunk atomically as one safetensors file (images as tensors, the rest as JSON metadata,
    with the chunk's checksum). Introduced in notebook 04_vismin_minimal_change.
    """
    tensors = {name: chunk[name].contiguous() for name in CHUNK_TENSORS}
    metadata = {name: json.dumps(to_json_value(chunk[name], name)) for name in CHUNK_JSON}
    metadata["sha256"] = chunk_checksum(tensors, metadata)
    with atomic_write(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def load_chunk(path: Path) -> dict:
    """A chunk written by `save_chunk`, checked against its checksum; anything else (a pickle, a damaged or
    edited file) is a CacheError naming the file. Introduced in notebook 04_vismin_minimal_change.
    """
    delete = f"delete it to recompute the chunk: rm '{path}'"
    try:
        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in CHUNK_TENSORS}
            checksum_ok = metadata["sha256"] == chunk_checksum(tensors, metadata)
            chunk = {**tensors, **{name: json.loads(metadata[name]) for name in CHUNK_JSON}}
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise CacheError(f"pipeline chunk {path} is not a chunk this library wrote ({type(error).__name__}: "
                         f"{str(error)[:200]}); {delete}") from None
    if not checksum_ok:
        raise CacheError(f"pipeline chunk {path} does not match the checksum recorded when it was written; {delete}")
    return chunk


def run_pipeline(config: PipelineConfig, grounder: PhraseGrounder, inpainter: Inpainter, vqa: VqaModel,
                 model_key: dict) -> "PipelineResult":
    """Run (or resume) the pipeline; chunks are cached in `chunk_folder` (keyed by the configs and the models'
    weights). Introduced in notebook 04_vismin_minimal_change."""
    folder = chunk_folder(config, grounder, inpainter, vqa, model_key)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = []
    for start in progress(range(0, config.sources, config.chunk), desc="pipeline"):
        path = folder / f"chunk-{start:06d}.safetensors"
        if not path.exists():
            indices = range(start, min(start + config.chunk, config.sources))
            categories = [config.categories[i % len(config.categories)] for i in indices]
            save_chunk(process_sources(config, indices, categories, grounder, inpainter, vqa), path)
        chunks.append(load_chunk(path))
    return PipelineResult(chunks)


def chunk_records(chunk: dict) -> list[dict]:
    """The records of a processed chunk with their source and edited images (None where not edited).

    Introduced in notebook 04_vismin_minimal_change.
    """
    edited = dict(zip(chunk["edited_rows"], chunk["edited"]))
    return [{**record, "source_image": chunk["sources"][b], "edited_image": edited.get(b)}
            for b, record in enumerate(chunk["records"])]


class PipelineResult:
    """The pipeline's records and images, with counts per stage and the kept minimal-change pairs.

    Introduced in notebook 04_vismin_minimal_change.
    """

    def __init__(self, chunks: list[dict]):
        self.records = [record for chunk in chunks for record in chunk_records(chunk)]

    def kept(self) -> list[dict]:
        """Kept edits as minimal-change items (image0/caption0/image1/caption1/category, as the benchmark)."""
        return [{"image0": r["source_image"], "image1": r["edited_image"], "caption0": r["edit"]["InputCaption"],
                 "caption1": r["edit"]["EditedCaption"], "category": r["category"]}
                for r in self.records if "stage" not in r]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per category: sources, rejected at each stage, kept."""
        table = {}
        for category in dict.fromkeys(r["category"] for r in self.records):
            rows = [r for r in self.records if r["category"] == category]
            stages = Counter(r.get("stage", "kept") for r in rows)
            table[category] = {"sources": len(rows), **{f"rejected at {s}": stages[s] for s in STAGES},
                               "kept": stages["kept"]}
        return table

    def reasons(self, stage: str) -> Counter:
        """How often each rejection reason occurred at `stage`."""
        return Counter(r["reason"] for r in self.records if r.get("stage") == stage)

    def to_json(self, path: Path) -> None:
        """The records without images, for inspection."""
        light = [{k: v for k, v in r.items() if not k.endswith("_image")} for r in self.records]
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(light, indent=1))
