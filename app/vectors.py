"""Choose, save and load the FAISS index over key vectors.

Vectors are unit length, so inner product is cosine similarity. Below
`EXACT_BELOW` rows the index is exact (`IndexFlatIP`): a scan of 50,000 rows
of 384 floats takes a few milliseconds, less than encoding the question.
From there on an HNSW graph answers in far less time than a scan, at a
recall@10 against exact search that `benchmarks/scale.py` measures (0.99 or
more on clustered vectors with the parameters below; vectors without any
structure need a wider search). The choice and its parameters are stored in
the manifest, and loading applies them again.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm.auto import tqdm

from .errors import IndexStateError

log = logging.getLogger(__name__)

EXACT_BELOW = 50_000
ADD_BLOCK = 20_000


@dataclass(frozen=True)
class HnswSettings:
    """Parameters of the HNSW graph used above the exact threshold.

    Attributes:
        neighbours: Links per node (FAISS `M`). Defaults to 32.
        ef_construction: Candidates kept while linking. Defaults to 80.
        ef_search: Candidates kept while searching; a search for more rows
            than this keeps that many instead. Defaults to 128.
    """

    neighbours: int = 32
    ef_construction: int = 80
    ef_search: int = 128


def make_vector_index(
    vectors: np.ndarray,
    exact_below: int = EXACT_BELOW,
    hnsw: HnswSettings | None = None,
    show_progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Build the FAISS index that suits the number of vectors.

    Args:
        vectors: Unit rows, float32, shape (n, dim).
        exact_below: Row count under which search stays exact. Defaults to
            `EXACT_BELOW`.
        hnsw: Graph parameters above it. Defaults to `HnswSettings()`.
        show_progress: Progress bar while filling a graph. Defaults to False.

    Returns:
        The filled index and a description for the manifest: `type` ("flat"
        or "hnsw"), `metric`, `rows`, and for a graph its parameters.
    """
    count, dimension = vectors.shape
    if count < exact_below:
        index = faiss.IndexFlatIP(dimension)
        info: dict[str, Any] = {"type": "flat", "metric": "inner_product"}
    else:
        index, info = empty_hnsw(dimension, hnsw or HnswSettings())
    info["rows"] = int(count)
    add_rows(index, vectors, show_progress)
    log.info("vector index: %s over %d rows", info["type"], count)
    return index, info


def empty_hnsw(dimension: int, settings: HnswSettings) -> tuple[Any, dict[str, Any]]:
    """An empty inner-product HNSW index and its manifest description."""
    index = faiss.IndexHNSWFlat(
        dimension, settings.neighbours, faiss.METRIC_INNER_PRODUCT
    )
    index.hnsw.efConstruction = settings.ef_construction
    index.hnsw.efSearch = settings.ef_search
    return index, {"type": "hnsw", "metric": "inner_product", **asdict(settings)}


def add_rows(index: Any, vectors: np.ndarray, show_progress: bool = False) -> None:
    """Add rows in blocks of `ADD_BLOCK`, with a progress bar when asked."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    with tqdm(
        total=len(vectors), unit="row", desc="index", disable=not show_progress
    ) as bar:
        for start in range(0, len(vectors), ADD_BLOCK):
            block = vectors[start : start + ADD_BLOCK]
            index.add(block)
            bar.update(len(block))


def write_vector_index(index: Any, path: Path) -> None:
    """Write a FAISS index to `path`."""
    faiss.write_index(index, str(path))


def read_vector_index(path: Path, info: dict[str, Any]) -> Any:
    """Read a FAISS index and apply the search parameters in `info`.

    Raises:
        IndexStateError: The file holds another kind of index than `info`
            names.
    """
    index = faiss.read_index(str(path))
    # Questions come one at a time: waking a second thread for one query
    # costs far more than it saves while the encoder's threads still spin
    # (10,000 rows: 0.6 ms on one thread, 30-40 ms on two, measured).
    faiss.omp_set_num_threads(1)
    kind = info.get("type")
    if kind == "hnsw":
        if not hasattr(index, "hnsw"):
            raise IndexStateError(f"{path} is not the HNSW index the manifest names")
        index.hnsw.efSearch = int(info.get("ef_search", HnswSettings.ef_search))
    return index
