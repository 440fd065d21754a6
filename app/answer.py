"""Compose an extractive answer from the best topics' sentences.

Every sentence of an answer is taken word for word from the knowledge base
(ALL-CAPS text is only shown in sentence case) and carries the number of the
topic it came from. When the evidence is weak, the reply says plainly that
the FAQ does not cover the question and offers the closest topics instead.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .search import TopicHit
from .text import for_display, near_duplicate, words

NOT_COVERED = "The FAQ does not cover this question."
# A section title in brackets standing alone, such as "[Introduction to X]".
_HEADING = re.compile(r"\s*[\[【][^\]】]*[\]】]\s*")


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are picked and when the bot declines.

    Attributes:
        min_confidence: Least confidence of the best topic for an answer
            (see `confidence`). Defaults to 0.525, set on the tune half of
            the evaluation set.
        coverage_weight: Weight of the topic's word coverage in the
            confidence. Defaults to 0.4.
        max_sentences: Most sentences in one answer. Defaults to 3.
        sentence_margin: A sentence is kept if it scores within this of the
            best sentence. Defaults to 0.12.
        second_topic_margin: The second topic may contribute when its score
            is within this of the first. Defaults to 0.03.
    """

    min_confidence: float = 0.525
    coverage_weight: float = 0.4
    max_sentences: int = 3
    sentence_margin: float = 0.12
    second_topic_margin: float = 0.03


@dataclass
class Citation:
    """A numbered source of an answer: `n` as it appears in the text."""

    n: int
    topic: str
    score: float


@dataclass
class PassageHit:
    """A retrieved passage as shown under the answer."""

    topic: str
    text: str
    score: float


