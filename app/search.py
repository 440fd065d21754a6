"""Find the FAQ topics and passages that best match a question.

Two retrievers are fused: dense search over several kinds of keys (topic
titles, sub-questions, passages and single sentences, each pointing to a
passage) and BM25 over passages. Scores are then gathered per topic, since
the user wants the right FAQ entry first and its best passages second.

Before either retriever sees it, a misspelt word of the question is mended
to the nearest word of the FAQ's own vocabulary (one edit away), so that
"blaklist" finds "blacklist" for BM25 and for the encoder alike.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .chunk import Passage
from .text import strip_markup, words

if TYPE_CHECKING:
    from .embed import Embedder
    from .index import Index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSettings:
    """Weights of the retrieval mix; all have measured defaults.

    Attributes:
        key_weights: Multiplier of each key kind's similarity (topic,
            subquestion, passage, sentence); 0 leaves a kind out. Defaults
            to (1, 1, 1, 0): single sentences rank topics worse than whole
            passages do, so they only serve to pick answer sentences.
        lexical_weight: Weight of the BM25 score (scaled to 0-1 by the best
            passage) added to the dense score. Defaults to 0.1.
        dense_candidates: Key rows read from the vector index. Defaults to 512.
        mend_spelling: Mend misspelt question words to the FAQ's vocabulary
            first. Defaults to True.
    """

    key_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.0)
    lexical_weight: float = 0.1
    dense_candidates: int = 512
    mend_spelling: bool = True


@dataclass
class PassageScore:
    """How well one passage matches: fused `score`, and its two parts."""

    passage: Passage
    score: float
    dense: float
    lexical: float


@dataclass
class TopicHit:
    """One FAQ topic with its best passages, best first.

    Attributes:
        topic: The entry's question (entries that share it are one topic).
        score: Fused score of the topic: its best dense key similarity plus
            the weighted, scaled BM25 score of its best passage.
        dense: Best weighted cosine similarity among the topic's keys.
        lexical: Best BM25 score among its passages, scaled to 0-1.
        lexical_raw: That BM25 score before scaling.
        passages: Its passages, best first.
        coverage: Share of the question's words (weighted by how rare they
            are among topics) that occur in the topic's text, 0-1.
    """

    topic: str
    score: float
    dense: float
    lexical: float
    lexical_raw: float
    passages: list[PassageScore] = field(default_factory=list)
    coverage: float = 0.0


class Lexical:
    """BM25 over passage texts (with their topic), stemmed, English stop
    words removed. Saved with bm25s's own format (NumPy and JSON files)."""

    def __init__(self, model):
        self.model = model
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")

    @classmethod
    def build(cls, passages: list[Passage]) -> Lexical:
        """Index the passages' embedded texts."""
        return cls.from_texts([p.key_text for p in passages])

    @staticmethod
    def has_words(texts: list[str]) -> bool:
        """Whether BM25 would find any word to index in `texts` (two or more
        letters, not an English stop word)."""
        tokens = _bm25s().tokenize(
            texts, stopwords="english", return_ids=False, show_progress=False
        )
        return any(tokens)

    @classmethod
    def from_texts(cls, texts: list[str]) -> Lexical:
        """Index plain texts; scores come back in the same order."""
        bm25s = _bm25s()
        lexical = cls(bm25s.BM25())
        lexical.model.index(lexical._tokenize(texts), show_progress=False)
        return lexical

    def save(self, folder: Path) -> None:
        """Write the index files into `folder`."""
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> Lexical:
        """Read an index written by `save`."""
        bm25s = _bm25s()
        return cls(bm25s.BM25.load(str(folder), show_progress=False, verbosity=0))

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for `question`."""
        tokens = self._tokenize([question], ids=False)[0]
        if not tokens:
            # Only stop words or punctuation: bm25s cannot score an empty query.
            return np.zeros(self.model.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)

    def stems(self, text: str) -> set[str]:
        """The stemmed words of `text` that BM25 would match, stop words out."""
        return set(self._tokenize([text], ids=False)[0])

    def _tokenize(self, texts: list[str], ids: bool = True):
        return _bm25s().tokenize(
            texts,
            stopwords="english",
            stemmer=self._stemmer,
            return_ids=ids,
            show_progress=False,
        )


@functools.cache
def _bm25s():
    """bm25s, imported on first use with its logger put back to WARNING:
    the library sets it to DEBUG on import, which floods the terminal."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class Searcher:
    """Ranks topics for a question over one loaded index.

    Args:
        index: A loaded index.
        embedder: The model the index was built with.
        settings: Retrieval weights. Defaults to `SearchSettings()`.
    """

    def __init__(
        self, index: Index, embedder: Embedder, settings: SearchSettings | None = None
    ):
        self.index = index
        self.embedder = embedder
        self.settings = settings or SearchSettings()
        self.topics = sorted(
            {p.topic for p in index.passages}, key=_first_seen(index.passages)
        )
        topic_number = {topic: i for i, topic in enumerate(self.topics)}
        self.passage_topic = np.array([topic_number[p.topic] for p in index.passages])
        # Each topic's passages, found once here rather than per question.
        self.topic_members = [
            np.flatnonzero(self.passage_topic == t) for t in range(len(self.topics))
        ]
        weights = np.asarray(self.settings.key_weights, dtype=np.float32)
        self.key_weight = weights[index.key_kind]
        self.speller = Speller.for_index(index.passages, _model_words(embedder))
        self.topic_words = _topic_words(index.lexical, index.passages, self.topics)
        self.rarity = _rarity(self.topic_words)
        self.function_words = _function_words(index.lexical)

    def search(
        self, question: str, top_k: int = 5
    ) -> tuple[np.ndarray, list[TopicHit]]:
        """Rank topics for one question.

        Returns:
            The question's unit vector, and up to `top_k` topics, best first.
        """
        return self.search_many([question], top_k)[0]

    def search_many(
        self, questions: list[str], top_k: int = 5
    ) -> list[tuple[np.ndarray, list[TopicHit]]]:
        """Rank topics for several questions, encoding them in one batch.

        Returns:
            For each question, what `search` returns for it.
        """
        # Pasted markup is not part of what is asked; a question that is
        # nothing but markup is searched as it was typed.
        questions = [strip_markup(q) or q for q in questions]
        if self.settings.mend_spelling:
            questions = [self.speller.mend(q) for q in questions]
        queries = self.embedder.encode_queries(questions)
        return [self._rank(q, v, top_k) for q, v in zip(questions, queries)]

    def _rank(
        self, question: str, query: np.ndarray, top_k: int
    ) -> tuple[np.ndarray, list[TopicHit]]:
        dense = self._dense_passage_scores(query)
        raw = self.index.lexical.scores(question)
        scaled = raw / raw.max() if raw.size and raw.max() > 0 else np.zeros_like(raw)
        fused = dense + self.settings.lexical_weight * scaled
        hits = self._topic_hits(fused, dense, scaled, raw, top_k)
        asked = self.index.lexical.stems(question) - self.function_words
        for hit in hits:
            hit.coverage = self._coverage(asked, hit.topic)
        return query, hits

    def _coverage(self, asked: set[str], topic: str) -> float:
        """Rarity-weighted share of the question's words found in `topic`."""
        # A word no topic holds weighs most: it names what the FAQ lacks.
        unseen = math.log((len(self.topics) + 1) / 0.5)
        weights = {word: self.rarity.get(word, unseen) for word in asked}
        total = sum(weights.values())
        if not total:
            return 0.0
        found = self.topic_words.get(topic, set())
        return sum(w for word, w in weights.items() if word in found) / total

    def _dense_passage_scores(self, query: np.ndarray) -> np.ndarray:
        """Best weighted key similarity per passage (0 where none was read)."""
        count = min(self.settings.dense_candidates, self.index.vectors.ntotal)
        sims, rows = self.index.vectors.search(query.reshape(1, -1), count)
        sims, rows = sims[0], rows[0]
        keep = rows >= 0
        sims, rows = sims[keep] * self.key_weight[rows[keep]], rows[keep]
        scores = np.zeros(len(self.index.passages), dtype=np.float32)
        np.maximum.at(scores, self.index.key_passage[rows], sims)
        return scores

    def _topic_hits(
        self,
        fused: np.ndarray,
        dense: np.ndarray,
        scaled: np.ndarray,
        raw: np.ndarray,
        top_k: int,
    ) -> list[TopicHit]:
        count = len(self.topics)
        best_dense = np.zeros(count, dtype=np.float32)
        best_lexical = np.zeros(count, dtype=np.float32)
        np.maximum.at(best_dense, self.passage_topic, dense)
        np.maximum.at(best_lexical, self.passage_topic, scaled)
        topic_score = best_dense + self.settings.lexical_weight * best_lexical
        order = np.argsort(-topic_score, kind="stable")[:top_k]
        hits = []
        for t in order:
            members = self.topic_members[t]
            members = members[np.argsort(-fused[members], kind="stable")]
            hits.append(
                TopicHit(
                    topic=self.topics[t],
                    score=float(topic_score[t]),
                    dense=float(best_dense[t]),
                    lexical=float(best_lexical[t]),
                    lexical_raw=float(raw[members].max()) if members.size else 0.0,
                    passages=[
                        PassageScore(
                            self.index.passages[p],
                            float(fused[p]),
                            float(dense[p]),
                            float(scaled[p]),
                        )
                        for p in members
                    ],
                )
            )
        return hits


