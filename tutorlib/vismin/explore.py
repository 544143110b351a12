"""Pictures of the VisMin pipeline: one edit through every stage, and the interactive panel around it.

Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

import json
import textwrap
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tutorlib.plots import panel_figure, to_display
from tutorlib.world.views.minimal_change import CATEGORIES

from .grounding import PhraseGrounder
from .inpainting import Inpainter
from .pipeline import PipelineConfig, chunk_records, process_sources
from .vqa import VqaModel


def _boxes(edit: dict | None, record: dict) -> list[tuple[Sequence[int], str]]:
    """(box, colour) pairs to draw on the source: the grounded region (red), the true one (green dashed), or
    the layout boxes (yellow)."""
    if edit is None:
        return []
    if "Layout0" in edit:
        return [(box, "yellow") for _, box in edit["Layout0"]]
    drawn = [(record["true_region"], "lime")] if "true_region" in record else []
    return drawn + ([(record["region"], "red")] if "region" in record else [])


def show_record(record: dict) -> Figure:
    """Source image with its regions, edited image, and the text of the edit and of the filter's answers.

    Introduced in notebook 04_vismin_minimal_change.
    """
    figure, axes = panel_figure(3)
    edit = record.get("edit")
    axes[0].imshow(to_display(record["source_image"]))
    for box, colour in _boxes(edit, record):
        axes[0].add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2], box[3], fill=False, edgecolor=colour,
                                    linestyle="--" if colour == "lime" else "-", linewidth=1.2))
    axes[0].set_title("source: " + textwrap.shorten(edit["InputCaption"] if edit else record["category"], 40),
                      fontsize=8)
    if record.get("edited_image") is not None:
        axes[1].imshow(to_display(record["edited_image"]))
        axes[1].set_title("edited: " + textwrap.shorten(edit["EditedCaption"], 40), fontsize=8)
    for axis in axes:
        axis.axis("off")
    lines = [f"category: {record['category']}"]
    if edit is not None:
        lines += [f"{k}: {json.dumps(v) if k.startswith('Layout') else v}" for k, v in edit.items()
                  if k not in ("InputCaption", "EditedCaption", "Category")]
    if "grounding_iou" in record:
        lines.append(f"grounding IoU with the true box: {record['grounding_iou']:.2f}")
    for question, expected, given in record.get("answers", []):
        lines.append(f"{'ok ' if given == expected else 'NO '} {question}? {given} (want {expected})")
    verdict = f"rejected at {record['stage']}: {record['reason']}" if "stage" in record else "kept"
    lines.append(verdict)
    axes[2].text(0, 1, "\n".join(textwrap.fill(line, 44, subsequent_indent="   ") for line in lines),
                 va="top", ha="left", fontsize=7, family="monospace", transform=axes[2].transAxes)
    return figure


def explore_edit(config: PipelineConfig, grounder: PhraseGrounder, inpainter: Inpainter, vqa: VqaModel,
                 index: int = 0, category: str = "attribute") -> Figure:
    """Run source image `index` through the whole pipeline with an edit of `category` and show every stage.

    Introduced in notebook 04_vismin_minimal_change.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose from {list(CATEGORIES)}")
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    [record] = chunk_records(process_sources(config, [index], [category], grounder, inpainter, vqa))
    return show_record(record)


def edit_explorer(config: PipelineConfig, grounder: PhraseGrounder, inpainter: Inpainter, vqa: VqaModel):
    """ipywidgets panel: a source image and a category -> instruction, regions, edited image and filter answers.

    Introduced in notebook 04_vismin_minimal_change.
    """
    import ipywidgets as widgets
    from IPython.display import display

    index = widgets.IntSlider(0, 0, 999, description="image", continuous_update=False)
    category = widgets.Dropdown(options=list(CATEGORIES), value="attribute", description="category")

    def show(index, category):
        figure = explore_edit(config, grounder, inpainter, vqa, index, category)
        display(figure)
        plt.close(figure)

    return widgets.interactive(show, index=index, category=category)
