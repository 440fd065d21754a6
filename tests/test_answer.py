"""Answers with the real model: extractive, cited, refused when the FAQ does
not cover the question, and shaped as the JSON contract says."""

from __future__ import annotations

import json

import pytest
from conftest import (
    SHIPPED_CORPUS,
    SMALL_FAQ,
    assert_extractive,
    cited_sentences,
    write_jsonl,
)

from app.answer import NOT_COVERED
from app.bot import MAX_QUESTION_CHARS, FaqBot
from app.corpus import load_corpus
from app.errors import QuestionError
from app.index import build_index, load_index
from app.text import near_duplicate

SMALL_TEXTS = {row["question"]: row["answer"] for row in SMALL_FAQ}
EXIT_TOPICS = {
    "How to exit platform activities?",
    "The product has been reviewed how to exit the platform activity",
    "How to exit the platform activity after the product has been reviewed?",
}


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("How do I accept a return?", "How do I accept a return from a buyer?"),
        ("how long does shipping abroad take?", "How long does international shipping take?"),
        ("I forgot my password", "How can I reset my account password?"),
        ("how to make a coupon for my shop", "How do I create a store coupon?"),
        ("when are payouts sent to my bank?", "When are seller payouts sent to my bank account?"),
        ("how can I close my seller account permanently?", "How do I delete my seller account?"),
    ],
)  # fmt: skip
def test_matching_question_is_answered_from_its_entry(small_bot, question, topic):
    reply = small_bot.ask(question)
    assert reply.found
    assert reply.citations[0].topic == topic
    assert reply.citations[0].n == 1
    assert_extractive(reply, SMALL_TEXTS)
    assert reply.closest == []
    assert reply.notice is None


@pytest.mark.parametrize(
    "question",
    ["what's the weather in Moscow?", "Who won the football world cup in 1998?"],
)
def test_off_topic_question_is_refused_with_closest_topics(small_bot, question):
    reply = small_bot.ask(question)
    assert not reply.found
    assert reply.citations == []
    assert reply.answer.startswith(NOT_COVERED)
    assert 1 <= len(reply.closest) <= 3
    assert set(reply.closest) <= set(SMALL_TEXTS)
    for topic in reply.closest:
        assert f'"{topic}"' in reply.answer


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\u00a0\u200b", "?!..."])
def test_empty_question_raises(small_bot, question):
    with pytest.raises(QuestionError):
        small_bot.ask(question)


def test_huge_question_is_cut_with_a_notice(small_bot):
    question = "how long does international shipping take? " * 2_400
    assert len(question) > 100_000
    reply = small_bot.ask(question)
    assert len(reply.question) <= MAX_QUESTION_CHARS
    assert reply.notice and f"{MAX_QUESTION_CHARS:,}" in reply.notice
    assert reply.found
    assert reply.citations[0].topic == "How long does international shipping take?"


def test_reply_has_the_json_contract_shape(small_bot):
    data = json.loads(json.dumps(small_bot.ask("I forgot my password").to_dict()))
    assert {"question", "found", "answer", "citations", "passages"} <= set(data)
    assert data["question"] == "I forgot my password"
    assert data["found"] is True
    assert isinstance(data["answer"], str)
    assert data["citations"]
    for citation in data["citations"]:
        assert set(citation) == {"n", "topic", "score"}
        assert isinstance(citation["n"], int)
        assert isinstance(citation["score"], float)
    assert data["passages"]
    for passage in data["passages"]:
        assert set(passage) == {"topic", "text", "score"}
        assert passage["text"] in SMALL_TEXTS[passage["topic"]]
    scores = [p["score"] for p in data["passages"]]
    assert scores == sorted(scores, reverse=True)


def test_citation_numbers_follow_first_use(small_bot):
    reply = small_bot.ask("how to make a coupon for my shop")
    numbers = [n for _, n in cited_sentences(reply.answer)]
    assert [c.n for c in reply.citations] == list(range(1, len(reply.citations) + 1))
    assert numbers[0] == 1
    assert set(numbers) == {c.n for c in reply.citations}


