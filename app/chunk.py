"""Cut entries into sentence-aware passages that fit the encoder.

sentence-transformers silently cuts input longer than the model's maximum
sequence length, so a passage that is too long loses its tail from the index.
Passages here are measured in the model's own tokens, including the topic
prefix they are embedded with, and never exceed that limit.

Long answers hold nested sub-questions (`Q1: ... A: ...`, `[FAQ] ...?`);
each starts a passage of its own and carries its sub-question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .corpus import Entry
from .errors import CorpusError
from .text import sentence_spans

TokenCounter = Callable[[list[str]], list[int]]

# "Q1: ...? A: ..." or "Q: ... Answer: ..."; the Q may follow a digit or colon
# because scraped text glues it to the end of the previous answer.
_SUBQ_QA = re.compile(
    r"(?:(?<=[\s:\d])|^)Q\d{0,2}\s?[:：]\s*(?P<q>[^?？]{3,300}?[?？](?:\s*[^?？:：]{0,120}[?？])?)"
    r"\s*(?:A|Answer)\s?[:：]"
)
_SUBQ_FAQ = re.compile(r"\[FAQ\]\s*(?P<q>[^?？\[\]]{3,300}[?？])")
# Words are measured on their own when one sentence alone exceeds the limit.
_WORD_SPAN = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkSettings:
    """How entries are cut; stored in the index manifest.

    Attributes:
        max_tokens: Hard limit of one passage's embedded text, special tokens
            included. Defaults to the model's maximum sequence length.
        target_tokens: A passage is closed once it reaches this size.
            Defaults to 128.
        overlap_sentences: Sentences repeated at the start of the next passage
            of the same section. Defaults to 1.
    """

    max_tokens: int = 256
    target_tokens: int = 128
    overlap_sentences: int = 1


@dataclass
class Passage:
    """A piece of one entry, small enough to embed whole.

    Attributes:
        id: Position in the index's passage table.
        entry_id: The entry it comes from.
        topic: That entry's question.
        subquestion: The nested question it answers, if any.
        start: Offset of the passage in the entry's cleaned text.
        end: End offset (exclusive); `text == entry.text[start:end]`.
        text: The passage itself.
        sentences: `(start, end)` spans of its sentences in the entry text.
    """

    id: int
    entry_id: str
    topic: str
    subquestion: str | None
    start: int
    end: int
    text: str
    sentences: list[tuple[int, int]] = field(default_factory=list)

    @property
    def key_text(self) -> str:
        """The text that is embedded: topic, sub-question, then passage."""
        return key_text(self.topic, self.subquestion, self.text)


def key_text(topic: str, subquestion: str | None, text: str) -> str:
    """Join a topic, an optional sub-question and a text as they are embedded."""
    head = (
        topic
        if not subquestion or subquestion in text[:400]
        else f"{topic} {subquestion}"
    )
    return f"{head}\n{text}"


def find_subquestions(text: str) -> list[tuple[int, str]]:
    """Find nested sub-questions in an answer.

    Returns:
        `(offset, question)` pairs in text order; `offset` is where the
        sub-question's section starts.
    """
    found = {}
    for pattern in (_SUBQ_QA, _SUBQ_FAQ):
        for match in pattern.finditer(text):
            found.setdefault(match.start(), match.group("q").strip())
    return sorted(found.items())


def sections(entry: Entry) -> list[tuple[int, int, str | None]]:
    """Split an entry's text at its sub-questions.

    Returns:
        `(start, end, subquestion)` triples that cover the whole text.
    """
    marks = find_subquestions(entry.text)
    starts = [0] + [offset for offset, _ in marks if offset > 0]
    questions = [None] + [q for offset, q in marks if offset > 0]
    if marks and marks[0][0] == 0:
        questions[0] = marks[0][1]
    ends = starts[1:] + [len(entry.text)]
    return [(s, e, q) for s, e, q in zip(starts, ends, questions) if e > s]


def chunk_entries(
    entries: Iterable[Entry], count_tokens: TokenCounter, settings: ChunkSettings
) -> list[Passage]:
    """Cut every entry into passages.

    Args:
        entries: Parsed FAQ entries.
        count_tokens: Returns the token count (special tokens included) of
            each text in a list, as the embedding model counts them.
        settings: Passage sizes.

    Returns:
        The passages of all entries, numbered in order; the embedded text of
        each (`key_text`) is within `settings.max_tokens`.

    Raises:
        CorpusError: A question (with its sub-question) leaves too little
            room for any answer text within `settings.max_tokens`.
    """
    special = count_tokens([""])[0]
    passages: list[Passage] = []
    for entry in entries:
        for start, end, subquestion in sections(entry):
            prefix = count_tokens([key_text(entry.topic, subquestion, "")])[0]
            room = settings.max_tokens - prefix
            if room < 16:
                # A corpus fault, so it is reported at the entry's file and line.
                raise CorpusError(
                    entry.source,
                    f"question {entry.topic[:60]!r} leaves {room} of "
                    f"{settings.max_tokens} tokens for its answer; shorten the question",
                    entry.line,
                )
            units = _units(entry.text, start, end, count_tokens, room, special)
            for spans in _pack(units, room, settings):
                passages.append(_passage(len(passages), entry, subquestion, spans))
    return _enforce_limit(passages, count_tokens, settings.max_tokens)


def _passage(
    number: int, entry: Entry, subquestion: str | None, spans: list[tuple[int, int]]
) -> Passage:
    first, last = spans[0][0], spans[-1][1]
    return Passage(
        id=number,
        entry_id=entry.id,
        topic=entry.topic,
        subquestion=subquestion,
        start=first,
        end=last,
        text=entry.text[first:last],
        sentences=spans,
    )


Unit = tuple[tuple[int, int], int]


def _pack(
    units: list[Unit], room: int, settings: ChunkSettings
) -> list[list[tuple[int, int]]]:
    """Group one section's sentences into passages of about the target size."""
    groups: list[list[Unit]] = []
    current: list[Unit] = []
    fresh = False  # whether `current` holds a unit not yet in any group
    for unit in units:
        if fresh and _size(current) + unit[1] > room:
            groups.append(current)
            current = _tail(current, settings.overlap_sentences, room - unit[1])
        current = current + [unit]
        fresh = True
        if _size(current) >= settings.target_tokens:
            groups.append(current)
            current = _tail(current, settings.overlap_sentences, room)
            fresh = False
    if fresh:
        groups.append(current)
    return [[span for span, _ in group] for group in groups]


