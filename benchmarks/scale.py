"""How the vector index and the encoder scale past the shipped FAQ.

For each corpus size, synthetic unit vectors (one per passage, 384 floats,
drawn around random topic centres so that neighbours exist as they do for
real text; `--data uniform` draws them without structure) go into the index
that `app.vectors.make_vector_index` would choose, and into an exact index
for reference. Printed per size: build seconds, bytes per passage, search
p50 for one question, and recall@10 against exact search for each HNSW
`efSearch`. Real passages of the shipped FAQ go through the encoder to give
passages per second, from which the embedding time of each size follows.

Not part of CI. Long graph builds show progress and save a checkpoint every
`--checkpoint` rows under `--work`; running the same command again resumes
there, and sizes already measured are read back from their result file.

    python benchmarks/scale.py --sizes 10000 100000
    python benchmarks/scale.py --sizes 1000000 --work /tmp/faq-scale
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
from pathlib import Path

import faiss
import numpy as np
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.vectors import (  # noqa: E402
    EXACT_BELOW,
    HnswSettings,
    add_rows,
    empty_hnsw,
)

log = logging.getLogger("scale")

DIMENSION = 384
BLOCK = 50_000


def synthetic(
    size: int, start: int, count: int, kind: str, seed: int, stream: int = 0
) -> np.ndarray:
    """Rows `start` to `start + count` of a synthetic corpus of `size` unit
    vectors; each block of `BLOCK` rows has its own seed, so any block can be
    made again without the others (which makes restarts cheap)."""
    centres = _centres(size, seed)
    parts = []
    for first in range(start - start % BLOCK, start + count, BLOCK):
        rng = np.random.default_rng([seed, stream, first])
        rows = rng.standard_normal((BLOCK, DIMENSION), dtype=np.float32)
        if kind == "clustered":
            owner = rng.integers(0, len(centres), BLOCK)
            rows = centres[owner] + 0.6 * rows / np.sqrt(DIMENSION)
        parts.append(rows)
    block = np.concatenate(parts)[start % BLOCK :][:count]
    return block / np.linalg.norm(block, axis=1, keepdims=True)


def _centres(size: int, seed: int) -> np.ndarray:
    # About 50 passages per topic, as in a large help centre.
    rng = np.random.default_rng([seed, 2, size])
    centres = rng.standard_normal((max(1, size // 50), DIMENSION), dtype=np.float32)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def queries(count: int, size: int, kind: str, seed: int) -> np.ndarray:
    """Questions near the corpus's topics but not in it."""
    return synthetic(size, 0, count, kind, seed, stream=1)


def build_graph(size: int, args: argparse.Namespace) -> tuple[faiss.Index, float]:
    """Fill the HNSW graph, resuming from the last checkpoint under `--work`."""
    path = Path(args.work) / f"hnsw-{args.data}-{size}.faiss"
    settings = HnswSettings(args.neighbours, args.ef_construction)
    marker = path.with_suffix(".seconds")
    index, spent = _resume(path), 0.0
    if index is None:
        index, _ = empty_hnsw(DIMENSION, settings)
    elif marker.is_file():
        spent = float(marker.read_text())
    with tqdm(total=size, initial=index.ntotal, unit="row", desc=f"hnsw {size}") as bar:
        while index.ntotal < size:
            count = min(args.checkpoint, size - index.ntotal)
            rows = synthetic(size, index.ntotal, count, args.data, args.seed)
            started = time.perf_counter()
            add_rows(index, rows)
            spent += time.perf_counter() - started
            faiss.write_index(index, str(path))
            marker.write_text(str(spent))
            bar.update(count)
    return index, spent


def _resume(path: Path) -> faiss.Index | None:
    if not path.is_file():
        return None
    log.info("resuming %s", path)
    return faiss.read_index(str(path))


def search_p50(index: faiss.Index, questions: np.ndarray, k: int) -> float:
    """Median milliseconds of one single-question search, on one thread as
    the product searches (see `app.vectors.read_vector_index`)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    times = []
    for row in questions:
        started = time.perf_counter()
        index.search(row.reshape(1, -1), k)
        times.append(time.perf_counter() - started)
    faiss.omp_set_num_threads(threads)
    return round(float(np.median(times)) * 1000, 3)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k rows that the approximate search found."""
    hits = sum(len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth))
    return round(hits / (k * len(truth)), 4)


