"""Measure retrieval and refusal quality on a set of labelled questions.

A question file is JSON Lines: each line has a `query` and its gold, either
`topics` (a list of exact topic strings; empty when the FAQ does not cover
the question) or `thread` (every entry whose metadata names that thread is a
right answer). Optional fields: `kind` (paraphrase, keyword, misspelling,
detail, offtopic, near_miss) and `split` (tune or heldout).

Rankings are scored per topic: a topic counts once, at its first rank, and
gains are binary. The bot is measured through the same calls the chat makes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from .errors import CorpusError

if TYPE_CHECKING:
    from .bot import FaqBot
    from .corpus import Entry
    from .embed import Embedder

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = REPO_ROOT / "corpus" / "eval" / "seller_help_eval.jsonl"
SPLITS = ("tune", "heldout", "all")
DEPTH = 10
RECALL_DEPTH = 5

Ranker = Callable[[str], list[str]]


@dataclass(frozen=True)
class EvalQuery:
    """One labelled question.

    Attributes:
        query: The question as a user would type it.
        gold: Topics that answer it; empty when the FAQ does not cover it.
        kind: What the question tests (for example "paraphrase"); "" if unset.
        split: "tune" or "heldout"; "" if unset.
        thread: The thread named in the file, when gold was given that way.
    """

    query: str
    gold: tuple[str, ...] = ()
    kind: str = ""
    split: str = ""
    thread: str | None = None

    @property
    def answerable(self) -> bool:
        """Whether some topic of the FAQ answers the question."""
        return bool(self.gold)


@dataclass
class Outcome:
    """What the system did with one question.

    Attributes:
        ranking: Topics, best first, each once (at most `DEPTH`).
        found: Whether the bot answered (None for a plain ranker).
        first_topic: Topic of the answer's first citation, if any.
        seconds: Time the answer took.
        signals: Evidence of the best topic (dense, lexical, margin, ...).
    """

    ranking: list[str]
    found: bool | None = None
    first_topic: str | None = None
    seconds: float = 0.0
    signals: dict[str, float] = field(default_factory=dict)


def load_queries(path: str | Path) -> list[EvalQuery]:
    """Read a question file (see the module docstring for its shape).

    Raises:
        CorpusError: The file is missing or a line is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise CorpusError(path, "no such question file")
    queries = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                queries.append(_query(path, number, line))
    if not queries:
        raise CorpusError(path, "holds no questions")
    return queries


def _query(path: Path, number: int, line: str) -> EvalQuery:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise CorpusError(path, f"not JSON ({err.msg})", number) from None
    if not isinstance(record, dict) or not isinstance(record.get("query"), str):
        raise CorpusError(
            path, f"needs a 'query' text, got {line.strip()[:60]!r}", number
        )
    topics = record.get("topics", [])
    thread = record.get("thread")
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise CorpusError(path, f"'topics' must be a list of texts: {topics!r}", number)
    return EvalQuery(
        query=record["query"],
        gold=tuple(topics),
        kind=str(record.get("kind", "")),
        split=str(record.get("split", "")),
        thread=None if thread is None else str(thread),
    )


def resolve_threads(
    queries: list[EvalQuery], entries: Iterable[Entry]
) -> list[EvalQuery]:
    """Give each question labelled by `thread` the topics of that thread.

    Args:
        queries: Questions; those without a thread are returned unchanged.
        entries: The indexed entries; `metadata["thread"]` names their thread.

    Raises:
        CorpusError: A question names a thread that no entry belongs to.
    """
    by_thread: dict[str, list[str]] = {}
    for entry in entries:
        thread = entry.metadata.get("thread")
        if thread is not None and entry.topic not in by_thread.get(str(thread), []):
            by_thread.setdefault(str(thread), []).append(entry.topic)
    resolved = []
    for q in queries:
        if q.thread is not None:
            if q.thread not in by_thread:
                raise CorpusError(
                    "questions", f"thread {q.thread!r} of {q.query!r} is in no entry"
                )
            q = EvalQuery(
                q.query, tuple(by_thread[q.thread]), q.kind, q.split, q.thread
            )
        resolved.append(q)
    return resolved


