"""Find the FAQ topics and passages that best match a question.

Two retrievers are fused: dense search over several kinds of keys (topic
titles, sub-questions, passages and single sentences, each pointing to a
passage) and BM25 over passages. Scores are then gathered per topic, since
the user wants the right FAQ entry first and its best passages second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .chunk import Passage

if TYPE_CHECKING:
    from .embed import Embedder
    from .index import Index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSettings:
    """Weights of the retrieval mix; all have measured defaults.

    Attributes:
        key_weights: Multiplier of each key kind's similarity (topic,
            subquestion, passage, sentence); 0 leaves a kind out.
        lexical_weight: Weight of the BM25 score (scaled to 0-1 by the best
            passage) added to the dense score. Defaults to 0.15.
        dense_candidates: Key rows read from the vector index. Defaults to 256.
    """

    key_weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 0.95)
    lexical_weight: float = 0.15
    dense_candidates: int = 256


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
    """

    topic: str
    score: float
    dense: float
    lexical: float
    lexical_raw: float
    passages: list[PassageScore] = field(default_factory=list)


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

    @classmethod
    def from_texts(cls, texts: list[str]) -> Lexical:
        """Index plain texts; scores come back in the same order."""
        import bm25s

        lexical = cls(bm25s.BM25())
        lexical.model.index(lexical._tokenize(texts), show_progress=False)
        return lexical

    def save(self, folder: Path) -> None:
        """Write the index files into `folder`."""
        self.model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> Lexical:
        """Read an index written by `save`."""
        import bm25s

        return cls(bm25s.BM25.load(str(folder), show_progress=False, verbosity=0))

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for `question`."""
        tokens = self._tokenize([question], ids=False)[0]
        if not tokens:
            # Only stop words or punctuation: bm25s cannot score an empty query.
            return np.zeros(self.model.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.model.get_scores(tokens), dtype=np.float32)

    def _tokenize(self, texts: list[str], ids: bool = True):
        import bm25s

        return bm25s.tokenize(
            texts,
            stopwords="english",
            stemmer=self._stemmer,
            return_ids=ids,
            show_progress=False,
        )


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
        weights = np.asarray(self.settings.key_weights, dtype=np.float32)
        self.key_weight = weights[index.key_kind]

    def search(
        self, question: str, top_k: int = 5
    ) -> tuple[np.ndarray, list[TopicHit]]:
        """Rank topics for one question.

        Returns:
            The question's unit vector, and up to `top_k` topics, best first.
        """
        query = self.embedder.encode_query(question)
        dense = self._dense_passage_scores(query)
        raw = self.index.lexical.scores(question)
        scaled = raw / raw.max() if raw.size and raw.max() > 0 else np.zeros_like(raw)
        fused = dense + self.settings.lexical_weight * scaled
        return query, self._topic_hits(fused, dense, scaled, raw, top_k)

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
            members = np.flatnonzero(self.passage_topic == t)
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


def _first_seen(passages: list[Passage]):
    order: dict[str, int] = {}
    for passage in passages:
        order.setdefault(passage.topic, passage.id)
    return order.__getitem__
