"""Measure answer speed against the floor the encoder sets on this machine.

Every figure is paired with its floor, measured in the same run: a question's
answer time against one bare `SentenceTransformer.encode` of it, and the time
from process start to the first answer against a bare process that only
imports sentence-transformers, loads the model and encodes one question.
Floor and product runs alternate, so a busy machine slows both alike.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .bot import FaqBot
from .embed import resolve_model
from .errors import QuestionError

log = logging.getLogger(__name__)

EVAL_SET = Path(__file__).resolve().parent.parent / "corpus" / "eval"
EVAL_FILE = EVAL_SET / "seller_help_eval.jsonl"

# Used when the labelled set is missing: questions sellers ask.
BUILT_IN_QUESTIONS = (
    "How do I change my payout bank account?",
    "Can a sub-account set up the payout account?",
    "Why was my product rejected in review?",
    "How long does product review take?",
    "How do I leave a platform promotion?",
    "Can I exit an activity after my product was approved?",
    "Where can I see my store rating?",
    "How is the store score calculated?",
    "What happens if my shop is blacklisted?",
    "How do I appeal a penalty?",
    "How do I add a new sub-account for my staff?",
    "Can I limit what a sub-account is allowed to do?",
    "How do I change the shipping template?",
    "What is the deadline for shipping an order?",
    "How do I handle a return request?",
    "Who pays for return shipping?",
    "When will I receive my money after an order?",
    "Why is my payout on hold?",
    "How do I update my company documents?",
    "How can I change the store name?",
    "How do I list a product in several categories?",
    "Why can't I edit the price of my product?",
    "How do I join a flash sale?",
    "What fees does the platform charge?",
    "How do I download my sales report?",
    "How do I contact seller support?",
    "Can I sell used goods?",
    "How do I set up a discount coupon?",
    "What do I do when a buyer opens a dispute?",
    "How do I close my store?",
    "How do I change my login phone number?",
    "What if I forgot my password?",
    "How do I print a shipping label?",
    "Can I ship with my own courier?",
    "How do I mark an item out of stock?",
    "How do I reply to a buyer review?",
    "What counts as a prohibited product?",
    "How do I verify my identity?",
    "Why did my order get cancelled automatically?",
    "How do I change the product images?",
)


def load_questions(path: Path | None = None, limit: int | None = None) -> list[str]:
    """Distinct questions to time.

    Args:
        path: JSON Lines with a `query` field. Defaults to the labelled seller
            questions, or the built-in list when that file is missing.
        limit: Keep at most this many. Defaults to all.
    """
    path = path or EVAL_FILE
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        questions = [row["query"] for row in rows if row.get("query")]
    else:
        questions = list(BUILT_IN_QUESTIONS)
    questions = list(dict.fromkeys(questions))
    return questions[:limit] if limit else questions


def percentiles(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 of durations, in milliseconds."""
    values = np.asarray(seconds, dtype=np.float64) * 1000
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p99": round(float(np.percentile(values, 99)), 2),
    }


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def answer_latency(bot: FaqBot, questions: list[str]) -> dict[str, Any]:
    """Per-question time of a bare encode (the floor) and of `FaqBot.ask`.

    The cache is cleared first and the questions are distinct, so every
    `ask` encodes. The same questions asked again show the cache.
    """
    model = bot.embedder.model

    def floor(question: str) -> None:
        model.encode([question], convert_to_numpy=True, normalize_embeddings=True)

    for question in questions[:3]:  # first calls pay for lazy set-up
        floor(question)
        bot.ask(question)
    bot.embedder.clear_cache()
    floor_times, ask_times = [], []
    for question in questions:
        floor_times.append(_timed(lambda q=question: floor(q)))
        ask_times.append(_timed(lambda q=question: bot.ask(q)))
    repeated = [_timed(lambda q=q: bot.ask(q)) for q in questions]
    floor_ms, ask_ms = percentiles(floor_times), percentiles(ask_times)
    return {
        "questions": len(questions),
        "floor_encode_ms": floor_ms,
        "ask_ms": ask_ms,
        "ask_to_floor_p50": round(ask_ms["p50"] / floor_ms["p50"], 2),
        "ask_repeated_ms": percentiles(repeated),
        "ask_per_second": round(len(questions) / sum(ask_times), 1),
    }


def batch_throughput(
    bot: FaqBot, questions: list[str], batch_size: int = 32
) -> dict[str, Any]:
    """Questions per second through `FaqBot.ask_many`, against a bare batched
    encode, and whether every batched reply equals the one `ask` gives."""
    batches = [
        questions[i : i + batch_size] for i in range(0, len(questions), batch_size)
    ]
    model = bot.embedder.model
    floor = sum(
        _timed(lambda b=b: model.encode(b, batch_size=batch_size)) for b in batches
    )
    bot.embedder.clear_cache()
    replies: list = []
    spent = sum(_timed(lambda b=b: replies.extend(bot.ask_many(b))) for b in batches)
    bot.embedder.clear_cache()
    same = sum(
        bot.ask(q).to_dict() == r.to_dict()
        for q, r in zip(questions, replies, strict=True)
    )
    return {
        "batch_size": batch_size,
        "floor_encode_per_second": round(len(questions) / floor, 1),
        "ask_many_per_second": round(len(questions) / spent, 1),
        "ask_many_same_as_ask": f"{same}/{len(questions)}",
    }


