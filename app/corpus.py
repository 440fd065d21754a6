"""Read FAQ files into clean entries.

Four formats are read: the scraped help-centre page (`.txt`: question and
answer lines alternating inside page noise), JSON Lines, a JSON array, and
CSV/TSV with `question` and `answer` columns. A folder is read file by file.
Every problem is reported as a `CorpusError` that names the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CorpusError
from .text import clean, fold, near_duplicate, sentence_spans, words

log = logging.getLogger(__name__)

# Bumped whenever parsing, cleaning or chunking changes, so built indexes go stale.
PARSER_VERSION = 7
SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".tsv")
MAX_QUESTION_CHARS = 2_000
MAX_ANSWER_CHARS = 200_000
# Lines of the help-centre page that belong to its frame, not to the FAQ.
PAGE_NOISE = frozenset(
    {
        "skip to main content",
        "comments",
        "labels",
        "show more",
        "show less",
        "print",
        "share",
        "was this helpful?",
        "related articles",
    }
)
# Sentences shorter than this may repeat legitimately ("Yes.").
_MIN_WORDS_TO_DEDUPE = 4
# Common phrases shared by many entries say nothing about repeats.
_MAX_POSTING = 50


@dataclass
class Entry:
    """One FAQ entry: a question (its topic) and the cleaned answer text.

    Attributes:
        id: Unique id; taken from an `id` field or made from file and line.
        topic: The question, exactly as written in the corpus (cleaned of
            stray spaces only).
        text: The answer, cleaned: spaces fixed, repeated sentences dropped.
        source: The file the entry came from.
        line: The 1-based line of the entry's question in that file.
        metadata: Any other fields of the record, kept as they were.
        group: Id of the first entry this one nearly repeats (or its own id),
            so that answers can avoid showing the same text twice.
    """

    id: str
    topic: str
    text: str
    source: str
    line: int
    metadata: dict[str, Any] = field(default_factory=dict)
    group: str = ""


def corpus_files(path: str | Path) -> list[Path]:
    """List the FAQ files at `path`: the file itself, or a folder's files.

    Raises:
        CorpusError: When the path does not exist, has an unknown suffix, or
            is a folder without any FAQ file.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(path, "no such file or folder")
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file()
            and p.suffix.lower() in SUFFIXES
            and not p.name.startswith(".")
        )
        skipped = sorted(p.name for p in path.iterdir() if p not in files)
        if skipped:
            # Said out loud, so a misnamed file (faq.CSV.bak) is not lost unseen.
            log.info(
                "%s: not read (other type, hidden or folder): %s",
                path,
                ", ".join(skipped),
            )
        if not files:
            raise CorpusError(path, f"folder holds no FAQ file ({', '.join(SUFFIXES)})")
        return files
    if path.suffix.lower() not in SUFFIXES:
        raise CorpusError(
            path, f"unknown file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}"
        )
    return [path]


def corpus_hash(path: str | Path) -> str:
    """Return a SHA-256 over the bytes and names of every FAQ file at `path`."""
    digest = hashlib.sha256(f"parser-{PARSER_VERSION}".encode())
    for file in corpus_files(path):
        digest.update(file.name.encode() + b"\0")
        digest.update(file.read_bytes())
    return digest.hexdigest()


def load_corpus(path: str | Path) -> list[Entry]:
    """Read and clean every FAQ entry at `path` (a file or a folder).

    Args:
        path: A `.txt` help-centre page, `.jsonl`, `.json`, `.csv` or `.tsv`
            file, or a folder of such files (not searched recursively).

    Returns:
        The entries in file order, each with near-repeats grouped.

    Raises:
        CorpusError: Naming the file and line of the first problem found.
    """
    entries: list[Entry] = []
    seen_ids: dict[str, Entry] = {}
    for file in corpus_files(path):
        for entry in _read_file(file):
            if entry.id in seen_ids:
                first = seen_ids[entry.id]
                raise CorpusError(
                    file,
                    f"duplicate id {entry.id!r} (first used at {first.source}:{first.line})",
                    entry.line,
                )
            seen_ids[entry.id] = entry
            entries.append(entry)
    if not entries:
        raise CorpusError(path, "no FAQ entries found")
    group_near_repeats(entries)
    log.info("read %d FAQ entries from %s", len(entries), path)
    return entries