def exact(size: int, args: argparse.Namespace) -> tuple[faiss.Index, float]:
    """The flat index over the same rows, filled block by block."""
    index = faiss.IndexFlatIP(DIMENSION)
    started = time.perf_counter()
    for start in tqdm(range(0, size, BLOCK), desc=f"flat {size}", unit="block"):
        index.add(
            synthetic(size, start, min(BLOCK, size - start), args.data, args.seed)
        )
    return index, time.perf_counter() - started


def measure(size: int, args: argparse.Namespace) -> dict:
    """Every figure for one corpus size."""
    asked = queries(args.queries, size, args.data, args.seed)
    flat, flat_seconds = exact(size, args)
    truth = flat.search(asked, 10)[1]
    figures = {
        "passages": size,
        "data": args.data,
        "chosen": "flat" if size < EXACT_BELOW else "hnsw",
        "flat": {
            "build_s": round(flat_seconds, 2),
            "bytes_per_passage": DIMENSION * 4,
            "search_p50_ms": search_p50(flat, asked[:100], 10),
            "search_p50_ms_k256": search_p50(flat, asked[:100], 256),
        },
    }
    del flat
    graph, graph_seconds = build_graph(size, args)
    path = Path(args.work) / f"hnsw-{args.data}-{size}.faiss"
    hnsw = {
        "neighbours": args.neighbours,
        "ef_construction": args.ef_construction,
        "build_s": round(graph_seconds, 2),
        "bytes_per_passage": round(path.stat().st_size / size, 1),
        "by_ef_search": {},
    }
    for ef in args.ef_search:
        graph.hnsw.efSearch = ef
        found = graph.search(asked, 10)[1]
        # The product reads 256 rows per question, which widens the search.
        wide = graph.search(asked, 256)[1]
        hnsw["by_ef_search"][ef] = {
            "recall_at_10": recall_at(found, truth),
            "recall_at_10_k256": recall_at(wide, truth),
            "search_p50_ms": search_p50(graph, asked[:100], 10),
            "search_p50_ms_k256": search_p50(graph, asked[:100], 256),
        }
    figures["hnsw"] = hnsw
    figures["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    return figures


def encoder_rate(count: int) -> dict:
    """Passages per second of the bundled encoder on the shipped FAQ's
    passages (repeated up to `count`)."""
    from app.chunk import ChunkSettings, chunk_entries
    from app.corpus import load_corpus
    from app.embed import Embedder

    embedder = Embedder()
    corpus = Path(__file__).resolve().parent.parent / "corpus" / "seller_help_faq.txt"
    entries = load_corpus(corpus)
    settings = ChunkSettings(max_tokens=embedder.max_seq_length)
    texts = [
        p.key_text for p in chunk_entries(entries, embedder.count_tokens, settings)
    ]
    texts = (texts * (count // len(texts) + 1))[:count]
    started = time.perf_counter()
    embedder.encode(texts, show_progress=True)
    rate = count / (time.perf_counter() - started)
    return {"passages": count, "passages_per_second": round(rate, 1)}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--data", choices=("clustered", "uniform"), default="clustered")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--neighbours", type=int, default=HnswSettings.neighbours)
    parser.add_argument(
        "--ef-construction", type=int, default=HnswSettings.ef_construction
    )
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[16, 32, 64, 128, 256]
    )
    parser.add_argument("--checkpoint", type=int, default=200_000)
    parser.add_argument("--encode", type=int, default=1000, help="0 skips it")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--work", default=os.environ.get("TMPDIR", "/tmp") + "/faq-scale"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    args = parse(argv)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    print(f"faiss threads: {faiss.omp_get_max_threads()}, cpus: {os.cpu_count()}")
    for size in args.sizes:
        done = Path(args.work) / f"result-{args.data}-{size}.json"
        if done.is_file():
            figures = json.loads(done.read_text())
        else:
            figures = measure(size, args)
            done.write_text(json.dumps(figures))
        print(json.dumps(figures), flush=True)
    if args.encode:
        rate = encoder_rate(args.encode)
        per_second = rate["passages_per_second"]
        hours = {size: round(size / per_second / 3600, 2) for size in args.sizes}
        print(json.dumps({"encoder": rate, "embedding_hours_by_size": hours}))


if __name__ == "__main__":
    main()