class Speller:
    """Mends words that are one edit away from a word of the FAQ.

    A word is left alone when the FAQ or the model's own vocabulary knows
    it, when it is shorter than four letters, or when it holds a digit.

    Args:
        vocabulary: How often each (lower-case) word occurs in the FAQ.
        known: Other correct words that must never be changed.
    """

    def __init__(
        self, vocabulary: Counter[str], known: set[str] | frozenset = frozenset()
    ):
        self.vocabulary = vocabulary
        self.known = known
        # Words one deletion apart share a key, so a lookup of the question
        # word's own deletions finds every word one edit away.
        self._by_key: dict[str, list[str]] = {}
        for word in vocabulary:
            if len(word) >= _MIN_MENDED:
                for key in _deletions(word) | {word}:
                    self._by_key.setdefault(key, []).append(word)

    @classmethod
    def for_index(cls, passages: list[Passage], known: set[str]) -> Speller:
        """A speller over the words of the passages' embedded texts."""
        vocabulary: Counter[str] = Counter()
        for passage in passages:
            vocabulary.update(words(passage.key_text))
        return cls(vocabulary, known)

    def mend(self, text: str) -> str:
        """`text` with each misspelt word replaced by its nearest FAQ word."""
        return _WORD.sub(lambda m: self.nearest(m.group()) or m.group(), text)

    def nearest(self, word: str) -> str | None:
        """The most frequent FAQ word one edit from `word`, or None."""
        word = word.lower()
        if (
            len(word) < _MIN_MENDED
            or word in self.vocabulary
            or word in self.known
            or any(c.isdigit() for c in word)
        ):
            return None
        found = {
            w for key in _deletions(word) | {word} for w in self._by_key.get(key, ())
        }
        if not found:
            return None
        return max(sorted(found), key=self.vocabulary.__getitem__)


