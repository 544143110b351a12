"""VisMin: minimal-change understanding, its benchmark scores and hard-negative CLIP fine-tuning.

Introduced in notebook 04_vismin_minimal_change.
"""
from .finetune import FinetuneConfig, finetune_clip, minimal_change_batch
from .scores import CATEGORY_ORDER, pair_similarities, score_pairs, summarise_scores

__all__ = ["FinetuneConfig", "finetune_clip", "minimal_change_batch", "CATEGORY_ORDER", "pair_similarities",
           "score_pairs", "summarise_scores"]
