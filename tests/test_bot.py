"""FaqBot.open: serve a current index, rebuild a stale or damaged one, or
refuse it; questions are checked and cut before they are answered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import SMALL_FAQ, write_jsonl

import app.bot as bot_module
from app.bot import MAX_QUESTION_CHARS, FaqBot, prepare_question
from app.errors import CorpusError, IndexStateError, QuestionError
from app.index import read_manifest


@pytest.fixture
def shared_model(monkeypatch, embedder):
    """Let `FaqBot.open` reuse the session's model instead of loading one."""
    monkeypatch.setattr(bot_module, "Embedder", lambda model=None: embedder)
    return embedder


@pytest.fixture
def index_copy(small_index, tmp_path) -> Path:
    return Path(shutil.copytree(small_index, tmp_path / "index"))


@pytest.fixture
def own_index(shared_model, tmp_path) -> tuple[Path, Path]:
    """An index built from a corpus file of the test's own, which the test
    may then change in place."""
    corpus = write_jsonl(tmp_path / "faq.jsonl", SMALL_FAQ)
    FaqBot.open(tmp_path / "index", corpus=corpus)
    return tmp_path / "index", corpus


def test_open_rebuilds_a_stale_index(own_index):
    index, corpus = own_index
    before = read_manifest(index)["generation"]
    write_jsonl(corpus, SMALL_FAQ[:-1])
    bot = FaqBot.open(index, corpus=corpus, rebuild=True)
    assert read_manifest(index)["generation"] != before
    assert len(bot.index.entries) == len(SMALL_FAQ) - 1
    assert "deletion" not in bot.index.entries


def test_open_refuses_a_stale_index_without_rebuild(own_index):
    index, corpus = own_index
    write_jsonl(corpus, SMALL_FAQ[:-1])
    with pytest.raises(
        IndexStateError, match="does not match the one the index was built"
    ):
        FaqBot.open(index, corpus=corpus, rebuild=False)


def test_open_never_rebuilds_an_index_from_another_corpus(own_index, tmp_path):
    index, _ = own_index
    before = read_manifest(index)
    other = write_jsonl(tmp_path / "other.jsonl", SMALL_FAQ[:2])
    with pytest.raises(IndexStateError, match="build that FAQ into a folder"):
        FaqBot.open(index, corpus=other, rebuild=True)
    assert read_manifest(index) == before


def test_open_rebuilds_a_damaged_index(shared_model, index_copy, small_corpus):
    manifest = read_manifest(index_copy)
    (index_copy / manifest["generation"] / "entries.jsonl").write_text("{}\n")
    with pytest.raises(IndexStateError, match="entries.jsonl"):
        FaqBot.open(index_copy, corpus=small_corpus, rebuild=False)
    bot = FaqBot.open(index_copy, corpus=small_corpus, rebuild=True)
    assert len(bot.index.entries) == len(SMALL_FAQ)


def test_open_builds_a_missing_index(shared_model, tmp_path, small_corpus):
    bot = FaqBot.open(tmp_path / "new-index", corpus=small_corpus)
    assert bot.ask("how long does shipping abroad take?").found


def test_open_without_corpus_cannot_rebuild(shared_model, tmp_path):
    with pytest.raises(IndexStateError, match="no index at"):
        FaqBot.open(tmp_path / "none", corpus=None)


def test_index_whose_corpus_is_gone_is_served_as_built(own_index, caplog):
    index, corpus = own_index
    corpus.unlink()
    bot = FaqBot.open(index)
    assert bot.ask("I forgot my password").found
    assert bot.corpus is None
    assert "is gone; serving the index as built" in caplog.text
    with pytest.raises(CorpusError, match="no such file"):
        FaqBot.open(index, corpus=corpus)  # named outright, it must exist


def test_open_with_broken_corpus_keeps_the_index(own_index):
    index, corpus = own_index
    corpus.write_text('{"question": "Q?"}\n', encoding="utf-8")
    before = read_manifest(index)
    with pytest.raises(CorpusError, match=r"faq\.jsonl:1"):
        FaqBot.open(index, corpus=corpus)
    assert read_manifest(index) == before


@pytest.mark.parametrize("question", [None, 42, b"bytes"])
def test_non_text_question_raises(small_bot, question):
    with pytest.raises(QuestionError, match="must be text"):
        small_bot.ask(question)


def test_prepare_question_cleans_and_keeps_short_text():
    assert prepare_question("  where\u00a0is   my parcel?\n") == (
        "where is my parcel?",
        None,
    )


def test_prepare_question_cuts_at_a_word():
    text, notice = prepare_question("parcel " * 1_000)
    assert len(text) <= MAX_QUESTION_CHARS
    assert text.split() == ["parcel"] * len(text.split())
    assert notice


def test_prepare_question_announces_a_cut_of_a_huge_paste():
    text, notice = prepare_question("x" * 10 + " " * 200_000)
    assert text == "x" * 10
    assert notice


def test_open_without_corpus_checks_the_recorded_one(shared_model, index_copy):
    before = read_manifest(index_copy)["generation"]
    bot = FaqBot.open(index_copy, rebuild=False)
    assert read_manifest(index_copy)["generation"] == before
    assert len(bot.index.entries) == len(SMALL_FAQ)


def test_open_refuses_a_manifest_with_another_dimension(shared_model, index_copy):
    manifest_path = index_copy / "manifest.json"
    text = manifest_path.read_text(encoding="utf-8")
    manifest_path.write_text(text.replace('"dimension": 384', '"dimension": 385'))
    with pytest.raises(IndexStateError, match="dimension 385"):
        FaqBot.open(index_copy, rebuild=False)


def test_refusal_names_the_command_that_repairs_it(shared_model, tmp_path):
    with pytest.raises(IndexStateError, match=r"app build --corpus FAQ --index"):
        FaqBot.open(tmp_path / "none", rebuild=False)