def _read_file(file: Path) -> Iterator[Entry]:
    text = _decode(file)
    if not text.strip():
        raise CorpusError(file, "file is empty")
    suffix = file.suffix.lower()
    if suffix == ".txt":
        records = _page_records(file, text)
    elif suffix == ".jsonl":
        records = _jsonl_records(file, text)
    elif suffix == ".json":
        records = _json_records(file, text)
    else:
        records = _table_records(file, text, "\t" if suffix == ".tsv" else ",")
    lines_seen: Counter[int] = Counter()
    for line, record in records:
        # Records that share a line (a JSON array written on one line) get
        # their place on that line added to the id made for them.
        lines_seen[line] += 1
        place = f"{line}" if lines_seen[line] == 1 else f"{line}.{lines_seen[line]}"
        yield _entry(file, line, record, f"{file.name}:{place}")


def _decode(file: Path) -> str:
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CorpusError(
            file,
            f"not UTF-8 text (byte {data[err.start]:#04x}); save the file as UTF-8",
            line,
        ) from None


def _page_records(file: Path, text: str) -> Iterator[tuple[int, dict]]:
    """Pair the question and answer lines of a scraped help-centre page."""
    lines = [
        (number, clean(raw)) for number, raw in enumerate(text.splitlines(), start=1)
    ]
    content = [
        (n, line) for n, line in lines if line and line.lower() not in PAGE_NOISE
    ]
    if len(content) % 2:
        number, line = content[-1]
        raise CorpusError(file, f"question without an answer: {line[:60]!r}", number)
    for (q_line, question), (_, answer) in zip(content[::2], content[1::2]):
        yield q_line, {"question": question, "answer": answer}


