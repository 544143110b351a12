"""SSCR: iterative language-based image editing with self-supervised counterfactual reasoning, on the shapes world.

Introduced in notebook 01_sscr_iterative_editing.
"""
from .config import SscrConfig
from .counterfactual import counterfactual, swap_words
from .data import DialogueTensors, load_split
from .detector import Detector, detect
from .editor import Discriminator, Editor
from .experiment import evaluate_editor, run_share, summarise, trained_detector
from .explainer import Explainer
from .metrics import score
from .text import encode, instruction_vocabulary

__all__ = ["SscrConfig", "counterfactual", "swap_words", "DialogueTensors", "load_split", "Detector", "detect",
           "Discriminator", "Editor", "evaluate_editor", "run_share", "summarise", "trained_detector", "Explainer",
           "score", "encode", "instruction_vocabulary"]