def test_ask_many_matches_ask(small_bot):
    questions = ["I forgot my password", "what's the weather in Moscow?"]
    batch = small_bot.ask_many(questions)
    assert [r.to_dict() for r in batch] == [
        small_bot.ask(q).to_dict() for q in questions
    ]


@pytest.fixture(scope="module")
def shipped_bot(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("shipped-index")
    build_index(SHIPPED_CORPUS, folder, embedder, show_progress=False)
    return FaqBot(load_index(folder), embedder)


@pytest.fixture(scope="module")
def shipped_texts():
    return {entry.topic: entry.text for entry in load_corpus(SHIPPED_CORPUS)}


YES_NO_FAQ = [
    {
        "question": "Can I cancel my order after it has shipped?",
        "answer": "No. Once the parcel has left our warehouse you can only "
        "return it after delivery.",
    },
    {
        "question": "Do you ship to other countries?",
        "answer": "Yes. We ship to every country of the European Union.",
    },
    {
        "question": "How do I reset my password?",
        "answer": "Click Forgot password on the sign-in page and follow the "
        "link we email you.",
    },
]


def test_a_short_yes_or_no_stays_with_the_sentence_it_opens(tmp_path, embedder):
    corpus = write_jsonl(tmp_path / "faq.jsonl", YES_NO_FAQ)
    build_index(corpus, tmp_path / "index", embedder, show_progress=False)
    bot = FaqBot(load_index(tmp_path / "index"), embedder)

    reply = bot.ask("can I cancel an order that already shipped?")

    assert reply.found
    assert reply.answer.startswith("No. Once the parcel has left")
    texts = {row["question"]: row["answer"] for row in YES_NO_FAQ}
    assert_extractive(reply, texts)


@pytest.mark.parametrize(
    "wrapped",
    [
        "<b>I forgot my password</b> <script>alert(1)</script>",
        "[I forgot my password](https://example.com/help)",
    ],
)
def test_markup_around_a_question_does_not_change_its_answer(small_bot, wrapped):
    plain = small_bot.ask("I forgot my password")
    reply = small_bot.ask(wrapped)
    assert reply.found and reply.answer == plain.answer
    assert reply.question == wrapped  # shown back as typed (escaped by the UI)


def test_shipped_exit_promotion_question_is_found(shipped_bot, shipped_texts):
    reply = shipped_bot.ask("how do I get out of a promotion I signed up for?")
    assert reply.found, reply.answer
    assert reply.citations[0].topic in EXIT_TOPICS
    assert_extractive(reply, shipped_texts)


def test_passages_shown_do_not_repeat_each_other(shipped_bot):
    # The three exit entries share most of their text; each passage once.
    reply = shipped_bot.ask("how do I get out of a promotion I signed up for?")
    texts = [p.text for p in reply.passages]
    assert len(texts) == 5
    for i, text in enumerate(texts):
        assert not any(near_duplicate(text, other) for other in texts[:i])


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("how do i change my account password?", "how do i change my account password?"),
        ("how to check the blacklist?", "how to check the blacklist?"),
        ("what is the interest rate of the AliExpress business loan?", "How to apply and use AliExpress business loan?"),
    ],
)  # fmt: skip
def test_shipped_questions_cite_their_topic(
    shipped_bot, shipped_texts, question, topic
):
    reply = shipped_bot.ask(question)
    assert reply.found
    assert reply.citations[0].topic == topic
    assert_extractive(reply, shipped_texts)


def test_shipped_shouting_answer_is_shown_in_sentence_case(shipped_bot, shipped_texts):
    reply = shipped_bot.ask("how much is the advance lending deposit?")
    assert reply.found
    assert reply.citations[0].topic == "how much is the advance lending deposit?"
    assert_extractive(reply, shipped_texts)
    for sentence, _ in cited_sentences(reply.answer):
        assert sentence != sentence.upper()