def select_split(queries: list[EvalQuery], split: str = "all") -> list[EvalQuery]:
    """Keep the questions of one split ("tune", "heldout" or "all").

    Raises:
        CorpusError: The split is unknown or holds no question.
    """
    if split not in SPLITS:
        raise CorpusError("questions", f"unknown split {split!r}; use one of {SPLITS}")
    chosen = [q for q in queries if split == "all" or q.split == split]
    if not chosen:
        found = sorted({q.split or "(none)" for q in queries})
        raise CorpusError(
            "questions", f"no question in split {split!r}; splits found: {found}"
        )
    return chosen


def unique(ranking: Iterable[str]) -> list[str]:
    """Topics in order of first appearance (a topic counts at its first rank)."""
    return list(dict.fromkeys(ranking))


def hit_at(ranking: Sequence[str], gold: Iterable[str], k: int = 1) -> float:
    """1.0 when a gold topic is among the first `k` (default 1), else 0.0."""
    wanted = set(gold)
    return float(any(t in wanted for t in unique(ranking)[:k]))


def reciprocal_rank(
    ranking: Sequence[str], gold: Iterable[str], k: int = DEPTH
) -> float:
    """1 / rank of the first gold topic within the first `k` (default 10)."""
    wanted = set(gold)
    for rank, topic in enumerate(unique(ranking)[:k], start=1):
        if topic in wanted:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranking: Sequence[str], gold: Iterable[str], k: int = DEPTH) -> float:
    """Normalised discounted cumulative gain with binary gains at `k` (10)."""
    wanted = set(gold)
    if not wanted:
        return 0.0
    gain = sum(
        1.0 / math.log2(rank + 1)
        for rank, topic in enumerate(unique(ranking)[:k], start=1)
        if topic in wanted
    )
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(wanted), k) + 1))
    return gain / ideal


def recall_at(
    ranking: Sequence[str], gold: Iterable[str], k: int = RECALL_DEPTH
) -> float:
    """Share of the gold topics found among the first `k` (default 5)."""
    wanted = set(gold)
    if not wanted:
        return 0.0
    return len(wanted & set(unique(ranking)[:k])) / len(wanted)


def run_bot(
    bot: FaqBot, queries: list[EvalQuery], show_progress: bool = False
) -> list[Outcome]:
    """Ask the bot every question as the chat does, and rank `DEPTH` topics.

    Args:
        bot: An open bot; its settings are the ones measured.
        queries: The questions.
        show_progress: Show a progress bar. Defaults to False.

    Returns:
        One outcome per question, in order; `seconds` is the time of `ask`.
    """
    from .bot import prepare_question

    outcomes = []
    for q in tqdm(queries, desc="questions", disable=not show_progress):
        started = time.perf_counter()
        reply = bot.ask(q.query)
        seconds = time.perf_counter() - started
        # The question vector is cached by now, so this ranking costs no encode.
        _, hits = bot.searcher.search(prepare_question(q.query)[0], top_k=DEPTH)
        outcomes.append(
            Outcome(
                ranking=[hit.topic for hit in hits],
                found=reply.found,
                first_topic=reply.citations[0].topic if reply.citations else None,
                seconds=seconds,
                signals=_signals(hits, bot.answer_settings),
            )
        )
    return outcomes


def _signals(hits, settings) -> dict[str, float]:
    from .answer import confidence

    if not hits:
        return {}
    best = hits[0]
    second = hits[1].score if len(hits) > 1 else 0.0
    return {
        "confidence": confidence(hits, settings),
        "score": best.score,
        "dense": best.dense,
        "coverage": best.coverage,
        "lexical_raw": best.lexical_raw,
        "margin": best.score - second,
    }


