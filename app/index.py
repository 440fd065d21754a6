"""Build, save and load the search index.

An index folder holds `manifest.json` and one generation folder of data files
(`gen-<id>/`). A build writes a new generation in full, then replaces the
manifest in one atomic rename; until that rename the previous manifest still
names the previous, complete generation. So a build that fails, is killed or
runs out of disk leaves the old index loadable and unchanged.

The manifest records what the index was built from (model, corpus hash,
chunking settings, library versions) and a SHA-256 of every data file; an
index that does not match its inputs or its checksums is never served.
No file is pickled: metadata is JSON Lines, vectors are `.npy` and FAISS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib import metadata as pkg_metadata
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

import numpy as np

from .chunk import ChunkSettings, Passage, chunk_entries
from .corpus import Entry, corpus_hash, load_corpus
from .embed import Embedder, file_sha256
from .errors import CorpusError, FaqError, IndexStateError
from .vectors import make_vector_index, read_vector_index, write_vector_index

log = logging.getLogger(__name__)


def _read_umask() -> int:
    # Reading the mask means setting it, so it is read once, at import,
    # before any thread could create a file in between.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
KEY_KINDS = ("topic", "subquestion", "passage", "sentence")


@dataclass
class Index:
    """A loaded index: entries, passages, key vectors and the lexical index.

    Attributes:
        folder: Where it was loaded from.
        manifest: The parsed manifest.
        entries: Entries by id.
        passages: Passages by position.
        key_passage: For each vector row, the passage it points to.
        key_kind: For each vector row, its kind (index into `KEY_KINDS`).
        sentence_spans: `(passage, start, end)` of each sentence row.
        sentence_vectors: Unit vectors of those sentences, shape (n, dim).
        vectors: The FAISS index over all key rows.
        lexical: The BM25 index over passages (see `search.Lexical`).
    """

    folder: Path
    manifest: dict[str, Any]
    entries: dict[str, Entry]
    passages: list[Passage]
    key_passage: np.ndarray
    key_kind: np.ndarray
    sentence_spans: np.ndarray
    sentence_vectors: np.ndarray
    vectors: Any
    lexical: Any


def build_index(
    corpus: str | Path,
    folder: str | Path,
    embedder: Embedder,
    settings: ChunkSettings | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Parse, chunk and embed a corpus, then save it atomically to `folder`.

    Args:
        corpus: A FAQ file or folder (see `corpus.load_corpus`).
        folder: The index folder; created when missing.
        embedder: The model that embeds passages and later questions.
        settings: Chunk sizes. Defaults to the model's maximum length.
        show_progress: Show a progress bar while embedding. Defaults to True.

    Returns:
        The manifest that was written.

    Raises:
        CorpusError: The corpus cannot be read; nothing on disk changes.
        IndexStateError: The files cannot be written (for example, the disk
            is full); the previous index is left as it was.
    """
    started = time.perf_counter()
    folder = Path(folder)
    settings = settings or default_chunking(embedder)
    entries = load_corpus(corpus)
    passages = chunk_entries(entries, embedder.count_tokens, settings)
    _require_words(corpus, passages)
    keys = _keys(entries, passages)
    vectors = embedder.encode([key.text for key in keys], show_progress=show_progress)

    # One build writes into a folder at a time: a second would otherwise
    # clear this one's unfinished generation as clutter.
    with _build_lock(folder):
        staging = _staging_folder(folder)
        generation = staging
        try:
            vector_info = _write_data(staging, entries, passages, keys, vectors)
            manifest = _manifest(
                corpus, embedder, settings, entries, passages, vectors, vector_info
            )
            manifest["files"] = _checksums(staging)
            generation = (
                folder
                / f"gen-{manifest['corpus_sha256'][:8]}-{int(time.time() * 1000)}"
            )
            staging.rename(generation)
            manifest["generation"] = generation.name
            manifest["build_seconds"] = round(time.perf_counter() - started, 2)
            _replace_manifest(folder, manifest)
        except BaseException as err:
            # Until the manifest names it, the new generation is only clutter.
            for leftover in (staging, generation):
                shutil.rmtree(leftover, ignore_errors=True)
            # A full disk shows up as OSError (numpy, files) or RuntimeError (FAISS).
            if isinstance(err, OSError | RuntimeError):
                raise IndexStateError(
                    f"cannot write the index at {folder} ({err}); "
                    "the previous index is unchanged"
                ) from err
            raise
        _drop_old_generations(folder, keep=manifest["generation"])
    log.info(
        "built index: %d entries, %d passages, %d vectors of dimension %d in %.1f s",
        len(entries),
        len(passages),
        len(keys),
        embedder.dimension,
        manifest["build_seconds"],
    )
    return manifest


