"""Shared fixtures: the real bundled model (loaded once), a small FAQ with
known answers, and an index built from it once per test session."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# No test may reach a model hub; the bundled model is read from disk.
os.environ["HF_HUB_OFFLINE"] = "1"

from app.bot import FaqBot  # noqa: E402
from app.embed import Embedder  # noqa: E402
from app.index import build_index, load_index  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CORPUS = REPO / "corpus" / "seller_help_faq.txt"

SMALL_FAQ = [
    {"id": "returns", "question": "How do I accept a return from a buyer?", "answer": "Open the order and choose Accept return. The buyer then ships the item back with the label we email. The refund is paid once the parcel arrives at your warehouse."},
    {"id": "shipping", "question": "How long does international shipping take?", "answer": "Standard international shipping takes ten to twenty days. Express shipping arrives within five working days. Remote regions may take longer."},
    {"id": "password", "question": "How can I reset my account password?", "answer": "Click Forgot password on the sign-in page. A reset link is sent to your email address. The link stays valid for one hour."},
    {"id": "coupons", "question": "How do I create a store coupon?", "answer": "Go to Marketing and choose Store coupons. Set the discount, the minimum order amount and the dates. Publish the coupon to show it on your store page."},
    {"id": "payouts", "question": "When are seller payouts sent to my bank account?", "answer": "Payouts are sent every Monday for orders completed in the previous week. Money reaches your bank account within three working days."},
    {"id": "deletion", "question": "How do I delete my seller account?", "answer": "Close every open order first. Then open Account settings and choose Delete account. Deletion is final and cannot be undone."},
]  # fmt: skip

_CITED = re.compile(r"\s*(.+?) \[(\d+)\]")


def run_app(
    *args: str, stdin: str | None = None, cwd: Path = REPO, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run `python -m app ARGS` in a fresh process, offline, and capture it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write `rows` as a JSON Lines FAQ file and return its path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cited_sentences(answer: str) -> list[tuple[str, int]]:
    """Split an answer into `(sentence, n)` pairs, `n` being its `[n]` mark."""
    pairs = [(m.group(1), int(m.group(2))) for m in _CITED.finditer(answer)]
    assert " ".join(f"{s} [{n}]" for s, n in pairs) == answer
    return pairs


def assert_extractive(reply, texts_by_topic: dict[str, str]) -> None:
    """Every answer sentence is, up to letter case, a substring of the
    cleaned text of the topic its mark cites."""
    topics = {c.n: c.topic for c in reply.citations}
    pairs = cited_sentences(reply.answer)
    assert pairs
    for sentence, n in pairs:
        assert sentence.lower() in texts_by_topic[topics[n]].lower(), sentence


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    return Embedder()


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """The six-entry FAQ of `SMALL_FAQ` as a JSON Lines file."""
    return write_jsonl(tmp_path_factory.mktemp("corpus") / "faq.jsonl", SMALL_FAQ)


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, small_corpus, embedder) -> Path:
    """An index of the small FAQ, built once; tests must not change it."""
    folder = tmp_path_factory.mktemp("index")
    build_index(small_corpus, folder, embedder, show_progress=False)
    return folder


@pytest.fixture(scope="session")
def small_bot(small_index, embedder) -> FaqBot:
    """A bot over the small FAQ's index, sharing the session's model."""
    return FaqBot(load_index(small_index), embedder)
