"""The index on disk: manifest, staleness, checksums, and atomic rebuilds
that leave the previous index whole when they fail."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO, SHIPPED_CORPUS, SMALL_FAQ, write_jsonl

import app.index as index_module
from app.bot import FaqBot
from app.chunk import ChunkSettings
from app.embed import DEFAULT_MODEL
from app.errors import CorpusError, IndexStateError
from app.index import (
    MANIFEST,
    build_index,
    load_index,
    read_manifest,
    stale_reasons,
    verify_files,
)

QUESTIONS = [
    "how long does shipping abroad take?",
    "I forgot my password",
    "what's the weather in Moscow?",
]


@pytest.fixture
def index_copy(small_index, tmp_path) -> Path:
    """A private copy of the session's small index, free to damage."""
    return Path(shutil.copytree(small_index, tmp_path / "index"))


@pytest.fixture
def corpus_copy(small_corpus, tmp_path) -> Path:
    """A private copy of the small FAQ, at the same file name."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    return Path(shutil.copy(small_corpus, folder / small_corpus.name))


def answers(folder: Path, embedder) -> list[tuple]:
    bot = FaqBot(load_index(folder), embedder)
    return [(r.found, r.answer, r.citations) for r in map(bot.ask, QUESTIONS)]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` (hidden ones and folders too), with bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def only_data_file(folder: Path, manifest: dict, name: str) -> Path:
    return folder / manifest["generation"] / name


def test_manifest_records_inputs_and_checksums(small_index, small_corpus, embedder):
    manifest = read_manifest(small_index)
    assert manifest["model"] == DEFAULT_MODEL == embedder.name
    assert manifest["dimension"] == 384
    assert len(manifest["corpus_sha256"]) == 64
    assert manifest["chunking"] == {
        "max_tokens": 256,
        "target_tokens": 128,
        "overlap_sentences": 1,
    }
    assert manifest["entries"] == len(SMALL_FAQ)
    assert manifest["passages"] >= len(SMALL_FAQ)
    assert {"python", "torch", "sentence-transformers", "faiss-cpu"} <= set(
        manifest["versions"]
    )
    assert "missing" not in manifest["versions"].values()
    files = manifest["files"]
    assert {"entries.jsonl", "passages.jsonl", "vectors.faiss"} <= set(files)
    assert all(len(info["sha256"]) == 64 for info in files.values())
    assert stale_reasons(manifest, small_corpus, DEFAULT_MODEL) == []
    assert verify_files(small_index, manifest) == []


def test_index_folder_holds_manifest_and_one_generation(small_index):
    names = sorted(p.name for p in small_index.iterdir())
    manifest = read_manifest(small_index)
    assert names == sorted([MANIFEST, manifest["generation"]])


def test_index_files_are_as_readable_as_the_umask_allows(small_index):
    mask = os.umask(0)
    os.umask(mask)
    for path in small_index.rglob("*"):
        wanted = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == wanted, path


def test_entries_name_their_source_as_the_manifest_names_the_corpus(small_index):
    manifest = read_manifest(small_index)
    entries = small_index / manifest["generation"] / "entries.jsonl"
    sources = {json.loads(line)["source"] for line in entries.open()}
    assert sources == {manifest["corpus"]}


def test_loaded_index_has_every_entry(small_index):
    index = load_index(small_index)
    assert sorted(index.entries) == sorted(e["id"] for e in SMALL_FAQ)
    assert len(index.passages) == index.manifest["passages"]
    assert index.vectors.ntotal == index.manifest["vectors"]


def test_changed_corpus_makes_the_index_stale(small_index, corpus_copy):
    manifest = read_manifest(small_index)
    assert stale_reasons(manifest, corpus_copy, DEFAULT_MODEL) == []
    write_jsonl(corpus_copy, SMALL_FAQ[:-1])
    reasons = stale_reasons(manifest, corpus_copy, DEFAULT_MODEL)
    assert len(reasons) == 1
    assert "does not match the one the index was built" in reasons[0]


def test_other_model_makes_the_index_stale(small_index, small_corpus):
    reasons = stale_reasons(read_manifest(small_index), small_corpus, "other/model")
    assert reasons == [f"built with model {DEFAULT_MODEL!r}, not 'other/model'"]


def test_other_chunk_settings_make_the_index_stale(small_index, small_corpus):
    manifest = read_manifest(small_index)
    built_with = ChunkSettings(**manifest["chunking"])
    assert stale_reasons(manifest, None, DEFAULT_MODEL, chunking=built_with) == []
    smaller = replace(built_with, target_tokens=built_with.target_tokens // 2)
    reasons = stale_reasons(manifest, None, DEFAULT_MODEL, chunking=smaller)
    assert len(reasons) == 1 and reasons[0].startswith("chunked with")


def test_missing_corpus_is_a_stale_reason(small_index, tmp_path):
    reasons = stale_reasons(
        read_manifest(small_index), tmp_path / "gone.jsonl", DEFAULT_MODEL
    )
    assert reasons and "no such file or folder" in reasons[0]


def damage_missing(path: Path) -> None:
    path.unlink()


def damage_truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def damage_altered(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (damage_missing, "passages.jsonl is missing"),
        (damage_truncated, "passages.jsonl has"),
        (damage_altered, "passages.jsonl was altered"),
    ],
)
def test_verify_files_finds_damage(index_copy, damage, problem):
    manifest = read_manifest(index_copy)
    damage(only_data_file(index_copy, manifest, "passages.jsonl"))
    problems = verify_files(index_copy, manifest)
    assert len(problems) == 1
    assert problems[0].startswith(problem)
    with pytest.raises(IndexStateError, match="is damaged"):
        load_index(index_copy)


def test_missing_generation_is_found(index_copy):
    manifest = read_manifest(index_copy)
    shutil.rmtree(index_copy / manifest["generation"])
    assert verify_files(index_copy, manifest) == [
        f"data folder {manifest['generation']!r} is missing"
    ]
    with pytest.raises(IndexStateError):
        load_index(index_copy)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no index at"),
        ("{broken", "is damaged"),
        ('{"format": 99}', "unknown format"),
    ],
)
def test_bad_manifest_is_refused(index_copy, content, message):
    path = index_copy / MANIFEST
    if content is None:
        path.unlink()
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(IndexStateError, match=message):
        load_index(index_copy)


class Interrupted(Exception):
    """Stands for anything that stops a build half way."""


@pytest.mark.parametrize(
    ("target", "error", "raised"),
    [
        ("write_vector_index", Interrupted("stopped"), Interrupted),
        ("write_vector_index", OSError(28, "No space left on device"), IndexStateError),
        ("_replace_manifest", Interrupted("stopped"), Interrupted),
        ("_replace_manifest", RuntimeError("disk gone"), IndexStateError),
    ],
)
def test_failed_build_keeps_the_previous_index(
    index_copy, corpus_copy, embedder, monkeypatch, target, error, raised
):
    before_answers = answers(index_copy, embedder)
    before_files = snapshot(index_copy)
    write_jsonl(corpus_copy, SMALL_FAQ[:3])
    calls = []

    def fail(*args, **kwargs):
        calls.append(args)
        raise error

    monkeypatch.setattr(index_module, target, fail)
    with pytest.raises(raised):
        build_index(corpus_copy, index_copy, embedder, show_progress=False)
    assert calls
    assert snapshot(index_copy) == before_files
    assert answers(index_copy, embedder) == before_answers


def test_corpus_error_during_rebuild_leaves_the_index(
    index_copy, corpus_copy, embedder
):
    before = snapshot(index_copy)
    corpus_copy.write_text('{"question": "Q?", "answer": ""}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"faq\.jsonl:1: missing or empty 'answer'"):
        build_index(corpus_copy, index_copy, embedder, show_progress=False)
    assert snapshot(index_copy) == before


def test_rebuild_replaces_the_generation(index_copy, corpus_copy, embedder):
    old = read_manifest(index_copy)["generation"]
    write_jsonl(corpus_copy, SMALL_FAQ[:3])
    manifest = build_index(corpus_copy, index_copy, embedder, show_progress=False)
    assert manifest["entries"] == 3
    assert sorted(p.name for p in index_copy.iterdir()) == sorted(
        [MANIFEST, manifest["generation"]]
    )
    assert manifest["generation"] != old
    assert sorted(load_index(index_copy).entries) == ["password", "returns", "shipping"]


def test_committed_index_matches_the_shipped_corpus():
    folder = REPO / "index"
    manifest = read_manifest(folder)
    assert stale_reasons(manifest, SHIPPED_CORPUS, DEFAULT_MODEL) == []
    assert verify_files(folder, manifest) == []


def test_index_path_that_is_a_file_is_an_index_error(small_corpus, embedder, tmp_path):
    target = tmp_path / "index"
    target.write_text("not a folder", encoding="utf-8")
    with pytest.raises(IndexStateError, match="cannot write the index at"):
        build_index(small_corpus, target, embedder, show_progress=False)
    assert target.read_text(encoding="utf-8") == "not a folder"
