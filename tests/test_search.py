import pytest
import torch

from tutorlib import search
from tutorlib.search import (ExactIndex, FaissIndex, FaissIvfIndex, benchmark, compare_indexes, default_lists,
                             make_index, peak_memory_gb, random_unit_vectors, recall_at_k)

# four unit vectors in 2-D at 0, 45, 90 and 180 degrees
SQUARE = torch.tensor([[1.0, 0.0], [0.5**0.5, 0.5**0.5], [0.0, 1.0], [-1.0, 0.0]])


def random_data(n_database: int = 300, n_queries: int = 37, dim: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return (random_unit_vectors(n_database, dim, generator),
            random_unit_vectors(n_queries, dim, generator))


def test_hand_computed_ranking():
    index = ExactIndex(SQUARE)
    assert len(index) == 4 and index.dim == 2
    scores, ids = index.search(torch.tensor([[1.0, 0.0], [-0.6, 0.8]]), k=3)
    # <q, v> for q = (1, 0): 1, 0.707, 0, -1; for q = (-0.6, 0.8): -0.6, 0.141, 0.8, 0.6
    assert ids.tolist() == [[0, 1, 2], [2, 3, 1]]
    assert torch.allclose(scores, torch.tensor([[1.0, 0.5**0.5, 0.0], [0.8, 0.6, 0.2 * 0.5**0.5]]))
    assert scores.dtype == torch.float32 and ids.dtype == torch.int64
    assert scores.device.type == "cpu" and ids.device.type == "cpu"


def test_exclusion_drops_only_the_source_and_keeps_k():
    index = ExactIndex(SQUARE)
    queries = torch.stack([SQUARE[0], SQUARE[2], torch.tensor([-0.6, 0.8]), SQUARE[0]])
    scores, ids = index.search(queries, k=2, exclude=[0, -1, 3, 3])
    # dropped: the best hit, nothing, the second hit, a hit outside the top 2 (nothing moves)
    assert ids.tolist() == [[1, 2], [2, 1], [2, 1], [0, 1]]
    assert torch.allclose(scores[0], torch.tensor([0.5**0.5, 0.0]))
    assert torch.allclose(scores[2], torch.tensor([0.8, 0.2 * 0.5**0.5]))
    sources = torch.tensor([0, 2, 1, 3])
    _, ids = index.search(SQUARE, k=3, exclude=sources)
    assert ids.shape == (4, 3)
    assert all(source not in row for source, row in zip(sources.tolist(), ids.tolist()))


def test_batched_search_equals_one_shot_brute_force():
    database, queries = random_data()
    expected = torch.topk(queries @ database.T, 7, dim=1)
    scores, ids = ExactIndex(database).search(queries, 7, batch=5)
    assert torch.equal(ids, expected.indices)
    assert torch.allclose(scores, expected.values, atol=1e-6)


def test_batched_exclusion_equals_brute_force_with_the_source_masked():
    database, _ = random_data()
    sources = torch.arange(0, 300, 7)
    scores = database[sources] @ database.T
    scores[torch.arange(len(sources)), sources] = -float("inf")
    expected = torch.topk(scores, 5, dim=1)
    _, ids = ExactIndex(database).search(database[sources], 5, exclude=sources, batch=8)
    assert torch.equal(ids, expected.indices)


def test_faiss_matches_exact():
    pytest.importorskip("faiss")
    database, queries = random_data()
    exact = ExactIndex(database).search(queries, 6, exclude=torch.arange(37), batch=10)
    approximate = FaissIndex(database).search(queries, 6, exclude=torch.arange(37), batch=10)
    assert torch.equal(exact[1], approximate[1])
    assert torch.allclose(exact[0], approximate[0], atol=1e-5)


def test_make_index_backends(monkeypatch):
    assert isinstance(make_index(SQUARE, "exact", "cpu"), ExactIndex)
    monkeypatch.setattr(search, "faiss_available", lambda: False)
    assert isinstance(make_index(SQUARE, "auto", "cpu"), ExactIndex)
    with pytest.raises(ValueError, match=r"unknown backend 'annoy'.*'auto', 'exact', 'faiss'"):
        make_index(SQUARE, "annoy")


def test_faiss_missing_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        FaissIndex(SQUARE)


def test_input_errors():
    with pytest.raises(ValueError, match="vectors must be 2-D"):
        ExactIndex(torch.ones(4))
    index = ExactIndex(SQUARE)
    with pytest.raises(ValueError, match="queries must be 2-D"):
        index.search(torch.ones(2), 1)
    with pytest.raises(ValueError, match="queries have dimension 3 but the index holds vectors "
                                         "of dimension 2"):
        index.search(torch.ones(1, 3), 1)
    for k in (0, 5):
        with pytest.raises(ValueError, match=f"k must be between 1 and 4 .* got {k}"):
            index.search(SQUARE, k)
    with pytest.raises(ValueError, match="k must be between 1 and 3 .*excluded.* got 4"):
        index.search(SQUARE, 4, exclude=[0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"one id per query \(4\), got shape \(3,\)"):
        index.search(SQUARE, 1, exclude=[0, 1, 2])
    with pytest.raises(ValueError, match=r"-1 \(none\) or in \[0, 3\], got values from 0 to 4"):
        index.search(SQUARE, 1, exclude=[0, 1, 2, 4])
    with pytest.raises(ValueError, match="batch must be at least 1"):
        index.search(SQUARE, 1, batch=0)


def test_benchmark_reports_consistent_fields():
    result = benchmark(500, dim=8, n_queries=20, k=3, backend="exact", device="cpu", repeats=2)
    assert result["size"] == 500 and result["queries"] == 20 and result["k"] == 3
    assert result["backend"] == "exact" and result["device"] == "cpu"
    assert result["memory_mb"] == pytest.approx(500 * 8 * 4 / 1e6)
    assert result["seconds"] > 0
    assert result["queries_per_second"] == pytest.approx(20 / result["seconds"])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_vectors_are_refused(bad):
    database = SQUARE.clone()
    database[2, 1] = bad
    with pytest.raises(ValueError, match=r"vectors hold NaN or inf in 1 of 4 rows \(rows 2\)"):
        ExactIndex(database)
    queries = torch.ones(7, 2)
    queries[[1, 6], 0] = bad
    with pytest.raises(ValueError, match=r"queries hold NaN or inf in 2 of 7 rows \(rows 1, 6\)"):
        ExactIndex(SQUARE).search(queries, 2)


def test_zero_vectors_are_refused():
    # A zero row has no direction: every score would be 0, a silent tie, for a vector that cannot be normalised.
    database = SQUARE.clone()
    database[1] = 0.0
    with pytest.raises(ValueError, match=r"vectors hold only zeros in 1 of 4 rows \(rows 1\)"):
        ExactIndex(database)
    with pytest.raises(ValueError, match=r"queries hold only zeros in 1 of 2 rows \(rows 0\)"):
        ExactIndex(SQUARE).search(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), 2)


def test_many_non_finite_rows_are_summarised():
    database = torch.full((9, 3), float("nan"))
    with pytest.raises(ValueError, match=r"in 9 of 9 rows \(rows 0, 1, 2, 3, 4, \.\.\.\)"):
        ExactIndex(database)


def test_recall_counts_the_true_neighbours_found():
    found = torch.tensor([[1, 2, 3], [4, 5, -1]])
    truth = torch.tensor([[3, 2, 9], [4, 5, 6]])
    assert recall_at_k(found, truth) == pytest.approx(2 / 3)  # 2 of 3 in each row; -1 finds nothing
    assert recall_at_k(truth, truth) == 1.0
    with pytest.raises(ValueError, match=r"same shape, got \(2, 3\) and \(2, 2\)"):
        recall_at_k(found, truth[:, :2])


def test_default_lists_is_the_square_root_with_39_vectors_per_list():
    assert [default_lists(n) for n in (1, 100, 10_000, 1_000_000)] == [1, 2, 100, 1000]


def test_ivf_scanning_every_cell_is_exact_and_fewer_cells_miss_some():
    pytest.importorskip("faiss")
    database, queries = random_data(n_database=2000, n_queries=50, dim=8)
    exact = ExactIndex(database).search(queries, 5, exclude=torch.arange(50))
    ivf = FaissIvfIndex(database, lists=20, probes=20)
    everything = ivf.search(queries, 5, exclude=torch.arange(50))
    assert torch.equal(everything[1], exact[1])
    assert torch.allclose(everything[0], exact[0], atol=1e-5)
    ivf.set_probes(1)
    one_cell = ivf.search(queries, 5)[1]
    assert 0.2 < recall_at_k(one_cell, ExactIndex(database).search(queries, 5)[1]) < 1.0
    again = FaissIvfIndex(database, lists=20, probes=1).search(queries, 5)[1]
    assert torch.equal(again, one_cell)  # same seed, same cells


def test_ivf_input_errors():
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match=r"lists must be between 1 and the number of vectors \(4\), got 5"):
        FaissIvfIndex(SQUARE, lists=5)
    ivf = FaissIvfIndex(SQUARE, lists=2, probes=1)
    for probes in (0, 3):
        with pytest.raises(ValueError, match=f"probes must be between 1 and lists \\(2\\), got {probes}"):
            ivf.set_probes(probes)