def _checksums(folder: Path) -> dict[str, dict[str, Any]]:
    """SHA-256 and size of every file under `folder`, by relative path."""
    return {
        f.relative_to(folder).as_posix(): {
            "sha256": file_sha256(f),
            "bytes": f.stat().st_size,
        }
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


@contextlib.contextmanager
def _build_lock(folder: Path, wait_seconds: float = 600.0):
    """Hold an exclusive lock on the index folder itself (no lock file is
    left behind), waiting for another build to finish first.

    Raises:
        IndexStateError: The folder cannot be created, or another build
            kept the lock for `wait_seconds`.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY)
    except OSError as err:
        raise IndexStateError(f"cannot write the index at {folder} ({err})") from err
    try:
        _wait_for_lock(handle, folder, wait_seconds)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _wait_for_lock(handle: int, folder: Path, wait_seconds: float) -> None:
    if fcntl is None:
        return  # no advisory locks on this system: builds are not serialised
    deadline = time.monotonic() + wait_seconds
    waiting = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise IndexStateError(
                    f"another build has been writing to {folder} for "
                    f"{wait_seconds:.0f} s; try again when it has finished"
                ) from None
            if not waiting:
                log.info("waiting for another build of %s to finish", folder)
                waiting = True
            time.sleep(0.2)


def _staging_folder(folder: Path) -> Path:
    """Create the index folder if needed and a hidden folder to build in.

    Raises:
        IndexStateError: The folder cannot be created or written (for
            example, the path is a file or the disk is read-only).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".gen-", dir=folder))
        # mkdtemp makes it private; an index is as readable as other files.
        staging.chmod(0o777 & ~_UMASK)
        return staging
    except OSError as err:
        raise IndexStateError(f"cannot write the index at {folder} ({err})") from err


@dataclass
class Key:
    """One row of the vector index: a text that points to a passage."""

    text: str
    passage: int
    kind: int
    start: int = 0
    end: int = 0


def _keys(entries: list[Entry], passages: list[Passage]) -> list[Key]:
    """The texts to embed: each entry's topic, each sub-question, each
    passage, and each sentence once (overlapping passages share some)."""
    texts = {entry.id: entry.text for entry in entries}
    first_passage: dict[str, int] = {}
    for passage in passages:
        first_passage.setdefault(passage.entry_id, passage.id)
    keys = [
        Key(entry.topic, first_passage[entry.id], KEY_KINDS.index("topic"))
        for entry in entries
        if entry.id in first_passage
    ]
    opened: set[tuple[str, str]] = set()
    for passage in passages:
        section = (passage.entry_id, passage.subquestion or "")
        if passage.subquestion and section not in opened:
            opened.add(section)
            keys.append(
                Key(passage.subquestion, passage.id, KEY_KINDS.index("subquestion"))
            )
        keys.append(Key(passage.key_text, passage.id, KEY_KINDS.index("passage")))
    seen: set[tuple[str, int]] = set()
    for passage in passages:
        for start, end in passage.sentences:
            if (passage.entry_id, start) not in seen:
                seen.add((passage.entry_id, start))
                text = texts[passage.entry_id][start:end]
                keys.append(
                    Key(text, passage.id, KEY_KINDS.index("sentence"), start, end)
                )
    return keys