def _jsonl_records(file: Path, text: str) -> Iterator[tuple[int, dict]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as err:
            raise CorpusError(file, f"not valid JSON: {err.msg}", number) from None
        yield number, record


def _json_records(file: Path, text: str) -> Iterator[tuple[int, dict]]:
    """Walk a JSON array item by item, so each item's line is known."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorpusError(file, f"not valid JSON: {err.msg}", err.lineno) from None
    position = _array_start(text, data)
    if position is None:
        raise CorpusError(
            file, "expected a JSON array of {question, answer} objects", 1
        )
    decoder = json.JSONDecoder()
    for _ in range(len(_records_of(data))):
        position = _skip(text, position, " \t\r\n,")
        record, end = decoder.raw_decode(text, position)
        yield text.count("\n", 0, position) + 1, record
        position = end


def _records_of(data: Any) -> list:
    """The array of records: the document itself, or the object's `entries`
    array, or else its first array value."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        key = _array_key(data)
        return data[key] if key is not None else []
    return []


def _array_key(data: dict) -> str | None:
    if isinstance(data.get("entries"), list):
        return "entries"
    return next((k for k, v in data.items() if isinstance(v, list)), None)


def _array_start(text: str, data: Any) -> int | None:
    """Offset just inside the records array, found by decoding the top-level
    object key by key (a bracket inside an earlier string must not count)."""
    start = _skip(text, 0, " \t\r\n")
    if isinstance(data, list):
        return start + 1
    if not isinstance(data, dict) or (wanted := _array_key(data)) is None:
        return None
    decoder = json.JSONDecoder()
    position = start + 1
    while True:
        position = _skip(text, position, " \t\r\n,")
        key, position = decoder.raw_decode(text, position)
        position = _skip(text, position, " \t\r\n:")
        _, end = decoder.raw_decode(text, position)
        if key == wanted:
            return position + 1
        position = end


def _skip(text: str, position: int, characters: str) -> int:
    while text[position] in characters:
        position += 1
    return position


def _table_records(file: Path, text: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    _allow_long_fields()
    reader = csv.DictReader(
        io.StringIO(text, newline=""), delimiter=delimiter, strict=True
    )
    columns = {name.strip().lower(): name for name in reader.fieldnames or [] if name}
    missing = [c for c in ("question", "answer") if c not in columns]
    if missing:
        found = ", ".join(repr(c) for c in columns) or "none"
        raise CorpusError(
            file, f"missing column {missing[0]!r}; columns found: {found}", 1
        )
    while True:
        # A quoted field may span lines; a row is reported at its first line.
        first_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            problem = _csv_problem(err)
            raise CorpusError(file, f"broken CSV: {problem}", first_line) from None
        yield first_line, {key: row.get(name) for key, name in columns.items()}


def _allow_long_fields() -> None:
    """Let the csv module read any field the length check accepts, so a
    long answer is measured against MAX_ANSWER_CHARS, not csv's own limit."""
    if csv.field_size_limit() <= MAX_ANSWER_CHARS:
        csv.field_size_limit(MAX_ANSWER_CHARS + 1)


def _csv_problem(err: csv.Error) -> str:
    if "field larger than field limit" in str(err):
        return f"a field is longer than the limit of {MAX_ANSWER_CHARS:,} characters"
    return str(err)


def _entry(file: Path, line: int, record: Any, default_id: str) -> Entry:
    if not isinstance(record, dict):
        raise CorpusError(file, "expected an object with 'question' and 'answer'", line)
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    limits = {"question": MAX_QUESTION_CHARS, "answer": MAX_ANSWER_CHARS}
    cleaned = {}
    for name, limit in limits.items():
        value = fields.pop(name, None)
        if value is not None and not isinstance(value, str):
            kind = type(value).__name__
            raise CorpusError(file, f"{name!r} must be text, not {kind}", line)
        if isinstance(value, str):
            _check_length(file, line, name, value, limit)
            cleaned[name] = clean(value)
        # Zero-width and control characters alone count as empty, too.
        if not cleaned.get(name):
            raise CorpusError(file, f"missing or empty {name!r}", line)
    entry_id = str(fields.pop("id", "") or default_id)
    return Entry(
        id=entry_id,
        topic=cleaned["question"],
        text=drop_repeats(cleaned["answer"]),
        source=str(file),
        line=line,
        metadata=fields,
    )


def _check_length(file: Path, line: int, name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise CorpusError(
            file,
            f"{name} is {len(value):,} characters long; the limit is {limit:,}",
            line,
        )


def drop_repeats(text: str) -> str:
    """Drop sentences that repeat an earlier sentence of the same answer.

    Scraped answers often hold a paragraph two or three times, sometimes with
    a word changed or a list number added; a sentence is dropped when it
    nearly repeats an earlier one (see `near_duplicate`) or when its words
    all occur, in order, inside an earlier sentence.
    """
    kept: list[str] = []
    kept_keys: list[str] = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        key = fold(sentence)
        if len(key.split()) >= _MIN_WORDS_TO_DEDUPE and _repeats(
            sentence, key, kept, kept_keys
        ):
            continue
        kept.append(sentence)
        kept_keys.append(f" {key} ")
    return " ".join(kept)


def _repeats(sentence: str, key: str, kept: list[str], kept_keys: list[str]) -> bool:
    padded = f" {key} "
    return any(padded in other for other in kept_keys) or any(
        near_duplicate(sentence, other) for other in kept
    )


def group_near_repeats(entries: list[Entry], threshold: float = 0.5) -> None:
    """Mark entries whose answers are mostly the same text as one group.

    Compares sets of five-word shingles; an entry joins the group of the
    first earlier entry when at least `threshold` of the smaller entry's
    shingles occur in the other. An inverted index keeps this close to
    linear in the corpus size.
    """
    postings: dict[tuple[str, ...], list[int]] = {}
    sizes: list[int] = []
    for i, entry in enumerate(entries):
        entry.group = entry.id
        shingles = _shingles(entry.text)
        sizes.append(len(shingles))
        shared = Counter(
            j for s in shingles for j in postings.get(s, ())[:_MAX_POSTING]
        )
        for j, count in sorted(shared.items()):
            if count / min(sizes[i], sizes[j]) >= threshold:
                entry.group = entries[j].group
                log.info("entry %r nearly repeats %r", entry.topic, entries[j].topic)
                break
        for s in shingles:
            postings.setdefault(s, []).append(i)


def _shingles(text: str, size: int = 5) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + size]) for i in range(max(1, len(tokens) - size + 1))}
