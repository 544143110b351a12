"""Nearest-neighbour search by inner product over L2-normalised embeddings, exact and batched.

`python -m tutorlib.search` compares exact search with faiss (flat and IVF) on random vectors.
Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import torch

from tutorlib.device import pick_device, set_threads

BACKENDS = ("auto", "exact", "faiss")
SCORE_BUDGET = 2**25  # default query batch: at most this many scores (128 MB float32) at once

Exclude = Sequence[int] | torch.Tensor | None


def check_vectors(vectors: torch.Tensor, name: str) -> None:
    """Refuse rows with NaN or inf (every score of their row is NaN or inf, and top-k then ranks garbage) and
    all-zero rows (no direction: they cannot be L2-normalised, and every score is 0, a tie)."""
    data = vectors.detach()
    for problem, bad in (("NaN or inf", ~torch.isfinite(data).all(dim=1)),
                         ("only zeros", (data == 0).all(dim=1))):
        bad_rows = bad.nonzero().flatten()
        if len(bad_rows):
            shown = ", ".join(map(str, bad_rows[:5].tolist())) + (", ..." if len(bad_rows) > 5 else "")
            raise ValueError(f"{name} hold {problem} in {len(bad_rows)} of {len(vectors)} rows (rows {shown}); "
                             "drop or repair those rows first")


class VectorIndex:
    """What every index shares: input checks, query batching and dropping each query's own id.

    Subclasses implement `_search_batch`.
    """

    backend = ""

    def __init__(self, vectors: torch.Tensor, device: str | torch.device = "cpu") -> None:
        if vectors.dim() != 2:
            raise ValueError(f"vectors must be 2-D (M, d), got shape {tuple(vectors.shape)}")
        check_vectors(vectors, "vectors")
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
        score matrix under `SCORE_BUDGET` entries).
        """
        if queries.dim() != 2:
            raise ValueError(f"queries must be 2-D (N, d), got shape {tuple(queries.shape)}")
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {queries.shape[1]} but the index holds "
                             f"vectors of dimension {self.dim}")
        check_vectors(queries, "queries")
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
    """Exact search with torch: one matrix multiply and a top-k per batch of queries, on any device."""

    backend = "exact"

    def _search_batch(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        # score(q, v) = <q, v>, the cosine similarity for unit vectors; keep the k largest per query
        scores = queries.to(self.device, torch.float32) @ self.vectors.T
        top = scores.topk(k, dim=1)
        return top.values.cpu(), top.indices.cpu()


class FaissIndex(VectorIndex):
    """Exact search with faiss's `IndexFlatIP` (CPU), the library that scales to billions of vectors.

    Needs `pip install faiss-cpu` (the `search` extra).
    """

    backend = "faiss"

    def __init__(self, vectors: torch.Tensor, device: str | torch.device = "cpu") -> None:
        try:
            import faiss
        except ImportError as error:
            raise ImportError(f"{type(self).__name__} needs faiss: `pip install faiss-cpu`, or use "
                              "ExactIndex / make_index(backend='exact')") from error
        if pick_device(str(device)).type != "cpu":
            raise ValueError(f"{type(self).__name__} runs on the cpu, not {device}; use ExactIndex there")
        super().__init__(vectors, "cpu")
        self.index = self._build(faiss)

    def _build(self, faiss):
        index = faiss.IndexFlatIP(self.dim)
        index.add(self.vectors.numpy())
        return index

    def _search_batch(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        # score(q, v) = <q, v>, computed by faiss over the vectors it stores
        query_array = queries.detach().to("cpu", torch.float32).contiguous().numpy()
        scores, ids = self.index.search(query_array, k)
        return torch.from_numpy(scores), torch.from_numpy(ids).to(torch.int64)


class FaissIvfIndex(FaissIndex):
    """Approximate search with faiss's `IndexIVFFlat`: k-means cuts the vectors into `lists` cells, and a
    query scores only the vectors of the `probes` cells whose centroids it is closest to.

    About `probes / lists` of the database is scanned per query, so it is that much faster than exact
    search and misses neighbours that fall in other cells (recall < 1). Where the probed cells hold fewer
    than k vectors, the missing ids are -1. `lists` defaults to `default_lists(M)`; k-means trains on at
    most 40 vectors per cell, drawn with `seed`.
    """

    backend = "faiss-ivf"

    def __init__(self, vectors: torch.Tensor, lists: int | None = None, probes: int = 32, seed: int = 0,
                 device: str | torch.device = "cpu") -> None:
        self.lists = lists if lists is not None else default_lists(len(vectors))
        if not 1 <= self.lists <= len(vectors):
            raise ValueError(f"lists must be between 1 and the number of vectors ({len(vectors)}), "
                             f"got {self.lists}")
        self.seed = seed
        super().__init__(vectors, device)
        self.set_probes(probes)

    def _build(self, faiss):
        self.quantizer = faiss.IndexFlatIP(self.dim)  # kept here: the IVF index only points to it
        index = faiss.IndexIVFFlat(self.quantizer, self.dim, self.lists, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = self.seed
        generator = torch.Generator().manual_seed(self.seed)
        sample = torch.randperm(len(self), generator=generator)[:40 * self.lists]
        index.train(self.vectors[sample].numpy())
        index.add(self.vectors.numpy())
        return index

    def set_probes(self, probes: int) -> None:
        """Scan the `probes` nearest cells per query from now on (more: slower, higher recall)."""
        if not 1 <= probes <= self.lists:
            raise ValueError(f"probes must be between 1 and lists ({self.lists}), got {probes}")
        self.index.nprobe = probes


def default_lists(size: int) -> int:
    """IVF cells for `size` vectors: sqrt(size), but at most size / 39 (k-means in faiss wants 39 training
    vectors per cell) and at least 1. Training time grows with the square of the cells (each of the 39
    vectors per cell is compared with every centroid), so faiss's larger 4 sqrt(size) trains 16 times longer.
    """
    return max(1, min(size // 39, round(size**0.5)))


def faiss_available() -> bool:
    """Whether faiss can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def make_index(vectors: torch.Tensor, backend: str = "auto",
               device: str | torch.device = "auto") -> VectorIndex:
    """An index over `vectors` (M, d): "exact" (torch), "faiss", or "auto".

    "auto" takes faiss when it imports and the device is the cpu, else the exact torch index (a
    GPU matrix multiply beats faiss-cpu).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    device = pick_device(str(device))
    if backend == "auto":
        backend = "faiss" if device.type == "cpu" and faiss_available() else "exact"
    return FaissIndex(vectors, device) if backend == "faiss" else ExactIndex(vectors, device)


def random_unit_vectors(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """`n` random L2-normalised float32 vectors of dimension `dim` (CPU)."""
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=generator), dim=1)


def search_seconds(index: VectorIndex, queries: torch.Tensor, k: int, repeats: int = 3) -> float:
    """Best of `repeats` wall times (after a warm-up) of searching `queries` for their k best."""
    index.search(queries, k)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        index.search(queries, k)  # results come back on the CPU, so GPU work is finished here
        best = min(best, time.perf_counter() - start)
    return best


def recall_at_k(found: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over queries of |found_i ∩ truth_i| / k: the share of the true k nearest that a search found.

    `found` and `truth` are (N, k) ids.
    """
    if found.shape != truth.shape:
        raise ValueError(f"found and truth must have the same shape, got {tuple(found.shape)} and "
                         f"{tuple(truth.shape)}")
    hits = (found[:, :, None] == truth[:, None, :]).any(dim=2) & (found >= 0)
    return hits.float().mean().item()


def benchmark(size: int, dim: int = 64, n_queries: int = 1000, k: int = 10, backend: str = "auto",
              device: str = "auto", repeats: int = 3, seed: int = 0) -> dict:
    """Best of `repeats` timings (after a warm-up) of searching `n_queries` random queries.

    Returns {"size", "dim", "queries", "k", "backend", "device", "memory_mb", "seconds",
    "queries_per_second"}.
    """
    generator = torch.Generator().manual_seed(seed)
    index = make_index(random_unit_vectors(size, dim, generator), backend, device)
    queries = random_unit_vectors(n_queries, dim, generator)
    best = search_seconds(index, queries, k, repeats)
    memory_mb = index.vectors.numel() * index.vectors.element_size() / 1e6
    return {"size": size, "dim": dim, "queries": n_queries, "k": k, "backend": index.backend,
            "device": str(index.device), "memory_mb": memory_mb, "seconds": best,
            "queries_per_second": n_queries / best}


def compare_indexes(size: int, dim: int = 64, n_queries: int = 1000, k: int = 10,
                    probes: Sequence[int] = (16, 128), lists: int | None = None, device: str = "auto",
                    repeats: int = 2, seed: int = 0) -> list[dict]:
    """Exact torch search, faiss flat and faiss IVF (one row per `probes`, at most all the cells) on `size`
    random unit vectors.

    Each row: {"index", "size", "build_seconds", "queries_per_second", "recall"}, recall@k measured
    against the exact torch search (the IVF rows share one build: k-means training and adding). The
    faiss rows are left out where faiss is not installed.
    """
    generator = torch.Generator().manual_seed(seed)
    vectors = random_unit_vectors(size, dim, generator)
    queries = random_unit_vectors(n_queries, dim, generator)

    def built(make) -> tuple[VectorIndex, float]:
        start = time.perf_counter()
        return make(), time.perf_counter() - start

    def row(name: str, index: VectorIndex, build_seconds: float, truth: torch.Tensor) -> dict:
        seconds = search_seconds(index, queries, k, repeats)
        recall = recall_at_k(index.search(queries, k)[1], truth)
        return {"index": name, "size": size, "build_seconds": build_seconds,
                "queries_per_second": n_queries / seconds, "recall": recall}

    exact, build_seconds = built(lambda: ExactIndex(vectors, device))
    truth = exact.search(queries, k)[1]
    rows = [row(f"exact torch ({exact.device.type})", exact, build_seconds, truth)]
    del exact
    if faiss_available():
        flat, build_seconds = built(lambda: FaissIndex(vectors))
        rows.append(row("faiss flat", flat, build_seconds, truth))
        del flat
        ivf, build_seconds = built(lambda: FaissIvfIndex(vectors, lists, probes[0], seed))
        for count in dict.fromkeys(min(count, ivf.lists) for count in probes):  # one trained index
            ivf.set_probes(count)
            rows.append(row(f"faiss IVF{ivf.lists} probes {count}", ivf, build_seconds, truth))
    return rows


def peak_memory_gb() -> float:
    """The most memory this process has held so far (resident set), in GB."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1e9 if sys.platform == "darwin" else 1e6)  # bytes on macOS, kilobytes on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tutorlib.search", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--probes", type=int, nargs="+", default=[16, 128],
                        help="IVF cells scanned per query (at most all of them)")
    parser.add_argument("--lists", type=int, default=None,
                        help="IVF cells (default: sqrt(size), at most size / 39)")
    parser.add_argument("--device", default="auto", help="device of the exact torch search")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of torch and faiss (0: every core; 1 when other jobs share the cores)")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    if faiss_available():
        import faiss

        faiss.omp_set_num_threads(threads)
    print(f"torch {torch.__version__}, {threads} threads, random unit vectors of dimension "
          f"{args.dim}, {args.queries} queries, k {args.k}" + ("" if faiss_available() else
          "; faiss is not installed (pip install faiss-cpu): exact torch search only"))
    print(f"{'size':>10} {'index':<22} {'build s':>8} {'queries/s':>10} {f'recall@{args.k}':>10}")
    for size in args.sizes:
        for row in compare_indexes(size, args.dim, args.queries, args.k, args.probes, args.lists, args.device):
            print(f"{size:>10} {row['index']:<22} {row['build_seconds']:>8.2f} "
                  f"{row['queries_per_second']:>10.0f} {row['recall']:>10.3f}")
    print(f"peak memory of this process: {peak_memory_gb():.2f} GB")


if __name__ == "__main__":
    main()
