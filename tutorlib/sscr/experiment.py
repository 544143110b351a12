"""One (seed, data share) of the SSCR experiment: the three stages, cached, and the scores of each editor.

Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch
from torch import nn

from tutorlib.cache import train_or_load
from tutorlib.world.attributes import ENTITIES
from tutorlib.world.text import Vocabulary

from .config import SscrConfig
from .counterfactual import new_object_words, swap_words
from .data import DialogueTensors, to_signed
from .detector import Detector, detect
from .editor import Editor
from .explainer import Explainer
from .metrics import METRICS, score
from .text import encode
from .train import GanParts, draw_dialogues, train_detector, train_editor, train_explainer

METHODS = ("stage 1", "baseline", "SSCR")  # the stage-1 editor, and stage 3 plain and with SSCR
DETECTOR_CHANNELS = 16


def trained_detector(config: SscrConfig, train: DialogueTensors, device) -> tuple[Detector, dict]:
    """The evaluation detector for this image size and training set (train-or-load, cached).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    key = {"image_size": config.image_size, "n_train": len(train), "steps": config.detector_steps,
           "lr": config.detector_lr, "channels": DETECTOR_CHANNELS}

    def fit(detector):
        start = time.perf_counter()
        history = train_detector(detector, train, config, device)
        return {"history": history.to_dict(), "seconds": time.perf_counter() - start}

    detector, info = train_or_load("sscr-detector", key, lambda: Detector(config.image_size, DETECTOR_CHANNELS).to(device),
                                  fit, device)
    return detector.to(device).eval(), info


