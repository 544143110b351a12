"""Pictures of iterative editing: generated dialogues beside the ground truth, and the interactive editor.

Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from tutorlib.plots import panel_figure, to_display
from tutorlib.world.text import Vocabulary

from .data import DialogueTensors
from .editor import Editor
from .text import encode
from .train import draw_dialogues


def show_sequences(test: DialogueTensors, drawings: Mapping[str, torch.Tensor], index: int = 0,
                   scale: float = 1.3) -> Figure:
    """One dialogue of the test set: the ground-truth canvases, then each editor's drawings (its own previous
    canvas at every turn), one column per turn with the instruction on top. Introduced in notebook 01_sscr_iterative_editing.
    """
    rows = [("ground truth", test.images[index])] + [(name, d[index]) for name, d in drawings.items()]
    turns = test.turns
    figure, axes = plt.subplots(len(rows), turns, figsize=(scale * turns, scale * len(rows) + 0.6), squeeze=False)
    for r, (name, canvases) in enumerate(rows):
        for t in range(turns):
            axes[r, t].imshow(to_display(canvases[t], signed=canvases.dtype != torch.uint8))
            axes[r, t].set_xticks([]), axes[r, t].set_yticks([])
            if r == 0:
                axes[r, t].set_title(textwrap.fill(test.instructions[index][t], 22), fontsize=6)
        axes[r, 0].set_ylabel(name, fontsize=8)
    figure.tight_layout()
    return figure


def draw_instructions(editor: Editor, vocab: Vocabulary, instructions: Sequence[str], background: torch.Tensor,
                      device="cpu", seed: int = 0) -> Figure:
    """The widget's picture: the editor draws `instructions` turn by turn from the empty floor. Unknown words
    are read as <unk> and named in the figure's title. Introduced in notebook 01_sscr_iterative_editing.
    """
    instructions = [t for t in instructions if t.strip()]
    if not instructions:
        raise ValueError("type at least one instruction, e.g. 'add a red cube at the center'")
    encoded = encode(vocab, instructions)
    canvases = draw_dialogues(editor, encoded.ids[None], encoded.lengths[None], background, device, seed)[0]
    unknown = sorted({w for words in encoded.unknown for w in words})
    figure, axes = panel_figure(len(instructions), extra_inches=0.3 if unknown else 0.0)
    for t, ax in enumerate(axes):
        ax.imshow(to_display(canvases[t], signed=True))
        ax.set_title(textwrap.fill(f"{t + 1}. {instructions[t]}", 34), fontsize=9)
        ax.axis("off")
    if unknown:
        figure.suptitle(f"unknown words read as <unk>: {', '.join(unknown)}", fontsize=9, color="tab:red")
    return figure


def editing_explorer(editors: Mapping[str, Editor], vocab: Vocabulary, background: torch.Tensor,
                     examples: Sequence[Sequence[str]], device="cpu"):
    """ipywidgets panel around draw_instructions: pick an example dialogue or type up to five instructions,
    choose the editor and the noise seed, press "draw". Introduced in notebook 01_sscr_iterative_editing.
    """
    import ipywidgets as widgets
    from IPython.display import display

    turns = max(len(e) for e in examples)
    boxes = [widgets.Text(value=examples[0][t] if t < len(examples[0]) else "", description=f"turn {t + 1}",
                          layout=widgets.Layout(width="480px")) for t in range(turns)]
    pick = widgets.Dropdown(options=[(f"example {i}", i) for i in range(len(examples))], description="examples")
    model = widgets.Dropdown(options=list(editors), description="editor")
    seed = widgets.IntText(value=0, description="seed")
    button = widgets.Button(description="draw")
    output = widgets.Output()

    def fill(change):
        for t, box in enumerate(boxes):
            box.value = examples[change["new"]][t] if t < len(examples[change["new"]]) else ""

    def draw(_=None):
        with output:
            output.clear_output(wait=True)
            figure = draw_instructions(editors[model.value], vocab, [b.value for b in boxes], background, device,
                                       seed.value)
            display(figure)
            plt.close(figure)

    pick.observe(fill, names="value")
    button.on_click(draw)
    return widgets.VBox([widgets.HBox([pick, model, seed, button]), *boxes, output])