def _require_words(corpus: str | Path, passages: list[Passage]) -> None:
    """Fail before any work when no passage has a word to search by."""
    from .search import Lexical

    if not Lexical.has_words([p.key_text for p in passages]):
        raise CorpusError(
            corpus,
            "no entry holds a searchable word (two or more letters, "
            "not a stop word such as 'the' or 'is')",
        )


def _write_data(
    folder: Path,
    entries: list[Entry],
    passages: list[Passage],
    keys: list[Key],
    vectors: np.ndarray,
) -> dict[str, Any]:
    from .search import Lexical

    sentence_kind = KEY_KINDS.index("sentence")
    rows = [i for i, key in enumerate(keys) if key.kind == sentence_kind]
    spans = np.array(
        [(keys[i].passage, keys[i].start, keys[i].end) for i in rows], dtype=np.int64
    ).reshape(-1, 3)
    # Sources are named as the manifest names the corpus, so that a
    # committed index holds no path of the machine that built it.
    _write_jsonl(
        folder / "entries.jsonl",
        ({**asdict(e), "source": recorded_path(e.source)} for e in entries),
    )
    _write_jsonl(folder / "passages.jsonl", (asdict(p) for p in passages))
    _save(
        folder / "key_passage.npy", np.array([k.passage for k in keys], dtype=np.int32)
    )
    _save(folder / "key_kind.npy", np.array([k.kind for k in keys], dtype=np.int8))
    _save(folder / "sentence_spans.npy", spans)
    _save(folder / "sentence_vectors.npy", vectors[rows])
    index, info = make_vector_index(vectors)
    write_vector_index(index, folder / "vectors.faiss")
    Lexical.build(passages).save(folder / "bm25")
    return info