def detector_report(detector: Detector, data: DialogueTensors, device) -> dict[str, float]:
    """The detector against the exact ground truth on every canvas of `data`: per-entity accuracy, share of
    canvases read exactly right, per-sample F1, and the mean position error in pixels of the canvas.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    images = to_signed(data.images.reshape(-1, *data.images.shape[2:])).to(device)
    found, where = detect(detector, images)
    objects, coords = data.objects.reshape(-1, data.objects.shape[-1]), data.coords.reshape(-1, *data.coords.shape[2:])
    present = objects > 0
    error = ((where - coords[..., :2]) ** 2).sum(-1).sqrt()[present & (found > 0)] / 128 * data.images.shape[-1]
    return {"entity accuracy": 100 * float((found == objects).float().mean()),
            "exact canvases": 100 * float((found == objects).all(1).float().mean()),
            "f1": score(found, where, objects, coords[..., :2])["f1"],
            "position error (px)": float(error.mean()) if len(error) else float("nan")}


def evaluate_editor(editor: Editor, test: DialogueTensors, detector: Detector, device, seed: int = 0) -> dict:
    """Draw every test dialogue on the editor's own canvases and score the final turn: against the detector's
    reading of the ground-truth image (the paper's protocol) and against the exact scene (the oracle).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    drawings = draw_dialogues(editor, test.ids, test.lengths, test.background, device, seed)
    found, where = detect(detector, drawings[:, -1].to(device))
    labels, label_where = detect(detector, to_signed(test.images[:, -1]).to(device))
    return {"detector": score(found, where, labels, label_where),
            "oracle": score(found, where, test.objects[:, -1], test.coords[:, -1, :, :2]),
            "drawings": drawings}


def explainer_word_accuracy(explainer: Explainer, vocab: Vocabulary, previous, images, ids) -> dict[str, float]:
    """How often the explainer's greedy reading of (previous, image) names the new object's true colour and
    shape; ids (B, T, L) give the true instructions and the history. Introduced in notebook 01_sscr_iterative_editing.
    """
    explainer.eval()
    with torch.no_grad():
        history = explainer.history_states(ids).reshape(-1, explainer.history.hidden_size)
        read = explainer.explain(previous.reshape(-1, *previous.shape[2:]), images.reshape(-1, *images.shape[2:]),
                                 history, vocab.index["<bos>"], ids.shape[-1])
    said = [new_object_words(vocab.decode(r)) for r in read.cpu()]
    true = [new_object_words(vocab.decode(r)) for r in ids.reshape(-1, ids.shape[-1])]
    return {"color": 100 * float(np.mean([s[0] == t[0] for s, t in zip(said, true)])),
            "shape": 100 * float(np.mean([s[1] == t[1] for s, t in zip(said, true)]))}


def trained_explainer(config: SscrConfig, share: float, train: DialogueTensors, vocab: Vocabulary,
                      device) -> tuple[Explainer, dict]:
    """Stage 2 for one share of the training dialogues (train-or-load, cached), with config.seed.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    data = train.head(share)
    fields = ("image_size", "word_dim", "text_dim", "channels", "batch", "explainer_steps", "explainer_lr", "seed")
    key = {**{f: getattr(config, f) for f in fields}, "share": share, "n_dialogues": len(data),
           "vocabulary": vocab.words}

    def fit(explainer):
        start = time.perf_counter()
        torch.manual_seed(config.seed + 1)
        history = train_explainer(explainer, data, config, device, desc=f"explainer (share {share:g})")
        return {"history": history.to_dict(), "seconds": time.perf_counter() - start}

    explainer, info = train_or_load("sscr-explainer", key, lambda: Explainer(config, len(vocab)).to(device), fit, device)
    return explainer.to(device).eval(), info


def stage_one_editor(config: SscrConfig, share: float, train: DialogueTensors, vocab: Vocabulary,
                     device) -> tuple[Editor, dict]:
    """Stage 1 alone for one seed and share (train-or-load, cached), trained exactly as in run_share: for
    comparing editor settings such as lambda_rec = 0. Introduced in notebook 01_sscr_iterative_editing.
    """
    data = train.head(share)
    key = {"config": asdict(config), "share": share, "n_dialogues": len(data), "vocabulary": vocab.words}

    def fit(editor):
        start = time.perf_counter()
        parts, history = _stage_one(config, share, data, vocab, device)
        editor.load_state_dict(parts.editor.state_dict())
        return {"history": history, "seconds": time.perf_counter() - start}

    return train_or_load("sscr-stage-one", key, lambda: Editor(config, len(vocab)).to(device), fit, device)


def _stage_one(config: SscrConfig, share: float, data: DialogueTensors, vocab: Vocabulary, device):
    """Stage 1 on `data` from config.seed: the trained GanParts and the loss history (as a dict)."""
    torch.manual_seed(config.seed)
    parts = GanParts.create(config, len(vocab), device)
    history = train_editor(parts, data, config, config.baseline_steps, vocab, device, desc=f"stage 1 (share {share:g})")
    return parts, history.to_dict()


def run_share(config: SscrConfig, share: float, train: DialogueTensors, vocab: Vocabulary, device,
              explainer_seed: int | None = None) -> tuple[nn.ModuleDict, dict]:
    """Stages 1-3 for one seed (config.seed) and one share of the training dialogues (train-or-load, cached).

    The explainer of stage 2 is trained with `explainer_seed` (default: config.seed) and cached, so several
    seeds of the editor can share one explainer per share. Returns the editors ("stage 1", "baseline", "SSCR")
    and the explainer in a ModuleDict, and the training info (loss histories and seconds per stage).
    Introduced in notebook 01_sscr_iterative_editing.
    """
    data = train.head(share)
    explainer_seed = config.seed if explainer_seed is None else explainer_seed
    explainer, explainer_info = trained_explainer(config.with_seed(explainer_seed), share, train, vocab, device)
    key = {"config": asdict(config), "share": share, "n_dialogues": len(data), "vocabulary": vocab.words,
           "explainer_seed": explainer_seed}

    def make():
        return nn.ModuleDict({m: Editor(config, len(vocab)) for m in METHODS}).to(device)

    def fit(models):
        seconds, histories = {}, {}
        start = time.perf_counter()
        parts, histories["stage 1"] = _stage_one(config, share, data, vocab, device)
        seconds["stage 1"] = time.perf_counter() - start
        models["stage 1"].load_state_dict(parts.editor.state_dict())
        for method, teacher in (("baseline", None), ("SSCR", explainer)):
            start = time.perf_counter()
            continued = parts.copy()
            histories[method] = train_editor(continued, data, config, config.sscr_steps, vocab, device, teacher,
                                             desc=f"stage 3 {method}", first_step=config.baseline_steps).to_dict()
            models[method].load_state_dict(continued.editor.state_dict())
            seconds[method] = time.perf_counter() - start
        return {"histories": histories, "seconds": seconds, "dialogues": len(data)}

    models, info = train_or_load("sscr-editors", key, make, fit, device)
    models["explainer"] = explainer
    info["histories"]["explainer"] = explainer_info["history"]
    info["seconds"]["explainer"] = 0.0 if explainer_info["from_cache"] else explainer_info["seconds"]
    return models, info


def following_rate(editor: Editor, test: DialogueTensors, vocab: Vocabulary, detector: Detector, device,
                   counterfactual_turn: bool, seed: int = 0) -> float:
    """How often the editor draws the entity the LAST instruction names, on the ground-truth previous canvas.

    With `counterfactual_turn`, the last instruction's colour and shape are swapped for an entity the scene does
    not hold (an instruction beyond the data); the drawing follows it when the detector finds that entity and it
    was not on the previous canvas. Introduced in notebook 01_sscr_iterative_editing.
    """
    rng = np.random.default_rng(seed)
    texts, wanted = [], []
    for i, dialogue in enumerate(test.instructions):
        color, shape = new_object_words(dialogue[-1])
        if counterfactual_turn:
            free = [e for k, e in enumerate(ENTITIES) if test.objects[i, -1, k] == 0]
            shape, color = free[rng.integers(len(free))].split()
        texts.append(swap_words(dialogue[-1], color, shape))
        wanted.append(ENTITIES.index(f"{shape} {color}"))
    last = encode(vocab, texts, test.ids.shape[-1])
    ids, lengths = test.ids.clone(), test.lengths.clone()
    ids[:, -1], lengths[:, -1] = last.ids, last.lengths
    editor.eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        states = editor.condition(ids.to(device), lengths.to(device))[:, -1]
        previous = to_signed(test.images[:, -2]).to(device)
        drawn = editor(previous, states)[0]
    editor.train()
    before, _ = detect(detector, previous)
    after, _ = detect(detector, drawn)
    rows = torch.arange(len(test))
    wanted = torch.tensor(wanted)
    return 100 * float(((after[rows, wanted] > 0) & (before[rows, wanted] == 0)).float().mean())


def summarise(scores: dict[tuple[int, float], dict[str, dict[str, dict[str, float]]]]) -> dict:
    """Mean and standard deviation over seeds: rows[(share, method, labels)][metric] = (mean, std), from
    scores[(seed, share)][method][labels][metric] with labels "detector" or "oracle".

    Introduced in notebook 01_sscr_iterative_editing.
    """
    rows: dict = {}
    shares = sorted({share for _, share in scores}, reverse=True)
    for share in shares:
        runs = [v for (_, s), v in scores.items() if s == share]
        for method in runs[0]:
            for labels in runs[0][method]:
                rows[(share, method, labels)] = {
                    m: (float(np.mean([r[method][labels][m] for r in runs])),
                        float(np.std([r[method][labels][m] for r in runs]))) for m in METRICS}
    return rows


def format_table(rows: dict, labels: str = "detector") -> str:
    """The results table as text: one line per (share, method), "mean ± std" per metric.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    lines = [f"{'share':>6} {'method':<9}" + "".join(f"{m:>15}" for m in METRICS)]
    for (share, method, kind), values in rows.items():
        if kind == labels:
            lines.append(f"{share:>6.0%} {method:<9}" + "".join(f"{values[m][0]:>8.1f} ± {values[m][1]:<4.1f}"
                                                               for m in METRICS))
    return "\n".join(lines)


def sscr_gains(scores: dict[tuple[int, float], dict[str, dict[str, dict[str, float]]]],
               labels: str = "detector") -> dict[float, dict[str, tuple[float, float]]]:
    """SSCR minus baseline per seed, then (mean, std) over seeds, per share and metric, from the same
    scores[(seed, share)][method][labels][metric] as summarise. The two editors of a seed continue one stage-1
    checkpoint on the same batches, so the paired difference measures SSCR alone.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    gains = {}
    for share in sorted({share for _, share in scores}, reverse=True):
        runs = [v for (_, s), v in scores.items() if s == share]
        differences = {m: [r["SSCR"][labels][m] - r["baseline"][labels][m] for r in runs] for m in METRICS}
        gains[share] = {m: (float(np.mean(d)), float(np.std(d))) for m, d in differences.items()}
    return gains
