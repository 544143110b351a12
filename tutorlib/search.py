"""Nearest-neighbour search by inner product over L2-normalised embeddings, exact and batched.

`python -m tutorlib.search` times it on random vectors. Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from tutorlib.device import pick_device

BACKENDS = ("auto", "exact", "faiss")
SCORE_BUDGET = 2**25  # default query batch: at most this many scores (128 MB float32) at once

Exclude = Sequence[int] | torch.Tensor | None


def check_finite(vectors: torch.Tensor, name: str) -> None:
    """Refuse NaN and inf: they make every score of their row NaN (or inf), and top-k then ranks garbage.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    bad_rows = (~torch.isfinite(vectors.detach())).any(dim=1).nonzero().flatten()
    if len(bad_rows):
        shown = ", ".join(map(str, bad_rows[:5].tolist())) + (", ..." if len(bad_rows) > 5 else "")
        raise ValueError(f"{name} hold NaN or inf in {len(bad_rows)} of {len(vectors)} rows (rows {shown}); "
                         "drop or repair those rows first")


class VectorIndex:
    """What every index shares: input checks, query batching and dropping each query's own id.

    Subclasses implement `_search_batch`. Introduced in notebook 02_simat_delta_retrieval.
    """

    backend = ""

    def __init__(self, vectors: torch.Tensor, device: str | torch.device = "cpu") -> None:
        if vectors.dim() != 2:
            raise ValueError(f"vectors must be 2-D (M, d), got shape {tuple(vectors.shape)}")
        check_finite(vectors, "vectors")
        self.device = pick_device(str(device))
        self.vectors = vectors.detach().to(self.device, torch.float32).contiguous()

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        """Dimension d of the stored vectors."""
        return self.vectors.shape[1]

    def _search_batch(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def search(self, queries: torch.Tensor, k: int, exclude: Exclude = None,
               batch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The k best database vectors per query: (scores, ids), both (N, k) on the CPU, best first.

        `exclude[i]` is a database id that query i must not return (-1: none), e.g. the image the
        query was computed from. `batch` queries are scored at a time (default: as many as keep the
        score matrix under `SCORE_BUDGET` entries). Introduced in notebook 02_simat_delta_retrieval.
        """
        if queries.dim() != 2:
            raise ValueError(f"queries must be 2-D (N, d), got shape {tuple(queries.shape)}")
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {queries.shape[1]} but the index holds "
                             f"vectors of dimension {self.dim}")
        check_finite(queries, "queries")
        limit = len(self) if exclude is None else len(self) - 1
        if not 1 <= k <= limit:
            reason = "" if exclude is None else " (one id per query is excluded)"
            raise ValueError(f"k must be between 1 and {limit} for an index of {len(self)} "
                             f"vectors{reason}, got {k}")
        if batch is None:
            batch = max(1, SCORE_BUDGET // len(self))
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        n = queries.shape[0]
        if exclude is not None:
            exclude = torch.as_tensor(exclude, dtype=torch.int64).cpu()
            if exclude.shape != (n,):
                raise ValueError(f"exclude must hold one id per query ({n}), got shape "
                                 f"{tuple(exclude.shape)}")
            if n and (exclude.min() < -1 or exclude.max() >= len(self)):
                raise ValueError(f"exclude ids must be -1 (none) or in [0, {len(self) - 1}], got "
                                 f"values from {exclude.min().item()} to {exclude.max().item()}")
        fetch = k if exclude is None else k + 1
        all_scores, all_ids = [], []
        for start in range(0, n, batch):
            scores, ids = self._search_batch(queries[start:start + batch], fetch)
            if exclude is not None:
                # drop the excluded id where it was found, else the (k+1)-th hit: k left, in order
                drop = ids == exclude[start:start + batch, None]
                drop[:, -1] |= ~drop.any(dim=1)
                scores, ids = scores[~drop].view(-1, k), ids[~drop].view(-1, k)
            all_scores.append(scores)
            all_ids.append(ids)
        if not all_scores:
            return torch.empty(0, k), torch.empty(0, k, dtype=torch.int64)
        return torch.cat(all_scores), torch.cat(all_ids)


class ExactIndex(VectorIndex):
    """Exact search with torch: one matrix multiply and a top-k per batch of queries, on any device.

    Introduced in notebook 02_simat_delta_retrieval.
    """

    backend = "exact"

    def _search_batch(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        # score(q, v) = <q, v>, the cosine similarity for unit vectors; keep the k largest per query
        scores = queries.to(self.device, torch.float32) @ self.vectors.T
        top = scores.topk(k, dim=1)
        return top.values.cpu(), top.indices.cpu()


class FaissIndex(VectorIndex):
    """Exact search with faiss's `IndexFlatIP` (CPU), the library that scales to billions of vectors.

    Needs `pip install faiss-cpu`. Introduced in notebook 02_simat_delta_retrieval.
    """

    backend = "faiss"

    def __init__(self, vectors: torch.Tensor, device: str | torch.device = "cpu") -> None:
        try:
            import faiss
        except ImportError as error:
            raise ImportError("FaissIndex needs faiss: `pip install faiss-cpu`, or use "
                              "ExactIndex / make_index(backend='exact')") from error
        if pick_device(str(device)).type != "cpu":
            raise ValueError(f"FaissIndex runs on the cpu, not {device}; use ExactIndex there")
        super().__init__(vectors, "cpu")
        self.index = faiss.IndexFlatIP(self.dim)
        self.index.add(self.vectors.numpy())

    def _search_batch(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        # score(q, v) = <q, v>, computed by faiss over the flat (uncompressed) vectors
        query_array = queries.detach().to("cpu", torch.float32).contiguous().numpy()
        scores, ids = self.index.search(query_array, k)
        return torch.from_numpy(scores), torch.from_numpy(ids).to(torch.int64)


def faiss_available() -> bool:
    """Whether faiss can be imported. Introduced in notebook 02_simat_delta_retrieval."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def make_index(vectors: torch.Tensor, backend: str = "auto",
               device: str | torch.device = "auto") -> VectorIndex:
    """An index over `vectors` (M, d): "exact" (torch), "faiss", or "auto".

    "auto" takes faiss when it imports and the device is the cpu, else the exact torch index (a
    GPU matrix multiply beats faiss-cpu). Introduced in notebook 02_simat_delta_retrieval.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    device = pick_device(str(device))
    if backend == "auto":
        backend = "faiss" if device.type == "cpu" and faiss_available() else "exact"
    return FaissIndex(vectors, device) if backend == "faiss" else ExactIndex(vectors, device)


def random_unit_vectors(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """`n` random L2-normalised float32 vectors of dimension `dim` (CPU).

    Introduced in notebook 02_simat_delta_retrieval.
    """
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1)


def benchmark(size: int, dim: int = 64, n_queries: int = 1000, k: int = 10, backend: str = "auto",
              device: str = "auto", repeats: int = 3, seed: int = 0) -> dict:
    """Best of `repeats` timings (after a warm-up) of searching `n_queries` random queries.

    Returns {"size", "dim", "queries", "k", "backend", "device", "memory_mb", "seconds",
    "queries_per_second"}. Introduced in notebook 02_simat_delta_retrieval.
    """
    generator = torch.Generator().manual_seed(seed)
    index = make_index(random_unit_vectors(size, dim, generator), backend, device)
    queries = random_unit_vectors(n_queries, dim, generator)
    index.search(queries, k)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        index.search(queries, k)  # results come back on the CPU, so GPU work is finished here
        best = min(best, time.perf_counter() - start)
    memory_mb = index.vectors.numel() * index.vectors.element_size() / 1e6
    return {"size": size, "dim": dim, "queries": n_queries, "k": k, "backend": index.backend,
            "device": str(index.device), "memory_mb": memory_mb, "seconds": best,
            "queries_per_second": n_queries / best}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tutorlib.search", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--backend", choices=BACKENDS, default="auto")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dim {args.dim}, "
          f"{args.queries} queries, k {args.k}")
    print(f"{'size':>10} {'backend':>8} {'device':>8} {'queries/s':>11} {'vectors MB':>11}")
    for size in args.sizes:
        result = benchmark(size, args.dim, args.queries, args.k, args.backend, args.device)
        print(f"{size:>10} {result['backend']:>8} {result['device']:>8} "
              f"{result['queries_per_second']:>11.0f} {result['memory_mb']:>11.1f}")


if __name__ == "__main__":
    main()
