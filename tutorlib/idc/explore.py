"""Pictures of difference captioning: pairs with generated and reference captions, feature-difference maps, and
the interactive explorer. Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tutorlib.plots import to_display
from tutorlib.world.text import Vocabulary

from .config import IdcConfig
from .data import SLOT_AFTER, SLOT_DISTRACTOR, IdcData
from .decoding import decode
from .evaluate import oracle_check
from .model import DifferenceTransformer

ANY = "any"
SECOND = {"after": SLOT_AFTER, "distractor": SLOT_DISTRACTOR}


def difference_map(data: IdcData, item: int, slot: int) -> np.ndarray:
    """(k, k) distance between the grid features of the two images, cell by cell: |f_after - f_before|.

    Introduced in notebook 05_idc_difference_captioning.
    """
    diff = (data.features[item, slot] - data.features[item, 0]).norm(dim=-1).numpy()
    k = int(round(len(diff) ** 0.5))
    return diff.reshape(k, k)


def _images(data: IdcData, item: int, slot: int) -> tuple[np.ndarray, np.ndarray]:
    record = data.files[item]
    return to_display(record["before"]), to_display(record["after" if slot == SLOT_AFTER else "distractor"])


def _panel_row(axes, data: IdcData, item: int, slot: int, title: str) -> None:
    """Before, second image (with the changed object's box, where known) and the difference map."""
    before, second = _images(data, item, slot)
    axes[0].imshow(before)
    axes[1].imshow(second)
    axes[2].imshow(difference_map(data, item, slot), cmap="magma", extent=(0, second.shape[1], second.shape[0], 0))
    box = data.files.records[item].get("box_after") if slot == SLOT_AFTER else None
    if box is not None:
        x, y, w, h = (int(v) for v in box)
        for ax in (axes[1], axes[2]):
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="lime", lw=1))
    for ax, name in zip(axes, ("before", "after" if slot == SLOT_AFTER else "distractor", "|feature difference|")):
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    axes[0].text(0, -0.35 * before.shape[0], textwrap.fill(title, 70), fontsize=7, va="bottom",
                 transform=axes[0].transData)


def show_examples(data: IdcData, result: dict, rows: list[int], split: str = "test") -> Figure:
    """One row per example `rows` of evaluate_captions' `result`: the pair, the difference map, the generated
    caption, a reference and the oracle's verdict. Introduced in notebook 05_idc_difference_captioning.
    """
    examples = data.examples(split)
    figure, axes = plt.subplots(len(rows), 3, figsize=(5.4, 2.35 * len(rows)), squeeze=False)
    for ax, k in zip(axes, rows):
        check = result["checks"][k]
        verdict = "" if check is None else ("  [oracle: right]" if check["correct"] else "  [oracle: wrong]")
        title = f"{result['types'][k]}: \"{result['captions'][k]}\"{verdict}\nreference: \"{result['references'][k][0]}\""
        _panel_row(ax, data, examples.item[k], examples.slot[k], title)
    figure.tight_layout()
    return figure


def explore_pair(data: IdcData, models: dict[str, DifferenceTransformer], vocab: Vocabulary, config: IdcConfig,
                 change_type: str = ANY, pair: int = 0, second: str = "after", model: str | None = None,
                 method: str = "greedy") -> Figure:
    """The widget's picture: test pair number `pair` among those of `change_type` ("any" for all), its second
    image the semantic change ("after") or the distractor, and the caption the chosen model writes.

    Introduced in notebook 05_idc_difference_captioning.
    """
    if second not in SECOND:
        raise ValueError(f"second must be one of {list(SECOND)}, got {second!r}")
    model = model or next(iter(models))
    if model not in models:
        raise ValueError(f"unknown model {model!r}; choose one of {list(models)}")
    items = [i for i, s in enumerate(data.splits) if s == "test" and change_type in (ANY, data.change_types[i])]
    if not items:
        raise ValueError(f"no test pair has change type {change_type!r}; types here: {sorted(set(data.change_types))}")
    item, slot = items[pair % len(items)], SECOND[second]
    net = models[model]
    device = next(net.parameters()).device
    caption = decode(net, data.features[item : item + 1, 0].to(device), data.features[item : item + 1, slot].to(device),
                     vocab, config.max_text, method, config.beam_size)[0]
    record = data.files.records[item]
    kind = data.change_types[item] if slot == SLOT_AFTER else "distractor"
    references = data.change_captions[item] if slot == SLOT_AFTER else data.no_change_captions[item]
    check = oracle_check(caption, kind, record.get("scene_before"),
                         record.get("scene_after" if slot == SLOT_AFTER else "scene_distractor"))
    verdict = "" if check is None else ("  [oracle: right]" if check["correct"] else "  [oracle: wrong]")
    figure, axes = plt.subplots(1, 3, figsize=(5.4, 2.5))
    _panel_row(axes, data, item, slot, f"{model}: \"{caption}\"{verdict}\nreference: \"{references[0]}\"")
    figure.tight_layout()
    return figure


def idc_explorer(data: IdcData, models: dict[str, DifferenceTransformer], vocab: Vocabulary, config: IdcConfig):
    """ipywidgets panel around explore_pair: change type, pair number, second image, model and decoding.

    Introduced in notebook 05_idc_difference_captioning.
    """
    import ipywidgets as widgets
    from IPython.display import display

    def show(**kwargs) -> None:
        figure = explore_pair(data, models, vocab, config, **kwargs)
        display(figure)
        plt.close(figure)

    types = [ANY] + list(dict.fromkeys(data.change_types))
    controls = dict(
        change_type=widgets.Dropdown(options=types, value=ANY, description="change"),
        pair=widgets.IntSlider(value=0, min=0, max=max(0, data.splits.count("test") - 1), description="pair",
                               continuous_update=False),
        second=widgets.ToggleButtons(options=list(SECOND), value="after", description="second"),
        model=widgets.Dropdown(options=list(models), description="model"),
        method=widgets.ToggleButtons(options=["greedy", "beam"], value="greedy", description="decoding"),
    )
    return widgets.interactive(show, **controls)


def feature_contrast(data: IdcData, split: str = "test") -> dict[str, float]:
    """Mean of the largest cell of the difference map per change type (distractor included): how visible each
    change is in the grid features. Introduced in notebook 05_idc_difference_captioning.
    """
    out: dict[str, list[float]] = {}
    for i, s in enumerate(data.splits):
        if s == split:
            out.setdefault(data.change_types[i], []).append(float(difference_map(data, i, SLOT_AFTER).max()))
            out.setdefault("distractor", []).append(float(difference_map(data, i, SLOT_DISTRACTOR).max()))
    return {kind: float(torch.tensor(v).mean()) for kind, v in out.items()}
