"""Search: exact top topics on a small FAQ, mended spelling, word coverage."""

from __future__ import annotations

import os
from collections import Counter

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_jsonl  # noqa: E402

from app.index import build_index, load_index  # noqa: E402
from app.search import Searcher, SearchSettings, Speller  # noqa: E402

FAQ = [
    {"id": "blacklist", "question": "How do I check the blacklist?", "answer": "Open Customer management and choose Blacklist. Blocked buyers are listed there with the date they were added."},
    {"id": "loan", "question": "How do I apply for the business loan?", "answer": "Apply on the Finance page with your company licence. The daily interest rate is 0.05 percent. The legal representative must be between 18 and 65 years old."},
    {"id": "coupon", "question": "How do I create a store coupon?", "answer": "Go to Marketing and choose Store coupons. Set the discount, the minimum order amount and the dates. Fans-only coupons appear on the store's follow page."},
    {"id": "warehouse", "question": "How long does delivery from the Russian warehouse take?", "answer": "Orders from the Russian overseas warehouse reach Moscow in two to three days. Other regions take up to seven days."},
    {"id": "password", "question": "How do I change my account password?", "answer": "Click Forgot password on the login page to reset it. A signed-in user can set a new password under Account settings."},
]  # fmt: skip


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder) -> Searcher:
    folder = tmp_path_factory.mktemp("search")
    corpus = write_jsonl(folder / "faq.jsonl", FAQ)
    build_index(corpus, folder / "index", embedder, show_progress=False)
    return Searcher(load_index(folder / "index"), embedder)


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("where do I see the buyers I blocked", "How do I check the blacklist?"),
        ("interest rate of the loan", "How do I apply for the business loan?"),
        ("how old must the legal representative be", "How do I apply for the business loan?"),
        ("how many days to moscow", "How long does delivery from the Russian warehouse take?"),
        ("where do fans-only coupons show up", "How do I create a store coupon?"),
        ("blaklist", "How do I check the blacklist?"),
        ("bussiness lone intrest", "How do I apply for the business loan?"),
        ("forgot my login pasword", "How do I change my account password?"),
    ],
)  # fmt: skip
def test_search_ranks_the_answering_topic_first(searcher, question, topic):
    _, hits = searcher.search(question, top_k=5)
    assert hits[0].topic == topic


def test_search_ranks_each_topic_once(searcher):
    _, hits = searcher.search("coupon", top_k=10)
    topics = [hit.topic for hit in hits]
    assert len(topics) == len(set(topics)) == len(FAQ)


def test_mended_spelling_can_be_switched_off(searcher):
    plain = Searcher(
        searcher.index, searcher.embedder, SearchSettings(mend_spelling=False)
    )
    _, mended = searcher.search("blaklist", top_k=1)
    _, unmended = plain.search("blaklist", top_k=1)
    assert mended[0].dense > unmended[0].dense


@pytest.mark.parametrize(
    ("question", "low"),
    [
        ("how do I check the blacklist", False),
        ("can I start a livestream in Brazil", True),
    ],
)
def test_coverage_is_low_for_words_the_faq_lacks(searcher, question, low):
    _, hits = searcher.search(question, top_k=1)
    assert (hits[0].coverage < 0.5) is low


@pytest.fixture
def speller() -> Speller:
    words = "blacklist business interest coupon country account management"
    return Speller(Counter(words.split()), known={"lone", "blocked"})


@pytest.mark.parametrize(
    ("text", "mended"),
    [
        ("blaklist buyers", "blacklist buyers"),
        ("bussiness lone intrest", "business lone interest"),
        ("store cupon by contry", "store coupon by country"),
        ("acount managment", "account management"),
        ("blocked buyers", "blocked buyers"),
        ("brazil", "brazil"),
        ("abc", "abc"),
    ],
)
def test_speller_mends_words_one_edit_away(speller, text, mended):
    assert speller.mend(text) == mended


@pytest.mark.parametrize(
    ("counts", "expected"),
    [({"store": 9, "stare": 1}, "store"), ({"store": 1, "stare": 9}, "stare")],
)
def test_speller_prefers_the_more_frequent_word(counts, expected):
    assert Speller(Counter(counts)).nearest("stire") == expected


def test_speller_keeps_unknown_words_of_many_edits(speller):
    assert speller.nearest("spreadsheet") is None