def test_faiss_indexes_refuse_non_finite_vectors_too():
    pytest.importorskip("faiss")
    database = SQUARE.clone()
    database[0, 0] = float("nan")
    for make in (FaissIndex, FaissIvfIndex):
        with pytest.raises(ValueError, match="vectors hold NaN or inf in 1 of 4 rows"):
            make(database)


def test_comparison_rows():
    pytest.importorskip("faiss")
    rows = compare_indexes(1000, dim=8, n_queries=40, k=5, probes=(1, 25, 99), device="cpu", repeats=1)
    # sqrt(1000) = 32 cells, but at most 1000 / 39 = 25; 99 probes are cut to all 25 cells, listed once
    assert [row["index"] for row in rows] == ["exact torch (cpu)", "faiss flat", "faiss IVF25 probes 1",
                                              "faiss IVF25 probes 25"]
    assert [row["recall"] for row in rows[:2]] == [1.0, 1.0] and rows[3]["recall"] == 1.0
    assert rows[2]["recall"] < 1.0
    assert rows[2]["build_seconds"] == rows[3]["build_seconds"] > 0
    assert all(row["size"] == 1000 and row["queries_per_second"] > 0 for row in rows)
    assert peak_memory_gb() > 0


def test_command_line_prints_one_row_per_index(capsys):
    threads = torch.get_num_threads()
    try:
        search.main(["--sizes", "400", "--dim", "8", "--queries", "20", "--k", "3", "--probes", "2", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.splitlines()
    assert "1 threads, random unit vectors of dimension 8, 20 queries, k 3" in lines[0]
    assert lines[1].split() == ["size", "index", "build", "s", "queries/s", "recall@3"]
    rows = [line.split() for line in lines[2:-1]]
    names = ["exact", "faiss", "faiss"] if search.faiss_available() else ["exact"]
    assert [row[1] for row in rows] == names and all(row[0] == "400" for row in rows)
    assert lines[-1].startswith("peak memory of this process:")