_MIN_MENDED = 4
_WORD = re.compile(r"[^\W\d_]+")


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _model_words(embedder: Embedder) -> set[str]:
    """Whole words of the encoder's vocabulary: correct English to keep."""
    tokenizer = getattr(getattr(embedder, "model", None), "tokenizer", None)
    vocab = tokenizer.get_vocab() if tokenizer is not None else {}
    return {token for token in vocab if token.isalpha()}


def _topic_words(lexical: Lexical, passages: list[Passage], topics: list[str]):
    texts: dict[str, list[str]] = {topic: [] for topic in topics}
    for passage in passages:
        texts[passage.topic].append(passage.key_text)
    return {topic: lexical.stems(" ".join(parts)) for topic, parts in texts.items()}


# Verbs so common in questions that they name no subject ("how do I get
# out of ...", "where do I find ..."), yet missing from the stop list of bm25s.
_GENERIC_VERBS = ("get", "give", "go", "put", "take", "show", "find")


def _function_words(lexical: Lexical) -> set[str]:
    """Stems of words that say nothing about a topic ("how", "can", "get")."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return lexical.stems(" ".join((*STOPWORDS_EN_PLUS, *_GENERIC_VERBS)))


def _rarity(topic_words: dict[str, set[str]]) -> dict[str, float]:
    """Inverse topic frequency of every word."""
    counts: Counter[str] = Counter()
    for found in topic_words.values():
        counts.update(found)
    total = len(topic_words) + 1
    return {word: math.log(total / (n + 0.5)) for word, n in counts.items()}


def _first_seen(passages: list[Passage]):
    order: dict[str, int] = {}
    for passage in passages:
        order.setdefault(passage.topic, passage.id)
    return order.__getitem__
