"""Would a quantised encoder be faster without costing retrieval quality?

Builds the shipped FAQ's index twice in temporary folders, once with the
bundled all-MiniLM-L6-v2 as is and once with its linear layers quantised to
int8 (PyTorch dynamic quantisation, CPU), then prints for each: one-question
encode p50, passages per second, build seconds, and the `app eval` figures
on the labelled seller questions. A backend is worth adopting only when
every eval figure stays within 0.01 of the default.

    python benchmarks/encoder.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.bench import load_questions  # noqa: E402
from app.bot import DEFAULT_CORPUS, FaqBot  # noqa: E402
from app.embed import Embedder  # noqa: E402
from app.evaluate import evaluate  # noqa: E402
from app.index import build_index, load_index  # noqa: E402

COMPARED = ("hit@1", "mrr@10", "ndcg@10", "recall@5", "refused_uncovered_rate")


def quantised(embedder: Embedder) -> Embedder:
    """The same embedder with int8 weights in every linear layer."""
    import torch

    embedder.model = torch.ao.quantization.quantize_dynamic(
        embedder.model, {torch.nn.Linear}, dtype=torch.qint8
    )
    return embedder


def speed(embedder: Embedder, questions: list[str], passages: list[str]) -> dict:
    """One-question encode p50 (ms) and passages per second."""
    embedder.encode(questions[:3])
    times = []
    for question in questions:
        started = time.perf_counter()
        embedder.encode([question])
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    embedder.encode(passages)
    rate = len(passages) / (time.perf_counter() - started)
    return {
        "encode_p50_ms": round(float(np.median(times)) * 1000, 2),
        "passages_per_second": round(rate, 1),
    }


def measure(embedder: Embedder, folder: Path) -> dict:
    """Build, time and evaluate one encoder."""
    started = time.perf_counter()
    build_index(DEFAULT_CORPUS, folder, embedder, show_progress=False)
    built = time.perf_counter() - started
    bot = FaqBot(load_index(folder), embedder)
    figures = evaluate(bot)
    passages = [p.key_text for p in bot.index.passages]
    return {
        "build_s": round(built, 2),
        **speed(embedder, load_questions(limit=60), passages),
        **{name: figures.get(name) for name in COMPARED},
    }


def main() -> None:
    rows = {}
    with tempfile.TemporaryDirectory(prefix="faq-encoder-") as folder:
        rows["default"] = measure(Embedder(), Path(folder) / "default")
        rows["int8"] = measure(quantised(Embedder()), Path(folder) / "int8")
    worst = max(abs(rows["int8"][n] - rows["default"][n]) for n in COMPARED)
    rows["largest_eval_change"] = round(worst, 4)
    rows["adopt_int8"] = worst <= 0.01
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
