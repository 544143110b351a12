"""The unit-editing explorer: pick a GAN sample, a concept and N, ablate or insert, see the drawing change.

Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from tutorlib.plots import panel_figure, to_display
from tutorlib.world.views.captioned import CONCEPTS

from .dissection import Dissection
from .editing import check_mode, concept_regions, edit, edit_effect, insertion_box, units_for
from .gan import Generator, bank_codes, generate
from .segmenter import Segmenter, check_concept, describe, segment


def explore_units(generator: Generator, segmenter: Segmenter, dissection: Dissection, means: torch.Tensor | None,
                  sample_id: int = 0, concept: str = "color=red", n_units: int = 16, mode: str = "ablate",
                  bank_seed: int = 0, dilation: int = 2) -> Figure:
    """Before / after / |difference| of one edit of GAN sample `sample_id`: the top `n_units` units of `concept`
    ablated inside the segmenter's (dilated) mask of the concept (the whole image when it finds none), or inserted
    (values `means` (U, C)) inside the insertion box. Titles give the segmenter's captions and the measured effect.

    Introduced in notebook 03_drawing_gan_units.
    """
    c = check_concept(concept)
    check_mode(mode)
    if sample_id < 0:
        raise ValueError(f"sample ids are bank indices: they must be >= 0, got {sample_id}")
    if mode == "insert" and means is None:
        raise ValueError("insertion needs `means`, the (U, C) values from concept_means")
    units = units_for(dissection, concept, n_units)
    z = bank_codes([sample_id], bank_seed, generator.config.z_dim)
    before = generate(generator, z=z)
    p_before = segment(segmenter, before)
    if mode == "ablate":
        region = concept_regions(p_before, [concept], dilation)
        if not bool(region.any()):
            region[:] = True
        after = edit(generator, z, dissection.layer, units, region)
    else:
        region = insertion_box(generator.config.image_size)[None]
        after = edit(generator, z, dissection.layer, units, region, means[:, c])
    p_after = segment(segmenter, after)
    effect = edit_effect(p_before, p_after, concept, region)
    difference = (after.float() - before.float()).abs().amax(dim=1)[0]
    figure, axes = panel_figure(3, title_inches=1.0, extra_inches=0.4)
    panels = [(to_display(before[0]), "before: " + describe(p_before[0])[1]),
              (to_display(after[0]), "after: " + describe(p_after[0])[1]),
              (difference.numpy(), "|after - before|")]
    for ax, (picture, title) in zip(axes, panels):
        ax.imshow(picture, cmap="magma") if picture.ndim == 2 else ax.imshow(picture)
        ax.contour(region[0].float().numpy(), levels=[0.5], colors="white", linewidths=0.7)
        ax.set_title(textwrap.fill(title, 40), fontsize=8)
        ax.axis("off")
    verb = "removed" if mode == "ablate" else "present after"
    share = effect.removed if mode == "ablate" else effect.inside_after
    figure.suptitle(f"sample {sample_id}: {mode} {concept} with {n_units} units of {dissection.layer} "
                    f"({verb}: {share:.0%} of the region; changed outside: {effect.changed_outside:.1%})", fontsize=8)
    return figure


def unit_explorer(generator: Generator, segmenter: Segmenter, dissection: Dissection, means: torch.Tensor,
                  bank_seed: int = 0, max_sample: int = 999):
    """ipywidgets panel around explore_units: sample, concept, N and mode; the edit runs on a button click.

    Introduced in notebook 03_drawing_gan_units.
    """
    import ipywidgets as widgets
    from IPython.display import display

    sample = widgets.BoundedIntText(0, min=0, max=max_sample, description="sample")
    concept = widgets.Dropdown(options=list(CONCEPTS), value="color=red", description="concept")
    n_units = widgets.IntSlider(16, min=1, max=dissection.n_units, description="N units", continuous_update=False)
    mode = widgets.ToggleButtons(options=["ablate", "insert"], value="ablate", description="mode")
    button = widgets.Button(description="edit", button_style="primary")
    out = widgets.Output()

    def run(_=None) -> None:
        with out:
            out.clear_output(wait=True)
            figure = explore_units(generator, segmenter, dissection, means, sample.value, concept.value,
                                   n_units.value, mode.value, bank_seed)
            display(figure)
            plt.close(figure)

    button.on_click(run)
    return widgets.VBox([widgets.HBox([sample, concept]), widgets.HBox([n_units, mode]), button, out])