def run_ranker(
    ranker: Ranker, queries: list[EvalQuery], show_progress: bool = False
) -> list[Outcome]:
    """Rank topics for every question with a plain ranking function.

    Args:
        ranker: Maps a question to topics, best first.
        queries: The questions.
        show_progress: Show a progress bar. Defaults to False.
    """
    outcomes = []
    for q in tqdm(queries, desc="questions", disable=not show_progress):
        started = time.perf_counter()
        ranking = unique(ranker(q.query))[:DEPTH]
        outcomes.append(Outcome(ranking, seconds=time.perf_counter() - started))
    return outcomes


def summarize(queries: list[EvalQuery], outcomes: list[Outcome]) -> dict[str, Any]:
    """All figures of one run.

    Returns:
        `questions`, `answerable`, `uncovered`; ranking means over answerable
        questions (`hit@1`, `mrr@10`, `ndcg@10`, `recall@5`); when the
        outcomes come from the bot, `refused_uncovered` and
        `wrongly_refused` (count and rate), `first_sentence_gold` (share of
        answered, answerable questions whose first cited topic is gold);
        `qps`; and `per_kind` (hit@1 of answerable kinds, refusal rate of
        the others).
    """
    answerable = [(q, o) for q, o in zip(queries, outcomes) if q.answerable]
    uncovered = [(q, o) for q, o in zip(queries, outcomes) if not q.answerable]
    figures: dict[str, Any] = {
        "questions": len(queries),
        "answerable": len(answerable),
        "uncovered": len(uncovered),
    }
    figures.update(_ranking_means(answerable))
    if outcomes and outcomes[0].found is not None:
        figures.update(_refusals(answerable, uncovered))
    seconds = sum(o.seconds for o in outcomes)
    figures["qps"] = round(len(outcomes) / seconds, 1) if seconds else None
    figures["per_kind"] = _per_kind(queries, outcomes)
    return figures


def _ranking_means(pairs: list[tuple[EvalQuery, Outcome]]) -> dict[str, float]:
    metrics = {
        "hit@1": lambda r, g: hit_at(r, g, 1),
        "mrr@10": reciprocal_rank,
        "ndcg@10": ndcg_at,
        "recall@5": recall_at,
    }
    return {
        name: _mean(metric(o.ranking, q.gold) for q, o in pairs)
        for name, metric in metrics.items()
    }


def _refusals(answerable: list, uncovered: list) -> dict[str, Any]:
    refused = sum(not o.found for _, o in uncovered)
    wrong = sum(not o.found for _, o in answerable)
    answered = [(q, o) for q, o in answerable if o.found]
    return {
        "refused_uncovered": refused,
        "refused_uncovered_rate": _rate(refused, len(uncovered)),
        "wrongly_refused": wrong,
        "wrongly_refused_rate": _rate(wrong, len(answerable)),
        "first_sentence_gold": _mean(
            float(o.first_topic in q.gold) for q, o in answered
        ),
    }


def _per_kind(queries: list[EvalQuery], outcomes: list[Outcome]) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {}
    for q, o in zip(queries, outcomes):
        row = kinds.setdefault(q.kind or "(none)", {"questions": 0, "_sum": 0.0})
        row["questions"] += 1
        if q.answerable:
            row["_sum"] += hit_at(o.ranking, q.gold, 1)
            row["measure"] = "hit@1"
        else:
            row["_sum"] += float(o.found is False)
            row["measure"] = "refused"
    for row in kinds.values():
        row[row.pop("measure")] = round(row.pop("_sum") / row["questions"], 4)
    return dict(sorted(kinds.items()))


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 4) if values else None


def _rate(count: int, total: int) -> float | None:
    return round(count / total, 4) if total else None


