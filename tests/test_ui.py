"""The real chat, served on 127.0.0.1 and used through gradio_client."""

from __future__ import annotations

import html
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx  # noqa: E402
import pytest  # noqa: E402
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from gradio_client.utils import QueueError  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402

from app import Embedder, FaqBot, build_index, load_index  # noqa: E402
from app.bot import MAX_QUESTION_CHARS  # noqa: E402
from app.ui import MAX_TURNS, _trim, default_title, launch, new_session  # noqa: E402

FAQ = [
    ("refund", "How do I refund a buyer?", "Open the order page and choose Refund. Enter the amount to return to the buyer and confirm. The buyer receives the money within five working days."),
    ("shipping", "How long does international shipping take?", "Standard international shipping takes ten to twenty days. Express shipping arrives within five days. Tracking numbers appear on the order page once the parcel is sent."),
    ("password", "How can I reset my seller account password?", "Click Forgot password on the sign-in page. We send a reset link to the email address of the account. The link stays valid for one hour."),
    ("loan", "What is the interest rate of the business loan?", "The business loan has a daily interest rate of 0.05 percent. Interest is charged only on the amount you draw. You may repay early without any fee."),
    ("coupon", "How do I create a store coupon?", "Go to Marketing and choose Store coupons. Set the discount, the minimum order amount and the dates. The coupon shows on your store page once it starts."),
    ("promotion", "How do I leave a promotion I joined?", "Open the promotion under Marketing and choose Withdraw. Products withdrawn from a running promotion cannot join it again. Leaving a big promotion bars the store from the next one for two months."),
]  # fmt: skip
TOPICS = {question for _, question, _ in FAQ}
# The Markdown renderer of the browser chat keeps raw HTML; so does this one.
MARKDOWN = MarkdownIt("commonmark", {"html": True})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def bot(tmp_path_factory) -> FaqBot:
    folder = tmp_path_factory.mktemp("faq")
    lines = [json.dumps({"id": i, "question": q, "answer": a}) for i, q, a in FAQ]
    (folder / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    embedder = Embedder()
    build_index(folder / "faq.jsonl", folder / "index", embedder, show_progress=False)
    return FaqBot(load_index(folder / "index"), embedder)


@pytest.fixture(scope="module")
def url(bot, tmp_path_factory):
    port = free_port()
    demo = launch(bot, port=port, data=tmp_path_factory.mktemp("data"), block=False)
    yield f"http://127.0.0.1:{port}"
    demo.close()


@pytest.fixture
def client(url) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def chat(client: Client, question: str) -> tuple[str, str, str]:
    """Ask through the chat; return the user message, the reply message and
    the passages text as the browser receives them."""
    _, messages, passages = client.predict(question, api_name="/chat")
    user, reply = messages[-2:]
    return text_of(user), text_of(reply), passages


def text_of(message: dict) -> str:
    return "".join(part["text"] for part in message["content"])


def shown(markdown: str) -> tuple[str, list[str]]:
    """What a reader sees when `markdown` is rendered: the visible text and
    the HTML tags it produced."""
    rendered = MARKDOWN.render(markdown)
    tags = re.findall(r"<\s*([a-zA-Z0-9]+)", rendered)
    return html.unescape(re.sub(r"<[^>]*>", "", rendered)).strip(), tags


def test_answer_cites_expected_topic(client):
    _, reply, _ = chat(client, "how do I give the buyer their money back?")

    assert "**Sources**" in reply
    assert "How do I refund a buyer?" in shown(reply)[0]
    assert "**[1]**" in reply


def test_off_topic_question_is_declined(client):
    _, reply, _ = chat(client, "What is the capital of France?")

    assert "The FAQ does not cover this question" in shown(reply)[0]
    assert "**Sources**" not in reply


def test_passages_text_has_scores(client):
    _, _, passages = chat(client, "how long does shipping abroad take?")

    scores = re.findall(r"\*\*(\d\.\d{3})\*\*", passages)
    assert scores
    assert "How long does international shipping take?" in shown(passages)[0]


def test_example_questions_come_from_corpus(url):
    config = httpx.get(f"{url}/config").json()
    samples = [
        sample[0]
        for component in config["components"]
        if component.get("type") == "dataset"
        for sample in component["props"]["samples"]
    ]

    assert samples
    assert set(samples) <= TOPICS


@pytest.mark.parametrize(
    "question",
    [
        "<script>alert('refund')</script> how do I refund a buyer?",
        "<img src=x onerror=alert(1)> refund",
        "![x](http://127.0.0.1:9/x.png) how do I refund?",
        "[click here](http://127.0.0.1:9/) to refund",
        "<a href='http://127.0.0.1:9/'>refund</a> **bold** _it_ `code` # head",
        "<b>refund</b> &lt;b&gt; &amp; | table | --- |",
    ],
)
def test_markup_in_question_is_shown_as_inert_text(client, question):
    user, reply, _ = chat(client, question)
    text, tags = shown(user)

    assert text == question
    assert set(tags) <= {"p"}
    assert "://" not in user  # no bare URL left for the chat to turn into a link
    assert set(shown(reply)[1]) <= {"p", "em", "strong", "ol", "ul", "li"}


@pytest.mark.parametrize(
    "question",
    [
        "😀 how do I refund a buyer? 🙏",
        "كيف أعيد المال إلى المشتري؟",
        "如何给买家退款？",
        "Как вернуть деньги покупателю?",
        "\u202eredun\u202c refund \u200f?",
    ],
)
def test_unicode_questions_are_answered_or_declined(client, question):
    user, reply, _ = chat(client, question)

    # Marks that reorder text are dropped, so a message cannot spoof its look.
    visible = re.sub("[\u200e\u200f\u202a-\u202e]", "", question)
    assert shown(user)[0] == visible
    assert "**Sources**" in reply or "does not cover" in reply


def test_control_characters_are_dropped(client):
    user, reply, _ = chat(client, "how do I\x00 refund\x07 a\x1b buyer?\x7f")

    assert shown(user)[0] == "how do I refund a buyer?"
    assert "How do I refund a buyer?" in shown(reply)[0]


@pytest.mark.parametrize("question", ["", "   \n\t ", "\x00\x01\x02", "?!?", "😀"])
def test_empty_question_gets_message_and_server_keeps_serving(client, question):
    with pytest.raises(AppError, match="please type a question"):
        client.predict(question, api_name="/chat")
    with pytest.raises(AppError, match="please type a question"):
        client.predict(question, api_name="/ask")

    assert client.predict("how do I refund a buyer?", api_name="/ask")["found"]


def test_long_question_is_cut_and_user_told_in_chat(client):
    user, reply, _ = chat(client, "refund " * 15_000)

    assert len(shown(user)[0]) <= MAX_QUESTION_CHARS
    assert f"cut to its first {MAX_QUESTION_CHARS:,} characters" in shown(reply)[0]


def test_conversation_keeps_every_turn_in_order(client):
    questions = ["how do I refund a buyer?", "What is the capital of France?"]
    for question in questions:
        _, messages, _ = client.predict(question, api_name="/chat")

    assert [text_of(m) for m in messages[::2]][-2:] == questions
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)