def _size(units: list[Unit]) -> int:
    return sum(count for _, count in units)


def _tail(units: list[Unit], count: int, room: int) -> list[Unit]:
    """The last `count` units, when they fit in `room` and are not all of it."""
    tail = units[-count:] if count and count < len(units) else []
    return tail if _size(tail) <= room else []


def _units(
    text: str, start: int, end: int, count_tokens: TokenCounter, room: int, special: int
) -> list[Unit]:
    """Sentences with the tokens each adds; over-long ones are cut at words."""
    spans = sentence_spans(text, start, end)
    counts = [n - special for n in count_tokens([text[s:e] for s, e in spans])]
    units: list[Unit] = []
    for span, count in zip(spans, counts):
        if count <= room:
            units.append((span, count))
        else:
            units.extend(_cut_long(text, span, count_tokens, room, special))
    return units


def _cut_long(
    text: str,
    span: tuple[int, int],
    count_tokens: TokenCounter,
    room: int,
    special: int,
) -> list[Unit]:
    words = [(m.start(), m.end()) for m in _WORD_SPAN.finditer(text, span[0], span[1])]
    counts = [n - special for n in count_tokens([text[s:e] for s, e in words])]
    pieces: list[Unit] = []
    first, size = 0, 0
    for i, count in enumerate(counts):
        if size and size + count > room:
            pieces.append(((words[first][0], words[i - 1][1]), size))
            first, size = i, 0
        size += count
    pieces.append(((words[first][0], words[-1][1]), size))
    return pieces


def _enforce_limit(
    passages: list[Passage], count_tokens: TokenCounter, max_tokens: int
) -> list[Passage]:
    """Halve any passage still over the limit (a single giant word, or a
    tokenizer whose counts do not add up), so none is ever cut by the model."""
    result: list[Passage] = []
    pending = list(passages)
    while pending:
        batch, pending = pending, []
        counts = count_tokens([p.key_text for p in batch])
        for passage, count in zip(batch, counts):
            if count <= max_tokens or passage.end - passage.start < 2:
                result.append(passage)
            else:
                pending.extend(_halves(passage))
    result.sort(key=lambda p: (p.id, p.start))
    for number, passage in enumerate(result):
        passage.id = number
    return result


def _halves(passage: Passage) -> list[Passage]:
    middle = passage.start + (passage.end - passage.start) // 2
    full = passage.text
    parts = []
    for start, end in ((passage.start, middle), (middle, passage.end)):
        text = full[start - passage.start : end - passage.start]
        parts.append(
            Passage(
                id=passage.id,
                entry_id=passage.entry_id,
                topic=passage.topic,
                subquestion=passage.subquestion,
                start=start,
                end=end,
                text=text,
                sentences=[(start, end)],
            )
        )
    return parts
