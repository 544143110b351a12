"""SIMAT: text-driven image transformation by CLIP embedding arithmetic, on the shapes world.

Introduced in notebook 02_simat_delta_retrieval.
"""
from .config import SimatConfig
from .heads import AdaptationHeads, train_heads
from .retrieval import (Embeddings, caption_judge, delta_queries, embed_database, evaluate, oracle_judge, retrieve,
                        simat_score, word_text)

__all__ = ["SimatConfig", "AdaptationHeads", "train_heads", "Embeddings", "caption_judge", "delta_queries", "embed_database",
           "evaluate", "oracle_judge", "retrieve", "simat_score", "word_text"]
