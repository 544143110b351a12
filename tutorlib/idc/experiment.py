"""One IDC run: pretrain (or not) on a set of tasks, fine-tune on all or a share of the training pairs, caption
the test pairs and score them; pretrained and fine-tuned models are cached by config (train-or-load).

Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

import copy

import numpy as np

from tutorlib.cache import train_or_load
from tutorlib.world.text import Vocabulary

from .config import IdcConfig
from .data import IdcData
from .decoding import decode
from .evaluate import METRICS, oracle_accuracy, oracle_check, scores_by_type
from .finetune import change_accuracy, finetune
from .model import DifferenceTransformer, build_model
from .pretraining import pretrain


def _make(config: IdcConfig, data: IdcData, vocab: Vocabulary) -> DifferenceTransformer:
    return build_model(config, data.features.shape[-1], data.features.shape[-2], len(vocab), vocab.pad)


def pretrained_model(config: IdcConfig, data: IdcData, vocab: Vocabulary, device) -> tuple[DifferenceTransformer, dict]:
    """The model after pretraining on config.tasks (cached), or freshly initialised when there are none.

    Introduced in notebook 05_idc_difference_captioning.
    """
    if not config.tasks:
        return _make(config, data, vocab).to(device), {"history": {}, "from_cache": False}
    key = {**config.model_key(), "n_words": len(vocab), "features": list(data.features.shape)}
    model, info = train_or_load("idc-pretrain", key, lambda: _make(config, data, vocab),
                               lambda m: {"history": pretrain(m, data.examples("train"), vocab, config, device).to_dict()}, device)
    return model.to(device), info


def finetuned_model(config: IdcConfig, data: IdcData, vocab: Vocabulary, share: float, device,
                    pretrained: DifferenceTransformer) -> tuple[DifferenceTransformer, dict]:
    """`pretrained` fine-tuned on a share of the training pairs for config.steps_for(share) steps (cached).

    Introduced in notebook 05_idc_difference_captioning.
    """
    config = config.replace(finetune_steps=config.steps_for(share))
    key = {**config.model_key(), "n_words": len(vocab), "features": list(data.features.shape), "share": share,
           "finetune_steps": config.finetune_steps, "finetune_mask_prob": config.finetune_mask_prob}
    examples = data.examples("train", share, config.seed)
    model, info = train_or_load("idc-finetune", key, lambda: copy.deepcopy(pretrained).cpu(),
                               lambda m: {"history": finetune(m, examples, vocab, config, device).to_dict(),
                                          "pairs": len(examples)}, device)
    return model.to(device).eval(), info


def evaluate_captions(model: DifferenceTransformer, data: IdcData, vocab: Vocabulary, config: IdcConfig,
                      split: str = "test", method: str = "greedy", meteor: bool | None = None) -> dict:
    """Captions of every pair of a split, their coco metrics per change type, the oracle's check and the
    changed-or-not accuracy. Introduced in notebook 05_idc_difference_captioning.
    """
    examples = data.examples(split)
    device = next(model.parameters()).device
    before, after = examples.pair_features(range(len(examples)))
    captions = decode(model, before, after, vocab, config.max_text, method, config.beam_size)
    types = [examples.change_type(k) for k in range(len(examples))]
    references = [examples.references(k) for k in range(len(examples))]
    checks = []
    for k, caption in enumerate(captions):
        item = data.files.records[examples.item[k]]
        checks.append(oracle_check(caption, types[k], item.get("scene_before"),
                                   item.get("scene_after") if examples.changed(k) else item.get("scene_distractor")))
    return {"captions": captions, "types": types, "references": references, "checks": checks,
            "scores": scores_by_type(captions, references, types, meteor),
            "oracle": oracle_accuracy(checks, types), "change_accuracy": change_accuracy(model, examples, device)}


def variant_name(tasks: tuple[str, ...]) -> str:
    """"no pretraining", "mlm", "mlm+mvcl+fda", ... Introduced in notebook 05_idc_difference_captioning."""
    return "+".join(tasks) if tasks else "no pretraining"


def run_variant(config: IdcConfig, data: IdcData, vocab: Vocabulary, shares, device, meteor: bool | None = None) -> dict:
    """Pretrain on config.tasks, then fine-tune on each share of the training pairs and evaluate on test.

    Returns {"pretrain": info, "by_share": {share: {"model", "finetune": info, "eval": evaluate_captions(...)}}}.
    Introduced in notebook 05_idc_difference_captioning.
    """
    pretrained, info = pretrained_model(config, data, vocab, device)
    by_share = {}
    for share in shares:
        model, fine = finetuned_model(config, data, vocab, share, device, pretrained)
        by_share[share] = {"model": model, "finetune": fine,
                           "eval": evaluate_captions(model, data, vocab, config, meteor=meteor)}
    return {"pretrain": info, "by_share": by_share}


def summarise(runs: dict[tuple[str, float, int], dict]) -> dict[tuple[str, float], dict]:
    """Mean and standard deviation over seeds of each metric (total), the oracle's correct share (over all pairs
    and over the changed ones) and the change accuracy, per (variant, share); runs are keyed (variant, share, seed) and hold evaluate_captions' result.

    Introduced in notebook 05_idc_difference_captioning.
    """
    grouped: dict[tuple[str, float], list[dict]] = {}
    for (variant, share, _), result in runs.items():
        grouped.setdefault((variant, share), []).append(result)
    table = {}
    for key, results in grouped.items():
        values = {m: [r["scores"]["total"][m] for r in results] for m in METRICS}
        values["oracle correct"] = [r["oracle"]["total"]["correct"] if r["oracle"] else None for r in results]
        values["oracle on changes"] = [r["oracle"]["changed"]["correct"] if r["oracle"] else None for r in results]
        values["changed? accuracy"] = [100.0 * r["change_accuracy"] for r in results]
        table[key] = {name: None if any(v is None for v in vs) else (float(np.mean(vs)), float(np.std(vs)), len(vs))
                      for name, vs in values.items()}
    return table


def claim_check(table: dict[tuple[str, float], dict], pretrained: str, shares: tuple[float, float],
                metric: str = "CIDEr") -> dict:
    """The paper's claim on a summarise() table: pretraining beats no pretraining on `metric` (mean over seeds)
    by more than the two rows' spreads added (std over seeds), at the full share and at the reduced share, and
    by more at the reduced one.

    Introduced in notebook 05_idc_difference_captioning.
    """
    full, reduced = shares
    gain = {share: table[(pretrained, share)][metric][0] - table[("no pretraining", share)][metric][0]
            for share in shares}
    spread = {share: table[(pretrained, share)][metric][1] + table[("no pretraining", share)][metric][1]
              for share in shares}
    clear = {share: gain[share] > spread[share] for share in shares}
    return {"gain_full": gain[full], "gain_reduced": gain[reduced], "spread_full": spread[full],
            "spread_reduced": spread[reduced], "clear_full": clear[full], "clear_reduced": clear[reduced],
            "held": clear[full] and clear[reduced] and gain[reduced] > gain[full]}


def summary_text(table: dict[tuple[str, float], dict]) -> str:
    """summarise()'s table as aligned text: one row per (variant, share), mean ± std (number of seeds).

    Introduced in notebook 05_idc_difference_captioning.
    """
    names = list(next(iter(table.values())))
    lines = [f"{'pretraining':<16} {'fine-tune data':>14} " + " ".join(f"{n:>17}" for n in names)]
    for (variant, share), row in table.items():
        cells = ["n/a" if row[n] is None else f"{row[n][0]:.1f} ± {row[n][1]:.1f} ({row[n][2]})" for n in names]
        lines.append(f"{variant:<16} {share:>13.0%} " + " ".join(f"{c:>17}" for c in cells))
    return "\n".join(lines)


def by_type_text(result: dict) -> str:
    """One evaluate_captions() result per change type as aligned text: the four metrics and the oracle's
    share of right captions. Introduced in notebook 05_idc_difference_captioning.
    """
    lines = [f"{'change type':<12} {'pairs':>5} " + " ".join(f"{m:>8}" for m in METRICS) + f" {'oracle ok':>9}"]
    for kind, scores in result["scores"].items():
        pairs = len(result["types"]) if kind == "total" else result["types"].count(kind)
        oracle = "n/a" if result["oracle"] is None else f"{result['oracle'][kind]['correct']:.1f}"
        lines.append(f"{kind:<12} {pairs:>5} " + " ".join("     n/a" if scores[m] is None else f"{scores[m]:>8.1f}"
                                                           for m in METRICS) + f" {oracle:>9}")
    return "\n".join(lines)
