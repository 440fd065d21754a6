"""Text tools: cleaning, sentence spans, near-duplicates, display case."""

from __future__ import annotations

import pytest

from app.text import (
    clean,
    fold,
    for_display,
    is_shouting,
    near_duplicate,
    sentence_spans,
    strip_markup,
    words,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  two  spaces  ", "two spaces"),
        ("no\u00a0break", "no break"),
        ("zero\u200bwidth", "zero width"),
        ("tab\tand\nnewline", "tab and newline"),
        ("bell\x07 char", "bell char"),
        ("\ufeffbom first", "bom first"),
        ("e\u0301", "\u00e9"),
    ],
)
def test_clean_fixes_spaces_and_controls(raw, expected):
    assert clean(raw) == expected


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One two. Three four! Five?", ["One two.", "Three four!", "Five?"]),
        ("Use e.g. this one. Next.", ["Use e.g. this one.", "Next."]),
        ("Aged 18-65. Next one.", ["Aged 18-65.", "Next one."]),
        (
            "The answer is no. You cannot apply.",
            ["The answer is no.", "You cannot apply."],
        ),
        ("See item No. 5 of the list.", ["See item No. 5 of the list."]),
        (
            "Rules: 1) own a store; 2) be the legal person",
            ["Rules:", "1) own a store;", "2) be the legal person"],
        ),
        ("Step1: open it Step2: close it", ["Step1: open it", "Step2: close it"]),
        ("中文。 下一句。", ["中文。", "下一句。"]),
    ],
)
def test_sentence_spans_split_where_sentences_end(text, expected):
    assert sentences(text) == expected


def test_sentence_spans_respect_start_and_end():
    text = "Skip this. Keep one. Keep two. Skip too."
    start, end = text.index("Keep"), text.index(" Skip too")
    assert sentences_between(text, start, end) == ["Keep one.", "Keep two."]


def sentences_between(text: str, start: int, end: int) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text, start, end)]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("The parcel arrives in five days.", "The parcel arrives in five days!", True),
        ("Refunds take 1 month to arrive.", "Refunds take 2 months to arrive.", False),
        ("Open the order page now.", "Close the store account today.", False),
    ],
)
def test_near_duplicate_needs_same_numbers_and_words(a, b, same):
    assert near_duplicate(a, b) is same


def test_words_and_fold_keep_letters_and_digits_only():
    assert words("Hello, World 42!") == ["hello", "world", "42"]
    assert fold("  A--b  C ") == "a b c"


@pytest.mark.parametrize(
    ("sentence", "shown"),
    [
        (
            "THE PLATFORM WILL FREEZE THE DEPOSIT.",
            "The platform will freeze the deposit.",
        ),
        ("yes. only the administrator can.", "Yes. only the administrator can."),
        ("Keep AliExpress as written.", "Keep AliExpress as written."),
        ("123", "123"),
    ],
)
def test_for_display_changes_only_case(sentence, shown):
    assert for_display(sentence) == shown
    assert for_display(sentence).lower() == sentence.lower()


@pytest.mark.parametrize(
    ("sentence", "shown"),
    [
        ("A: The rate is about 10%.", "The rate is about 10%."),
        ("A2： yes, you can.", "Yes, you can."),
        ("As a seller: you can.", "As a seller: you can."),
        ("A:", "A:"),
    ],
)
def test_for_display_leaves_off_the_answer_label(sentence, shown):
    assert for_display(sentence) == shown


def test_is_shouting_ignores_short_text():
    assert not is_shouting("OK FINE")
    assert is_shouting("THIS IS A LONG SHOUTED SENTENCE")


def test_clean_drops_bidirectional_overrides():
    assert clean("pay\u202eout\u200e acc\u2066ount") == "payout account"


@pytest.mark.parametrize(
    ("typed", "searched"),
    [
        ("<b>password</b> <script>alert(1)</script>", "password"),
        ("reset [my password](https://example.com/x) now", "reset my password now"),
        ("![logo](http://a/b.png) store logo", "logo store logo"),
        ("see www.example.com or https://a.b/c?d=1 please", "see or please"),
        ("<style>p {color: red}</style>refund", "refund"),
        ("is 3 < 5 and 7 > 2?", "is 3 < 5 and 7 > 2?"),
        ("<unclosed script", "<unclosed script"),
    ],
)
def test_strip_markup_keeps_the_words_a_reader_sees(typed, searched):
    assert strip_markup(typed) == searched
