"""The public entry point: load (or build) an index and answer questions."""

from __future__ import annotations

import logging
from pathlib import Path

from .answer import AnswerSettings, Reply, compose
from .corpus import corpus_files
from .embed import Embedder, file_sha256
from .errors import IndexStateError, QuestionError
from .index import (
    MANIFEST,
    build_index,
    default_chunking,
    load_index,
    read_manifest,
    recorded_corpus,
    stale_reasons,
)
from .search import Searcher, SearchSettings
from .text import clean, words

log = logging.getLogger(__name__)

DEFAULT_CORPUS = (
    Path(__file__).resolve().parent.parent / "corpus" / "seller_help_faq.txt"
)
DEFAULT_INDEX = Path(__file__).resolve().parent.parent / "index"
MAX_QUESTION_CHARS = 1_000


class FaqBot:
    """Answers questions from one FAQ index.

    Load it with `FaqBot.open`; the model and index load once and every
    call to `ask` reuses them. `ask` is safe to call from many threads.

    Args:
        index: A loaded index.
        embedder: The model it was built with.
        search_settings: Retrieval weights. Defaults to `SearchSettings()`.
        answer_settings: Answer rules. Defaults to `AnswerSettings()`.

    Attributes:
        corpus: The FAQ the index was checked against by `open`, or None.
    """

    def __init__(
        self,
        index,
        embedder: Embedder,
        search_settings: SearchSettings | None = None,
        answer_settings: AnswerSettings | None = None,
    ):
        self.index = index
        self.embedder = embedder
        self.searcher = Searcher(index, embedder, search_settings)
        self.answer_settings = answer_settings or AnswerSettings()
        self.manifest_sha256 = _manifest_sha256(index)
        self.corpus: Path | None = None

    @classmethod
    def open(
        cls,
        index_dir: str | Path = DEFAULT_INDEX,
        corpus: str | Path | None = None,
        model: str | None = None,
        rebuild: bool = True,
        show_progress: bool = False,
    ) -> FaqBot:
        """Load the index at `index_dir`, rebuilding it first when needed.

        Args:
            index_dir: The index folder. Defaults to the repository's `index/`.
            corpus: The FAQ the index must match. Defaults to the corpus the
                index was built from (the shipped seller-help FAQ for the
                repository's own index); when that file is gone, the index
                is served as built.
            model: Model id or folder. Defaults to `$FAQ_MODEL` or
                all-MiniLM-L6-v2.
            rebuild: Rebuild a missing, stale or damaged index from `corpus`
                instead of failing. Defaults to True.
            show_progress: Progress bar during a rebuild. Defaults to False.

        Raises:
            IndexStateError: The index is unusable and cannot be rebuilt.
            CorpusError, ModelError: The inputs are at fault.
        """
        if corpus is None:
            corpus = _default_corpus(index_dir)
            if corpus is not None and not Path(corpus).exists():
                # An index shipped without its FAQ is still whole (its
                # checksums are checked); only its currency is unknown.
                log.warning(
                    "corpus %s, which the index at %s was built from, is gone; "
                    "serving the index as built",
                    corpus,
                    index_dir,
                )
                corpus = None
        if corpus is not None:
            corpus_files(corpus)  # a bad path fails before the model loads
        embedder = Embedder(model)
        reasons = _problems(index_dir, corpus, embedder)
        if reasons:
            _refuse_other_corpus(index_dir, corpus)
            if not rebuild or corpus is None:
                hint = f" --corpus {corpus}" if corpus is not None else " --corpus FAQ"
                raise IndexStateError(
                    f"index at {index_dir} cannot be used: {'; '.join(reasons)}; "
                    f"rebuild it with: python -m app build{hint} --index {index_dir}"
                )
            log.warning("rebuilding index at %s: %s", index_dir, "; ".join(reasons))
            build_index(corpus, index_dir, embedder, show_progress=show_progress)
        bot = cls(load_index(index_dir), embedder)
        bot.corpus = Path(corpus) if corpus is not None else None
        return bot

    def ask(self, question: str, top_k: int = 5) -> Reply:
        """Answer one question.

        Args:
            question: Any text; it is cleaned and cut to `MAX_QUESTION_CHARS`.
            top_k: Topics to rank. Defaults to 5.

        Raises:
            QuestionError: The question is empty once cleaned.
        """
        return self.ask_many([question], top_k)[0]

    def ask_many(self, questions: list[str], top_k: int = 5) -> list[Reply]:
        """Answer several questions, encoding them in one batch.

        Each reply is the one `ask` gives for that question; a batch is
        faster per question because the model runs once for all of them.

        Args:
            questions: Texts as for `ask`.
            top_k: Topics to rank. Defaults to 5.

        Raises:
            QuestionError: A question is empty once cleaned (nothing is
                answered then).
        """
        prepared = [_checked(question) for question in questions]
        texts = [text for text, _ in prepared]
        replies = []
        for (text, notice), (query, hits) in zip(
            prepared, self.searcher.search_many(texts, top_k=top_k)
        ):
            reply = compose(text, query, hits, self.index, self.answer_settings)
            reply.notice = notice
            replies.append(reply)
        return replies


