"""Chunking with the real model's tokenizer: passages fit the encoder, map
back to the entry text, and nested sub-questions open passages of their own."""

from __future__ import annotations

import pytest
from conftest import SHIPPED_CORPUS

from app.chunk import ChunkSettings, chunk_entries, find_subquestions, key_text
from app.corpus import Entry, load_corpus
from app.errors import CorpusError

LOAN = "How to apply and use AliExpress business loan?"
WAREHOUSE = "Russian overseas warehouse official distribution"
SUB_ACCOUNT = "New version of sub-account settings and management"


@pytest.fixture(scope="module")
def shipped():
    return {entry.topic: entry for entry in load_corpus(SHIPPED_CORPUS)}


@pytest.fixture(scope="module")
def settings(embedder):
    return ChunkSettings(max_tokens=embedder.max_seq_length)


@pytest.fixture(scope="module")
def shipped_passages(shipped, embedder, settings):
    return chunk_entries(list(shipped.values()), embedder.count_tokens, settings)


def entry(text: str, topic: str = "How do I ship an order?") -> Entry:
    return Entry(id="e1", topic=topic, text=text, source="faq.jsonl", line=3)


def assert_fits(passages, entries, embedder, limit):
    texts = {e.id: e.text for e in entries}
    counts = embedder.count_tokens([p.key_text for p in passages])
    assert max(counts) <= limit
    for passage in passages:
        assert passage.text == texts[passage.entry_id][passage.start : passage.end]
        assert passage.text.strip()


def test_model_limit_is_256_tokens(embedder):
    assert embedder.max_seq_length == 256


def test_shipped_passages_fit_and_map_back(shipped, shipped_passages, embedder):
    assert_fits(shipped_passages, shipped.values(), embedder, 256)
    assert [p.id for p in shipped_passages] == list(range(len(shipped_passages)))
    assert {p.entry_id for p in shipped_passages} == {e.id for e in shipped.values()}


def test_passage_sentences_lie_inside_the_passage(shipped_passages):
    for passage in shipped_passages:
        for start, end in passage.sentences:
            assert passage.start <= start < end <= passage.end


def test_business_loan_yields_ten_subquestions(shipped):
    found = [q for _, q in find_subquestions(shipped[LOAN].text)]
    assert len(found) == 10
    assert found[0].startswith("What are the application conditions")
    assert found[-1].startswith("Why am I not authorized")


def test_warehouse_yields_its_q_subquestions(shipped):
    text = shipped[WAREHOUSE].text
    found = find_subquestions(text)
    assert len(found) >= 5
    for offset, question in found:
        assert text[offset:].startswith("Q")
        assert question in text
    assert "How to set up a logistics template?" in [q for _, q in found]


def test_sub_account_yields_its_faq_subquestion(shipped):
    found = [q for _, q in find_subquestions(shipped[SUB_ACCOUNT].text)]
    assert len(found) == 1
    assert found[0].startswith("Why do I set the marketing page permission")


@pytest.mark.parametrize("topic", [LOAN, WAREHOUSE, SUB_ACCOUNT])
def test_each_subquestion_starts_its_own_passage(shipped, shipped_passages, topic):
    entry_id = shipped[topic].id
    passages = [p for p in shipped_passages if p.entry_id == entry_id]
    for offset, question in find_subquestions(shipped[topic].text):
        opening = [p for p in passages if p.start == offset]
        assert len(opening) == 1, question
        assert opening[0].subquestion == question
        inside = [p for p in passages if offset <= p.start and p.subquestion]
        assert all(p.subquestion for p in inside)


def test_subquestion_sections_in_a_small_answer(embedder, settings):
    text = (
        "Intro text here. Q1: How do I pay? A: By card. "
        "Q2: Can I get a refund? A: Yes, within days. "
        "[FAQ] Why is the page slow? Because of load."
    )
    passages = chunk_entries([entry(text)], embedder.count_tokens, settings)
    assert [p.subquestion for p in passages] == [
        None,
        "How do I pay?",
        "Can I get a refund?",
        "Why is the page slow?",
    ]
    assert passages[1].text == "Q1: How do I pay? A: By card."


@pytest.mark.parametrize(
    "text",
    [
        "x" * 20_000,
        "a," * 3_000,
        "ab.cd" * 2_000,
        "word " * 3_000,
        "супер " * 3_000,
        "中文字" * 3_000,
        "😀 " * 2_000,
        "Q1: " + "why " * 400 + "? A: because.",
        "[FAQ] " + "long " * 300 + "? answer here.",
    ],
    ids=[
        "giant-word",
        "punctuated-word",
        "dotted-word",
        "giant-sentence",
        "cyrillic",
        "cjk",
        "emoji",
        "long-q",
        "long-faq",
    ],
)
def test_huge_input_is_cut_within_the_limit(embedder, settings, text):
    item = entry(text.strip())
    passages = chunk_entries([item], embedder.count_tokens, settings)
    assert_fits(passages, [item], embedder, settings.max_tokens)
    assert passages[0].start == 0
    assert passages[-1].end == len(item.text)


def test_tight_limit_is_still_kept(embedder):
    item = entry(" ".join(f"Parcel rule {i} applies to orders." for i in range(40)))
    tight = ChunkSettings(max_tokens=40, target_tokens=20)
    passages = chunk_entries([item], embedder.count_tokens, tight)
    assert_fits(passages, [item], embedder, 40)


def sentences_text(count: int) -> str:
    return " ".join(
        f"Sentence {i} talks about shipping rules for parcels." for i in range(count)
    )


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_overlap_repeats_sentences_between_passages(embedder, overlap):
    item = entry(sentences_text(60))
    chosen = ChunkSettings(max_tokens=256, target_tokens=64, overlap_sentences=overlap)
    passages = chunk_entries([item], embedder.count_tokens, chosen)
    assert len(passages) > 3
    for before, after in zip(passages, passages[1:]):
        shared = [s for s in after.sentences if s in before.sentences]
        assert len(shared) == overlap
        assert after.start > before.start


def test_passages_cover_the_whole_answer(embedder, settings):
    item = entry(sentences_text(80))
    passages = chunk_entries([item], embedder.count_tokens, settings)
    covered = set()
    for passage in passages:
        covered.update(range(passage.start, passage.end))
    letters = {i for i, c in enumerate(item.text) if not c.isspace()}
    assert letters <= covered


def test_key_text_adds_subquestion_only_when_absent():
    assert key_text("Topic?", None, "Body.") == "Topic?\nBody."
    assert key_text("Topic?", "Sub?", "Q: Sub? A: Body.") == "Topic?\nQ: Sub? A: Body."
    assert key_text("Topic?", "Sub?", "Body.") == "Topic? Sub?\nBody."


def test_question_too_long_for_the_model_is_a_corpus_error(embedder, settings):
    item = entry("Short answer.", topic="word " * 300)
    with pytest.raises(CorpusError, match=r"faq\.jsonl:3: question 'word"):
        chunk_entries([item], embedder.count_tokens, settings)