def _save(path: Path, array: np.ndarray) -> None:
    np.save(path, array, allow_pickle=False)


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _manifest(
    corpus: str | Path,
    embedder: Embedder,
    settings: ChunkSettings,
    entries: list[Entry],
    passages: list[Passage],
    vectors: np.ndarray,
    vector_info: dict[str, Any],
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "model": embedder.name,
        "dimension": embedder.dimension,
        "max_seq_length": embedder.max_seq_length,
        "corpus": recorded_path(corpus),
        "corpus_sha256": corpus_hash(corpus),
        "chunking": asdict(settings),
        "entries": len(entries),
        "passages": len(passages),
        "vectors": int(vectors.shape[0]),
        "vector_index": vector_info,
        "versions": _versions(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _versions() -> dict[str, str]:
    names = (
        "sentence-transformers",
        "transformers",
        "torch",
        "faiss-cpu",
        "numpy",
        "bm25s",
    )
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = pkg_metadata.version(name)
        except pkg_metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def _replace_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest to a temporary file, flush it, then rename it over
    the old one: readers see either the old or the new manifest, whole."""
    handle = tempfile.NamedTemporaryFile(
        "w",
        dir=folder,
        prefix=".manifest-",
        suffix=".json",
        delete=False,
        encoding="utf-8",
    )
    try:
        with handle:
            os.chmod(handle.name, 0o666 & ~_UMASK)
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, folder / MANIFEST)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _drop_old_generations(folder: Path, keep: str) -> None:
    for path in folder.iterdir():
        if path.name == keep or path.name == MANIFEST:
            continue
        if path.name.startswith(("gen-", ".gen-", ".manifest-")):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """Read an index folder's manifest.

    Raises:
        IndexStateError: The folder has no index, or the manifest is broken.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise IndexStateError(f"no index at {folder} (missing {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IndexStateError(f"{path} is damaged ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise IndexStateError(f"{path} is of an unknown format")
    return manifest


def recorded_path(path: str | Path) -> str:
    """How the manifest names the corpus: relative to the repository when it
    lies inside it (so a clone elsewhere finds it), else absolute."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(resolved)


def recorded_corpus(manifest: dict[str, Any]) -> Path | None:
    """The corpus an index was built from, as `recorded_path` wrote it."""
    name = manifest.get("corpus")
    if not isinstance(name, str) or not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else REPO_ROOT / path


def default_chunking(embedder: Embedder) -> ChunkSettings:
    """The chunk settings a build uses unless told otherwise."""
    return ChunkSettings(max_tokens=embedder.max_seq_length)


def stale_reasons(
    manifest: dict[str, Any],
    corpus: str | Path | None,
    model: str,
    dimension: int | None = None,
    chunking: ChunkSettings | None = None,
) -> list[str]:
    """Why an index no longer matches the corpus and model, if it does not.

    Args:
        manifest: The index's manifest.
        corpus: The FAQ it must match; None skips the corpus check.
        model: The model id or folder that will embed questions.
        dimension: That model's vector size; None skips the check.
        chunking: The chunk settings a build would use now; None skips
            the check.

    Returns:
        Reasons in words; empty when the index is current.
    """
    reasons = []
    if manifest.get("model") != model:
        reasons.append(f"built with model {manifest.get('model')!r}, not {model!r}")
    if dimension is not None and manifest.get("dimension") != dimension:
        reasons.append(
            f"manifest gives dimension {manifest.get('dimension')!r}, "
            f"the model makes {dimension}"
        )
    if chunking is not None and manifest.get("chunking") != asdict(chunking):
        reasons.append(
            f"chunked with {manifest.get('chunking')!r}, now {asdict(chunking)!r}"
        )
    if corpus is not None:
        try:
            current = corpus_hash(corpus)
        except FaqError as err:
            return reasons + [str(err)]
        if manifest.get("corpus_sha256") != current:
            built_from = manifest.get("corpus")
            reasons.append(
                f"corpus {corpus} does not match the one the index was built"
                f" from ({built_from}, as it was then)"
            )
    return reasons


def verify_files(folder: str | Path, manifest: dict[str, Any]) -> list[str]:
    """Compare every data file with the checksum the manifest recorded.

    Returns:
        Problems found (missing, truncated or altered files); empty if none.
    """
    generation = Path(folder) / str(manifest.get("generation", ""))
    files = manifest.get("files") or {}
    problems = []
    if not files or not generation.is_dir():
        return [f"data folder {generation.name!r} is missing"]
    for name, expected in files.items():
        path = generation / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(
                f"{name} has {path.stat().st_size} bytes, expected {expected['bytes']}"
            )
        elif file_sha256(path) != expected["sha256"]:
            problems.append(f"{name} was altered (checksum differs)")
    return problems


def load_index(folder: str | Path, verify: bool = True) -> Index:
    """Load an index folder written by `build_index`.

    Args:
        folder: The index folder.
        verify: Check every file against the manifest's checksums first.
            Defaults to True.

    Raises:
        IndexStateError: The index is missing, damaged or incomplete.
    """
    from .search import Lexical

    folder = Path(folder)
    manifest = read_manifest(folder)
    if verify and (problems := verify_files(folder, manifest)):
        raise IndexStateError(f"index at {folder} is damaged: {'; '.join(problems)}")
    data = folder / manifest["generation"]
    try:
        entries = [Entry(**row) for row in _read_jsonl(data / "entries.jsonl")]
        passages = [_passage(row) for row in _read_jsonl(data / "passages.jsonl")]
        return Index(
            folder=folder,
            manifest=manifest,
            entries={e.id: e for e in entries},
            passages=passages,
            key_passage=np.load(data / "key_passage.npy", allow_pickle=False),
            key_kind=np.load(data / "key_kind.npy", allow_pickle=False),
            sentence_spans=np.load(data / "sentence_spans.npy", allow_pickle=False),
            sentence_vectors=np.load(data / "sentence_vectors.npy", allow_pickle=False),
            vectors=read_vector_index(data / "vectors.faiss", manifest["vector_index"]),
            lexical=Lexical.load(data / "bm25"),
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise IndexStateError(
            f"index at {folder} cannot be read ({err}); rebuild it"
        ) from err


def _passage(row: dict[str, Any]) -> Passage:
    row["sentences"] = [tuple(span) for span in row["sentences"]]
    return Passage(**row)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
