"""Choose, save and load the FAISS index over key vectors.

Vectors are unit length, so inner product is cosine similarity. Below
`EXACT_BELOW` rows the index is exact (`IndexFlatIP`); above it, an HNSW graph
answers in far less time at a recall the scale benchmark measures. The choice
and its parameters are stored in the manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import faiss
import numpy as np

log = logging.getLogger(__name__)

EXACT_BELOW = 50_000
HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def make_vector_index(
    vectors: np.ndarray, exact_below: int = EXACT_BELOW
) -> tuple[Any, dict[str, Any]]:
    """Build the FAISS index that suits the number of vectors.

    Args:
        vectors: Unit rows, float32, shape (n, dim).
        exact_below: Row count under which search stays exact. Defaults to
            `EXACT_BELOW`.

    Returns:
        The filled index and a description for the manifest (`type` and
        its parameters).
    """
    count, dimension = vectors.shape
    if count < exact_below:
        index = faiss.IndexFlatIP(dimension)
        info: dict[str, Any] = {"type": "flat", "metric": "inner_product"}
    else:
        index = faiss.IndexHNSWFlat(
            dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT
        )
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        info = {
            "type": "hnsw",
            "metric": "inner_product",
            "neighbours": HNSW_NEIGHBOURS,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "ef_search": HNSW_EF_SEARCH,
        }
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    log.info("vector index: %s over %d rows", info["type"], count)
    return index, info


def write_vector_index(index: Any, path: Path) -> None:
    """Write a FAISS index to `path`."""
    faiss.write_index(index, str(path))


def read_vector_index(path: Path, info: dict[str, Any]) -> Any:
    """Read a FAISS index and apply the search parameters in `info`."""
    index = faiss.read_index(str(path))
    if info.get("type") == "hnsw":
        index.hnsw.efSearch = int(info.get("ef_search", HNSW_EF_SEARCH))
    return index
