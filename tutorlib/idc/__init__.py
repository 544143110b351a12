"""IDC: image difference captioning with contrastive pretraining, on the CLEVR-Change view of the shapes world.

Introduced in notebook 05_idc_difference_captioning.
"""
from .config import TASKS, IdcConfig
from .data import IdcData, load_change_data, world_change_folder
from .decoding import decode
from .evaluate import coco_scores, oracle_check, scores_by_type
from .experiment import evaluate_captions, run_variant, summarise, variant_name
from .model import DifferenceTransformer, attention_mask

__all__ = ["TASKS", "IdcConfig", "IdcData", "load_change_data", "world_change_folder", "decode", "coco_scores",
           "oracle_check", "scores_by_type", "evaluate_captions", "run_variant", "summarise", "variant_name",
           "DifferenceTransformer", "attention_mask"]