def _run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False
    )
    spent = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:3])} failed ({done.returncode}): {done.stderr[-400:]}"
        )
    return spent, done.stdout


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


FLOOR_START = (
    "import sys\n"
    "from sentence_transformers import SentenceTransformer\n"
    "model = SentenceTransformer(sys.argv[1], device='cpu', local_files_only=True)\n"
    "model.encode([sys.argv[2]], normalize_embeddings=True)\n"
)


def start_time(
    index: Path, corpus: Path, model_dir: str, question: str, runs: int = 3
) -> dict[str, Any]:
    """Seconds from process start to the first answer of `python -m app ask`,
    against a process that only loads the model and encodes one question."""
    env = _child_env()
    ask = ["-m", "app", "ask", "--index", str(index), "--corpus", str(corpus)]
    ask += ["--no-rebuild", question]
    floor_times, ask_times = [], []
    for _ in range(runs):
        floor_times.append(_run(["-c", FLOOR_START, model_dir, question], env)[0])
        ask_times.append(_run(ask, env)[0])
    floor, spent = statistics.median(floor_times), statistics.median(ask_times)
    return {
        "runs": runs,
        "floor_start_s": round(floor, 2),
        "ask_start_s": round(spent, 2),
        "start_to_floor": round(spent / floor, 2),
    }


BUILD_CHILD = (
    "import json, resource, sys, time\n"
    "started = time.perf_counter()\n"
    "from app.embed import Embedder\n"
    "from app.index import build_index\n"
    "embedder = Embedder()\n"
    "loaded, cpu = time.perf_counter(), time.process_time()\n"
    "manifest = build_index(sys.argv[1], sys.argv[2], embedder, show_progress=False)\n"
    "print(json.dumps({'load_s': loaded - started,\n"
    "    'build_s': time.perf_counter() - loaded,\n"
    "    'cpu_s': time.process_time() - cpu,\n"
    "    'passages': manifest['passages'], 'vectors': manifest['vectors'],\n"
    "    'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
)


def build_cost(corpus: Path) -> dict[str, Any]:
    """Build the index of `corpus` in a fresh process and a temporary folder:
    wall and CPU seconds (imports and model load apart; CPU seconds over the
    core count is the wall time of an otherwise idle machine) and peak
    resident memory."""
    with tempfile.TemporaryDirectory(prefix="faq-bench-") as folder:
        spent, out = _run(["-c", BUILD_CHILD, str(corpus), folder], _child_env())
    figures = json.loads(out.strip().splitlines()[-1])
    return {
        "passages": figures["passages"],
        "vectors": figures["vectors"],
        "build_s": round(figures["build_s"], 2),
        "build_cpu_s": round(figures["cpu_s"], 2),
        "process_s": round(spent, 2),
        "peak_rss_mb": round(figures["peak_rss_mb"], 1),
    }


def embed_throughput(bot: FaqBot) -> dict[str, Any]:
    """Passages and index keys the encoder embeds per second."""
    texts = [passage.key_text for passage in bot.index.passages]
    spent = _timed(lambda: bot.embedder.encode(texts))
    return {
        "passages": len(texts),
        "passages_per_second": round(len(texts) / spent, 1),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def run_bench(
    bot: FaqBot,
    index: Path,
    corpus: Path,
    questions: list[str],
    runs: int = 3,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Every figure of `python -m app bench`.

    Args:
        bot: An open bot over `index`.
        index: Its folder (the start-time runs load it again).
        corpus: The FAQ it was built from (the build run rebuilds it).
        questions: Distinct questions to time.
        runs: Process starts to time. Defaults to 3.
        batch_size: Questions per `ask_many` batch. Defaults to 32.

    Returns:
        Sections `machine`, `latency`, `batch`, `start`, `build`, `embed`.

    Raises:
        QuestionError: No question to time.
    """
    if not questions:
        raise QuestionError("the benchmark needs at least one question")
    model_dir = str(resolve_model(bot.embedder.name))
    figures = {"machine": machine()}
    figures["latency"] = answer_latency(bot, questions)
    figures["batch"] = batch_throughput(bot, questions, batch_size)
    figures["start"] = start_time(index, corpus, model_dir, questions[0], runs)
    figures["build"] = build_cost(corpus)
    figures["embed"] = embed_throughput(bot)
    return figures


def format_figures(figures: dict[str, Any]) -> str:
    """The figures as aligned `section.name: value` lines."""
    lines = []
    for section, values in figures.items():
        for name, value in values.items():
            if isinstance(value, dict):
                value = "  ".join(f"{k} {v}" for k, v in value.items())
            lines.append(f"{section}.{name}: {value}")
    return "\n".join(lines)