@dataclass
class Reply:
    """Everything the chat, the CLI and the API return for one question.

    Attributes:
        question: The question as answered (cleaned, possibly shortened).
        found: False when the FAQ does not cover the question.
        answer: Sentences from the FAQ, each followed by `[n]`; or the
            not-covered message with the closest topics.
        citations: The topics behind the `[n]` marks.
        passages: The passages considered, best first, with scores.
        closest: When not found, the nearest topics, best first.
        notice: A note for the user (for example, that the question was cut).
    """

    question: str
    found: bool
    answer: str
    citations: list[Citation] = field(default_factory=list)
    passages: list[PassageHit] = field(default_factory=list)
    closest: list[str] = field(default_factory=list)
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the contract (plus `closest` and `notice`)."""
        return asdict(self)


@dataclass
class _Candidate:
    topic_rank: int
    entry_id: str
    start: int
    end: int
    text: str
    score: float


def confidence(hits: list[TopicHit], settings: AnswerSettings) -> float:
    """How sure the bot is that the best topic answers the question.

    Two signals are added: the best topic's dense similarity, and the
    rarity-weighted share of the question's words found in that topic
    (`TopicHit.coverage`). A question about something the FAQ never names
    ("livestream", "Brazil") can sit close to a topic in meaning, yet its
    rare words are missing from it.

    Returns:
        The confidence; 0.0 when there is no topic.
    """
    if not hits:
        return 0.0
    best = hits[0]
    return best.dense + settings.coverage_weight * best.coverage


def is_covered(hits: list[TopicHit], settings: AnswerSettings) -> bool:
    """Whether the best topic is strong enough evidence to answer from."""
    return bool(hits) and confidence(hits, settings) >= settings.min_confidence


def compose(
    question: str,
    query: np.ndarray,
    hits: list[TopicHit],
    index: Any,
    settings: AnswerSettings,
    passages_shown: int = 5,
) -> Reply:
    """Build the reply for one question from its ranked topics.

    Args:
        question: The cleaned question.
        query: Its unit vector.
        hits: Topics from `Searcher.search`, best first.
        index: The loaded index (for sentence vectors and entry texts).
        settings: Answer rules.
        passages_shown: How many passages to list. Defaults to 5.
    """
    shown = _passages(hits, passages_shown)
    if not is_covered(hits, settings):
        closest = [hit.topic for hit in hits[:3]]
        text = NOT_COVERED
        if closest:
            text += " Closest topics: " + "; ".join(f'"{t}"' for t in closest) + "."
        return Reply(question, False, text, passages=shown, closest=closest)
    picked = _pick_sentences(question, query, hits, index, settings)
    citations, parts = [], []
    for candidate in picked:
        hit = hits[candidate.topic_rank]
        numbers = {c.topic: c.n for c in citations}
        if hit.topic not in numbers:
            citations.append(
                Citation(len(citations) + 1, hit.topic, round(hit.score, 4))
            )
            numbers[hit.topic] = len(citations)
        parts.append(f"{for_display(candidate.text)} [{numbers[hit.topic]}]")
    return Reply(question, True, " ".join(parts), citations=citations, passages=shown)


def _passages(hits: list[TopicHit], limit: int) -> list[PassageHit]:
    scored = [
        PassageHit(hit.topic, ps.passage.text, round(ps.score, 4))
        for hit in hits
        for ps in hit.passages[:2]
    ]
    scored.sort(key=lambda p: -p.score)
    shown: list[PassageHit] = []
    for passage in scored:
        # Entries that repeat each other would fill the list with one text.
        if not any(near_duplicate(passage.text, s.text, 0.8) for s in shown):
            shown.append(passage)
    return shown[:limit]


def _pick_sentences(
    question: str,
    query: np.ndarray,
    hits: list[TopicHit],
    index: Any,
    settings: AnswerSettings,
) -> list[_Candidate]:
    """The best few sentences of the leading topic(s): the best first, then
    the others in reading order."""
    ranks = [0] + [
        r
        for r in (1,)
        if r < len(hits)
        and hits[0].score - hits[r].score <= settings.second_topic_margin
    ]
    candidates = [
        c for r in ranks for c in _candidates(question, query, hits, r, index)
    ]
    if not candidates:
        return []
    candidates.sort(key=lambda c: -c.score)
    best = candidates[0].score
    picked: list[_Candidate] = []
    for candidate in candidates:
        if (
            len(picked) == settings.max_sentences
            or candidate.score < best - settings.sentence_margin
        ):
            break
        if any(near_duplicate(candidate.text, p.text, 0.6) for p in picked):
            continue
        picked.append(candidate)
    # The sentence that answers best leads (for a detail question, the one
    # holding the detail); the rest follow in reading order for context.
    rest = sorted(picked[1:], key=lambda c: (c.topic_rank, c.entry_id, c.start))
    return picked[:1] + rest


def _candidates(
    question: str, query: np.ndarray, hits: list[TopicHit], rank: int, index: Any
) -> list[_Candidate]:
    """Score the sentences of a topic's three best passages."""
    asked = set(words(question))
    found = []
    passage_ids = {ps.passage.id: ps.score for ps in hits[rank].passages[:3]}
    # Sentence rows are stored in passage order, so each passage's rows are
    # one contiguous run found by binary search.
    owners = index.sentence_spans[:, 0]
    rows = np.concatenate(
        [
            np.arange(
                np.searchsorted(owners, p), np.searchsorted(owners, p, side="right")
            )
            for p in passage_ids
        ]
    )
    sims = index.sentence_vectors[rows] @ query
    opening = None  # (passage, start) of a short lead-in such as "No."
    for row, sim in zip(rows, sims):
        passage_id, start, end = (int(x) for x in index.sentence_spans[row])
        passage = index.passages[passage_id]
        entry_text = index.entries[passage.entry_id].text
        text = entry_text[start:end]
        if text.rstrip().endswith(("?", "？")) or _HEADING.fullmatch(text):
            opening = None  # sub-questions ask and headings name; neither answers
            continue
        if len(words(text)) < 3:
            # Too short to stand alone, but "No." or "Yes." carries the
            # answer: it is kept as the start of the next sentence.
            opening = (passage_id, start)
            continue
        if opening is not None and opening[0] == passage_id:
            start = opening[1]
            text = entry_text[start:end]
        opening = None
        overlap = len(asked & set(words(text))) / max(1, len(asked))
        score = float(sim) + 0.1 * overlap + 0.2 * passage_ids[passage_id]
        found.append(_Candidate(rank, passage.entry_id, start, end, text, score))
    return found
