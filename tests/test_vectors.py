"""Vector index choice: exact below the threshold, an HNSW graph above it,
with its parameters in the manifest and a recall close to exact search."""

from __future__ import annotations

import numpy as np
import pytest

from app.errors import IndexStateError
from app.vectors import (
    HnswSettings,
    make_vector_index,
    read_vector_index,
    write_vector_index,
)


def unit_rows(count: int, seed: int = 0, dimension: int = 64) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dimension))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("count", "kind"), [(99, "flat"), (100, "hnsw"), (500, "hnsw")]
)
def test_index_kind_follows_row_count(count, kind):
    index, info = make_vector_index(unit_rows(count), exact_below=100)
    assert info["type"] == kind
    assert info["rows"] == count == index.ntotal


def test_manifest_info_names_graph_parameters():
    settings = HnswSettings(neighbours=16, ef_construction=40, ef_search=64)
    _, info = make_vector_index(unit_rows(200), exact_below=10, hnsw=settings)
    assert info == {
        "type": "hnsw",
        "metric": "inner_product",
        "neighbours": 16,
        "ef_construction": 40,
        "ef_search": 64,
        "rows": 200,
    }


def test_flat_index_finds_each_row_itself():
    rows = unit_rows(300)
    index, _ = make_vector_index(rows)
    sims, found = index.search(rows[:20], 1)
    assert found[:, 0].tolist() == list(range(20))
    assert np.allclose(sims[:, 0], 1.0, atol=1e-5)


def test_graph_recall_at_10_against_exact_search():
    rows, questions = unit_rows(3000, seed=1), unit_rows(100, seed=2)
    exact, _ = make_vector_index(rows)
    graph, _ = make_vector_index(rows, exact_below=1000)
    truth = exact.search(questions, 10)[1]
    found = graph.search(questions, 10)[1]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= 0.95


def test_reading_applies_ef_search_from_manifest(tmp_path):
    index, info = make_vector_index(unit_rows(200), exact_below=10)
    write_vector_index(index, tmp_path / "vectors.faiss")
    loaded = read_vector_index(tmp_path / "vectors.faiss", {**info, "ef_search": 77})
    assert loaded.hnsw.efSearch == 77
    assert loaded.ntotal == 200


def test_reading_refuses_a_flat_file_named_hnsw(tmp_path):
    index, _ = make_vector_index(unit_rows(50))
    write_vector_index(index, tmp_path / "vectors.faiss")
    with pytest.raises(IndexStateError, match="vectors.faiss"):
        read_vector_index(tmp_path / "vectors.faiss", {"type": "hnsw"})