def test_long_conversation_keeps_last_turns_with_their_replies():
    session = new_session()
    for turn in range(MAX_TURNS + 3):
        messages = session["messages"] + [{"content": f"q{turn}"}, {"content": "a"}]
        replies = {**session["replies"], len(messages) - 1: {"question": f"q{turn}"}}
        session = _trim({"messages": messages, "replies": replies})

    assert len(session["messages"]) == 2 * MAX_TURNS
    assert all(
        session["replies"][i]["question"] == session["messages"][i - 1]["content"]
        for i in range(1, 2 * MAX_TURNS, 2)
    )


def test_flood_is_told_queue_is_full_and_served_after(bot, tmp_path):
    release = threading.Event()

    class HeldBot:
        """Holds every answer until the flood has been turned away."""

        index, manifest_sha256, corpus = bot.index, bot.manifest_sha256, bot.corpus

        def ask(self, question, top_k=5):
            release.wait(timeout=60)
            return bot.ask(question, top_k)

    port = free_port()
    demo = launch(
        HeldBot(), port=port, data=tmp_path, block=False, max_queue=2, concurrency=1
    )
    try:
        flood = Client(
            f"http://127.0.0.1:{port}", verbose=False, analytics_enabled=False
        )
        jobs = [flood.submit("how do I refund?", api_name="/ask") for _ in range(12)]
        # One answer runs and two wait; the other nine are turned away at once.
        for _ in range(600):
            if sum(job.done() for job in jobs) >= len(jobs) - 3:
                break
            time.sleep(0.05)
        release.set()
        outcomes = [_outcome(job) for job in jobs]
        after = flood.predict("how do I refund a buyer?", api_name="/ask")
    finally:
        demo.close()

    assert outcomes.count("Queue is full! Please try again.") == len(jobs) - 3
    assert outcomes.count(True) == 3
    assert after["found"]


def _outcome(job) -> bool | str:
    try:
        return job.result()["found"]
    except QueueError as err:
        return str(err)


@pytest.mark.parametrize(
    ("corpus", "title"),
    [
        (None, "FAQ"),
        ("corpus/seller_help_faq.txt", "Seller help FAQ"),
        ("/tmp/pet_care.csv", "Pet care FAQ"),
        ("/tmp/shop-faq.jsonl", "Shop faq"),
    ],
)
def test_page_title_follows_the_corpus(bot, corpus, title):
    bot.corpus = Path(corpus) if corpus else None
    try:
        assert default_title(bot) == title
    finally:
        bot.corpus = None


def test_served_page_carries_its_title(url):
    config = httpx.get(url + "/config", timeout=30).json()
    assert config["title"] == "FAQ"