def format_table(figures: dict[str, Any]) -> str:
    """A small plain-text table of the figures of `summarize`."""
    rows = [
        (
            "questions (answerable / uncovered)",
            f"{figures['questions']} ({figures['answerable']} / {figures['uncovered']})",
        ),
    ]
    for name in ("hit@1", "mrr@10", "ndcg@10", "recall@5"):
        rows.append((name, _number(figures.get(name))))
    if "refused_uncovered" in figures:
        rows += [
            (
                "uncovered refused",
                f"{figures['refused_uncovered']}/{figures['uncovered']}"
                f" ({_number(figures['refused_uncovered_rate'])})",
            ),
            (
                "answerable wrongly refused",
                f"{figures['wrongly_refused']}/{figures['answerable']}"
                f" ({_number(figures['wrongly_refused_rate'])})",
            ),
            ("first sentence from gold topic", _number(figures["first_sentence_gold"])),
        ]
    rows.append(("questions per second", _number(figures.get("qps"))))
    for kind, row in figures["per_kind"].items():
        measure = "hit@1" if "hit@1" in row else "refused"
        rows.append((f"  {kind} ({row['questions']}) {measure}", _number(row[measure])))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def evaluate(
    bot: FaqBot,
    question_file: str | Path = DEFAULT_SET,
    split: str = "all",
    show_progress: bool = False,
) -> dict[str, Any]:
    """Read a question file, ask the bot every question, return the figures.

    Args:
        bot: An open bot.
        question_file: JSON Lines of labelled questions. Defaults to the
            shipped seller-help set.
        split: "tune", "heldout" or "all". Defaults to "all".
        show_progress: Show a progress bar. Defaults to False.

    Returns:
        The figures of `summarize`, plus `set` and `split`.
    """
    queries = load_questions(question_file, bot.index.entries.values(), split)
    figures = summarize(queries, run_bot(bot, queries, show_progress))
    return {"set": str(question_file), "split": split, **figures}


def load_questions(
    question_file: str | Path, entries: Iterable[Entry], split: str = "all"
) -> list[EvalQuery]:
    """Read, resolve threads against `entries`, and keep one split.

    Args:
        question_file: JSON Lines of labelled questions.
        entries: The indexed entries.
        split: "tune", "heldout" or "all". Defaults to "all".
    """
    return select_split(resolve_threads(load_queries(question_file), entries), split)


def bm25_ranker(entries: Iterable[Entry]) -> Ranker:
    """A baseline: BM25 (bm25s) over whole entries, topic and answer.

    Returns:
        A function from a question to topics, best first.
    """
    from .search import Lexical

    entries = list(entries)
    lexical = Lexical.from_texts([_whole(e) for e in entries])
    return _ranker([e.topic for e in entries], lexical.scores)


def dense_ranker(entries: Iterable[Entry], embedder: Embedder) -> Ranker:
    """A baseline: cosine similarity to whole entries (topic and answer, cut
    by the model at its maximum length).

    Returns:
        A function from a question to topics, best first.
    """
    entries = list(entries)
    matrix = embedder.encode([_whole(e) for e in entries])
    return _ranker(
        [e.topic for e in entries], lambda q: matrix @ embedder.encode_query(q)
    )


def _whole(entry: Entry) -> str:
    return f"{entry.topic} {entry.text}"


def _ranker(topics: list[str], scores: Callable[[str], np.ndarray]) -> Ranker:
    def rank(question: str) -> list[str]:
        order = np.argsort(-scores(question), kind="stable")
        return unique(topics[i] for i in order)

    return rank


def benchmark_dir() -> Path:
    """The StackFAQ benchmark folder kept in the repository.

    Raises:
        CorpusError: The StackFAQ files are not there.
    """
    folder = REPO_ROOT / "corpus" / "eval" / "stackfaq"
    for name in ("stackfaq_entries.jsonl", "stackfaq_queries.jsonl"):
        if not (folder / name).is_file():
            raise CorpusError(folder / name, "StackFAQ benchmark file missing")
    return folder
