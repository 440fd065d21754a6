"""A retrieval-only FAQ chatbot: extractive answers with cited sources.

    >>> from app import FaqBot
    >>> bot = FaqBot.open()                     # loads or builds index/
    >>> reply = bot.ask("how do I get out of a promotion?")
    >>> reply.found, reply.citations[0].topic

The same pieces are available one by one: `load_corpus`, `build_index`,
`load_index`, `Embedder`.
"""

from .answer import Citation, PassageHit, Reply
from .bot import FaqBot
from .corpus import Entry, load_corpus
from .embed import Embedder
from .errors import CorpusError, FaqError, IndexStateError, ModelError, QuestionError
from .index import build_index, load_index

__all__ = [
    "Citation",
    "CorpusError",
    "Embedder",
    "Entry",
    "FaqBot",
    "FaqError",
    "IndexStateError",
    "ModelError",
    "PassageHit",
    "QuestionError",
    "Reply",
    "build_index",
    "load_corpus",
    "load_index",
]
