"""The named exceptions of the package.

Every failure a user can cause or meet raises one of these, with a message
that quotes the bad value and says what is allowed, so that the command line
can print it as one line and the chat can show it as a notice.
"""

from __future__ import annotations

from pathlib import Path


class FaqError(Exception):
    """Base class of every error this package raises on purpose."""


class CorpusError(FaqError):
    """A corpus file cannot be read or parsed.

    Args:
        path: The file at fault.
        message: What is wrong, in words a user can act on.
        line: The 1-based line number, when one line is at fault.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class ModelError(FaqError):
    """The embedding model cannot be found, verified or loaded."""


class IndexStateError(FaqError):
    """The index on disk is missing, damaged or built from other inputs."""


class QuestionError(FaqError):
    """A question cannot be answered as given (for example, it is empty)."""


class FeedbackError(FaqError):
    """User feedback cannot be stored or exported (for example, the data
    folder is not writable, or an export would overwrite a file)."""
