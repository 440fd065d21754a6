"""Keep the thumbs up and down that users give to answers, for review.

Each vote is one row in a SQLite file (`feedback.sqlite3` in the data folder)
with the question, the answer, its citations, the SHA-256 of the index
manifest that produced it, and the time. The database runs in WAL mode and
every write is one short transaction, so many threads and processes can vote
at once without losing a row.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .errors import FeedbackError

log = logging.getLogger(__name__)

DATA_ENV = "FAQ_DATA_DIR"
DEFAULT_DATA = Path(__file__).resolve().parent.parent / "data"
# Persistent storage of a Hugging Face Space, when the Space has it.
SPACE_DATA = Path("/data")
DATABASE = "feedback.sqlite3"
FORMATS = ("csv", "jsonl")
COLUMNS = (
    "id",
    "created_at",
    "liked",
    "question",
    "answer",
    "found",
    "citations",
    "manifest_sha256",
)
# How long a writer waits for another one's lock, and how often it retries
# the rare busy error that SQLite reports without waiting (WAL recovery).
_BUSY_SECONDS = 30.0
_ATTEMPTS = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    liked INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    found INTEGER NOT NULL,
    citations TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL
)
"""


def data_dir(explicit: str | Path | None = None) -> Path:
    """The folder where feedback is kept.

    Args:
        explicit: A folder given on the command line; wins when set.
            Defaults to None: then `$FAQ_DATA_DIR`, then `/data` on a Hugging
            Face Space whose persistent storage is mounted and writable, then
            `data/` in the repository.

    Returns:
        The folder (not created here).
    """
    if explicit:
        return Path(explicit)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    on_space = bool(os.environ.get("SPACE_ID"))
    if on_space and SPACE_DATA.is_dir() and os.access(SPACE_DATA, os.W_OK):
        return SPACE_DATA
    return DEFAULT_DATA


class FeedbackStore:
    """Votes on answers, stored in SQLite under one data folder.

    Args:
        folder: The data folder. Defaults to `data_dir()`.
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = data_dir(folder)
        self.path = self.folder / DATABASE
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FeedbackError(
                f"cannot create the data folder {str(self.folder)!r}: {err}"
            ) from None
        self._write(lambda db: db.execute(_SCHEMA))

    def record(self, liked: bool, reply: dict[str, Any], manifest_sha256: str) -> int:
        """Store one vote.

        Args:
            liked: True for thumbs up, False for thumbs down.
            reply: The reply as `Reply.to_dict()` gives it.
            manifest_sha256: SHA-256 of the index manifest that answered.

        Returns:
            The id of the new row.
        """
        row = (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            int(bool(liked)),
            str(reply.get("question", "")),
            str(reply.get("answer", "")),
            int(bool(reply.get("found"))),
            json.dumps(reply.get("citations") or [], ensure_ascii=False),
            manifest_sha256,
        )
        insert = (
            "INSERT INTO feedback (created_at, liked, question, answer, found,"
            " citations, manifest_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        return self._write(lambda db: db.execute(insert, row).lastrowid)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every vote, oldest first, with citations parsed back from JSON."""
        with self._connect() as db:
            cursor = db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM feedback ORDER BY id"
            )
            for values in cursor:
                row = dict(zip(COLUMNS, values))
                row["liked"] = bool(row["liked"])
                row["found"] = bool(row["found"])
                row["citations"] = json.loads(row["citations"])
                yield row

    def count(self) -> int:
        """How many votes are stored."""
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def _connect(self) -> _Closing:
        db = sqlite3.connect(self.path, timeout=_BUSY_SECONDS, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return _Closing(db)

    def _write(self, action):
        """Run `action(db)` in one immediate transaction, retrying when busy."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                with self._connect() as db:
                    db.execute("BEGIN IMMEDIATE")
                    result = action(db)
                    db.execute("COMMIT")
                    return result
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise FeedbackError(
                        f"cannot write {str(self.path)!r}: {err}"
                    ) from None
                log.warning("feedback database busy (attempt %d): %s", attempt, err)
                time.sleep(0.05 * attempt)
        raise FeedbackError(f"{str(self.path)!r} stayed locked; vote not stored")


class _Closing:
    """A connection used as a context manager that closes it on exit
    (sqlite3's own context manager only commits or rolls back)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        return self.db

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()


def export(rows: Iterator[dict[str, Any]], fmt: str, out: TextIO) -> int:
    """Write votes as CSV (citations as JSON text) or JSON Lines.

    Args:
        rows: Votes as `FeedbackStore.rows()` yields them.
        fmt: "csv" or "jsonl".
        out: Where to write.

    Returns:
        How many rows were written.

    Raises:
        FeedbackError: `fmt` is not a known format.
    """
    if fmt not in FORMATS:
        raise FeedbackError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    written = 0
    for row in rows:
        if writer:
            writer.writerow({**row, "citations": json.dumps(row["citations"])})
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        written += 1
    return written
