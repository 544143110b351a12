"""Retrieval by embedding arithmetic and the SIMAT score. Introduced in notebook 02_simat_delta_retrieval."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from tutorlib.clip import Clip
from tutorlib.search import make_index
from tutorlib.world.text import RELATION_PHRASES
from tutorlib.world.views.simat import SimatData, Transformation

from .heads import AdaptationHeads

METHODS = ("arithmetic", "image", "text")


def word_text(field: str, value: str) -> str:
    """The text embedded for a query word: the entity phrase itself ("red cube"), or for a relation the
    words a caption uses ("to the left of"); any other word or phrase (the release's "sitting on a") as it is.
    Introduced in notebook 02_simat_delta_retrieval."""
    return RELATION_PHRASES.get(value, value) if field == "rel" else value


@dataclass
class Embeddings:
    """Unit-length embeddings of the database images (by position) and of every query word.

    Introduced in notebook 02_simat_delta_retrieval.
    """

    images: torch.Tensor
    words: dict[str, torch.Tensor]

    def word(self, text: str) -> torch.Tensor:
        if text not in self.words:
            raise ValueError(f"no embedding for {text!r}; embedded words: {sorted(self.words)}")
        return self.words[text]

    @torch.no_grad()
    def with_heads(self, heads: AdaptationHeads) -> "Embeddings":
        """The embeddings seen through adaptation heads: x = normalize(head_img(x)), w = normalize(head_txt(w))."""
        names = list(self.words)
        texts = heads.embed_texts(torch.stack([self.words[n] for n in names]))
        return Embeddings(heads.embed_images(self.images), dict(zip(names, texts)))


def embed_database(clip: Clip, db: SimatData, extra_words: Sequence[str] = ()) -> Embeddings:
    """Embed every database image and every word the transformation queries use (plus extra_words).

    Introduced in notebook 02_simat_delta_retrieval.
    """
    texts = sorted({word_text(t.field, v) for t in db.transformations for v in (t.value, t.target)} | set(extra_words))
    vocabulary = getattr(clip.tokenizer, "vocabulary", None)
    if vocabulary is not None:
        unknown = sorted({w for text in texts for w in text.split() if w not in vocabulary.index})
        if unknown:
            raise ValueError(f"words outside the CLIP vocabulary: {unknown}")
    return Embeddings(clip.encode_images(db.images), dict(zip(texts, clip.encode_texts(texts))))


def target_triplet(db: SimatData, t: Transformation) -> tuple[str, str, str]:
    """The triplet a query asks for: the source image's triplet with one field replaced by the target."""
    triplet = list(db.triplets[db.position(region_id=t.region_id)])
    triplet[("subj", "rel", "obj").index(t.field)] = t.target
    return tuple(triplet)


def delta_queries(emb: Embeddings, db: SimatData, queries: Sequence[Transformation], lam: float,
                  method: str = "arithmetic") -> torch.Tensor:
    """Query vectors. arithmetic: q = x_src + lam (w(target) - w(source)); image: q = x_src;
    text: q = w(target). Introduced in notebook 02_simat_delta_retrieval."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    sources = torch.tensor([db.position(region_id=t.region_id) for t in queries])
    target = torch.stack([emb.word(word_text(t.field, t.target)) for t in queries])
    if method == "text":
        return target
    x = emb.images[sources]
    if method == "image":
        return x
    source = torch.stack([emb.word(word_text(t.field, t.value)) for t in queries])
    return x + lam * (target - source)


def retrieve(emb: Embeddings, db: SimatData, queries: Sequence[Transformation], q: torch.Tensor, k: int = 1,
             backend: str = "exact") -> torch.Tensor:
    """(N, k) database positions of the best matches <q, x_j>, the source image excluded."""
    sources = torch.tensor([db.position(region_id=t.region_id) for t in queries])
    _, ids = make_index(emb.images, backend=backend).search(q, k, exclude=sources)
    return ids


Judge = Callable[[SimatData, int, Transformation], bool]


def oracle_judge(db: SimatData, position: int, t: Transformation) -> bool:
    """Success from the scene graphs: does the image at `position` show the query's target triplet?"""
    held = db.holds(position, target_triplet(db, t))
    if held is None:
        raise ValueError(f"{db!r} has no scene graphs to judge success; pass judge=caption_judge(scorer), where "
                         "scorer(image, caption) is an image-caption match probability (OSCAR's role in SIMAT)")
    return held


def caption_judge(scorer: Callable[[torch.Tensor, str], float], threshold: float = 0.5) -> Judge:
    """Success as SIMAT judges it: scorer(retrieved image, target caption) > threshold (OSCAR's probability > 0.5);
    the target caption is line target_ids of captions.txt."""
    def judge(db: SimatData, position: int, t: Transformation) -> bool:
        if not 0 <= t.target_ids < len(db.captions):
            raise ValueError(f"query {t} has no target caption (target_ids {t.target_ids} is not a line of "
                             f"captions.txt, 0 to {len(db.captions) - 1})")
        return float(scorer(db.image(position), db.captions[t.target_ids])) > threshold
    return judge


def simat_score(db: SimatData, queries: Sequence[Transformation], retrieved: torch.Tensor,
                judge: Judge = oracle_judge) -> float:
    """SIMAT score = 100 * sum_q w_q success_q / sum_q w_q, with w_q = norm2_q^(-1/2) and success judged on
    the top-1 image by `judge`: the scene oracle (default; a clear error without scenes) or caption_judge.
    Introduced in notebook 02_simat_delta_retrieval."""
    if len(queries) != len(retrieved):
        raise ValueError(f"{len(queries)} queries but {len(retrieved)} retrieved rows")
    weights = torch.tensor([t.weight for t in queries], dtype=torch.float64)
    success = torch.tensor([bool(judge(db, int(r[0]), t)) for t, r in zip(queries, retrieved)], dtype=torch.float64)
    return float(100.0 * (weights * success).sum() / weights.sum())


def evaluate(emb: Embeddings, db: SimatData, split: str, method: str = "arithmetic", lam: float = 1.0,
             judge: Judge = oracle_judge) -> float:
    """The SIMAT score of one method on the "dev" or "test" queries. Introduced in notebook 02_simat_delta_retrieval."""
    queries = db.split(split)
    return simat_score(db, queries, retrieve(emb, db, queries, delta_queries(emb, db, queries, lam, method)), judge)
