"""Properties over random text: control characters, emoji, right-to-left
and CJK scripts, Cyrillic, HTML and sentence punctuation mixed freely."""

from __future__ import annotations

import re

from conftest import SMALL_FAQ, assert_extractive
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.chunk import ChunkSettings, chunk_entries
from app.corpus import Entry, drop_repeats
from app.errors import QuestionError
from app.text import clean, sentence_spans, words

FRAGMENTS = [
    "Hello world", "Open the order page.", "Q1: How do I pay? A: By card.",
    "[FAQ] Why is it slow?", "1) first", "2) second;", "Step3: done.", "e.g. this",
    "18-65.", "مرحبا بالعالم.", "שלום עולם", "\u202eRTL override", "中文句子。",
    "日本語のテキスト！", "Привет, мир.", "<b>bold</b>", "<script>x()</script>",
    "&nbsp;", "😀🎉", "👩‍👩‍👧", "\u00a0", "\u200b", "\ufeff", "\x00", "\x07", "\x1b[31m",
    "\t", "\n", "\r\n", "\x85", "\u2028", "  ", "...", "?!", ",", ";", ":", "é", "e\u0301",
    "Ω", "x" * 300, "supercalifragilistic" * 20,
]  # fmt: skip
SOME_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)),
        max_size=60,
    ).map(" ".join),
)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SMALL_TEXTS = {row["question"]: row["answer"] for row in SMALL_FAQ}
QUICK = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@QUICK
@given(SOME_TEXT)
def test_clean_leaves_no_controls_or_double_spaces(text):
    cleaned = clean(text)
    assert not CONTROL.search(cleaned)
    assert "  " not in cleaned
    assert "\u00a0" not in cleaned
    assert cleaned == cleaned.strip()
    assert clean(cleaned) == cleaned


@QUICK
@given(SOME_TEXT)
def test_sentence_spans_cover_the_text_in_order(text):
    text = clean(text)
    spans = sentence_spans(text)
    position = 0
    for start, end in spans:
        assert position <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip()
        # Only spaces and the commas or semicolons between units are skipped.
        assert set(text[position:start]) <= {" ", ",", ";"}
        position = end
    assert set(text[position:]) <= {" ", ",", ";"}


@QUICK
@given(SOME_TEXT)
def test_drop_repeats_keeps_only_input_sentences(text):
    text = clean(text)
    kept = drop_repeats(text)
    assert len(kept) <= len(text)
    for start, end in sentence_spans(kept):
        assert kept[start:end] in text


@QUICK
@given(SOME_TEXT, st.text(min_size=1, max_size=80))
def test_chunk_entries_fit_the_token_limit(embedder, text, topic):
    body = drop_repeats(clean(text))
    topic = clean(topic) or "Topic?"
    if not body:
        return
    entry = Entry(id="e", topic=topic, text=body, source="faq.jsonl", line=1)
    limit = embedder.max_seq_length
    passages = chunk_entries([entry], embedder.count_tokens, ChunkSettings(limit))
    assert passages
    assert max(embedder.count_tokens([p.key_text for p in passages])) <= limit
    for passage in passages:
        assert passage.text == body[passage.start : passage.end]


@QUICK
@given(SOME_TEXT)
def test_answers_to_random_questions_are_extractive(small_bot, question):
    try:
        reply = small_bot.ask(question)
    except QuestionError:
        assert not words(clean(question)[:1_000])
        return
    if reply.found:
        assert_extractive(reply, SMALL_TEXTS)
    else:
        assert reply.citations == []
        assert reply.closest