def _checked(question: str) -> tuple[str, str | None]:
    if not isinstance(question, str):
        raise QuestionError(f"a question must be text, not {type(question).__name__}")
    return prepare_question(question)


def prepare_question(question: str) -> tuple[str, str | None]:
    """Clean a question and cut it to the length limit.

    Returns:
        The text to answer and a notice for the user when it was cut.

    Raises:
        QuestionError: Nothing is left once spaces and control characters go,
            or what is left holds no letter or digit.
    """
    # Cleaning is linear, but a huge paste need not be read in full; the
    # cleaned text is then cut to the limit at a word boundary.
    cut = len(question) > MAX_QUESTION_CHARS * 4
    text = clean(question[: MAX_QUESTION_CHARS * 4])
    if not text:
        raise QuestionError("the question is empty; please type a question")
    if not words(text[:MAX_QUESTION_CHARS]):
        raise QuestionError(
            f"the question {text[:40]!r} has no words; please type a question"
        )
    if len(text) > MAX_QUESTION_CHARS:
        text = text[:MAX_QUESTION_CHARS].rsplit(" ", 1)[0] or text[:MAX_QUESTION_CHARS]
        cut = True
    notice = (
        f"Your question was cut to its first {MAX_QUESTION_CHARS:,} characters."
        if cut
        else None
    )
    return text, notice


def _manifest_sha256(index) -> str:
    """SHA-256 of the manifest the index was loaded from; it ties each stored
    vote to the exact index that gave the answer ("" when there is none)."""
    path = Path(getattr(index, "folder", "")) / MANIFEST
    return file_sha256(path) if path.is_file() else ""


def _default_corpus(index_dir: str | Path) -> Path | None:
    """The corpus to check an index against when none is named."""
    if Path(index_dir).resolve() == DEFAULT_INDEX.resolve():
        return DEFAULT_CORPUS
    try:
        return recorded_corpus(read_manifest(index_dir))
    except IndexStateError:
        return None


def _refuse_other_corpus(index_dir: str | Path, corpus: str | Path | None) -> None:
    """Refuse to rebuild an index from another FAQ than its own: that would
    overwrite an index the user made (or the shipped one) without asking."""
    try:
        built_from = recorded_corpus(read_manifest(index_dir))
    except IndexStateError:
        return  # no readable manifest: nothing of the user's to keep
    if corpus is None or built_from is None:
        return
    if Path(corpus).resolve() != built_from.resolve():
        raise IndexStateError(
            f"index at {index_dir} was built from {built_from}, not {corpus}; "
            f"build that FAQ into a folder of its own: python -m app build "
            f"--corpus {corpus} --index NEW_FOLDER"
        )


def _problems(index_dir: str | Path, corpus, embedder: Embedder) -> list[str]:
    from .index import verify_files

    try:
        manifest = read_manifest(index_dir)
    except IndexStateError as err:
        return [str(err)]
    chunking = default_chunking(embedder)
    stale = stale_reasons(manifest, corpus, embedder.name, embedder.dimension, chunking)
    return stale + verify_files(index_dir, manifest)
