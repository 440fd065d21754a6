"""Votes on answers: where they are kept, that none is lost, and the export."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402
import httpx  # noqa: E402
from gradio_client import Client  # noqa: E402

from app import feedback  # noqa: E402
from app.answer import Reply  # noqa: E402
from app.cli import main  # noqa: E402
from app.errors import FeedbackError  # noqa: E402
from app.feedback import FeedbackStore, data_dir, export  # noqa: E402
from app.ui import launch, make_like, make_respond, new_session  # noqa: E402

REPLY = {
    "question": "how do I refund a buyer?",
    "found": True,
    "answer": "Open the order page and choose Refund. [1]",
    "citations": [{"n": 1, "topic": "How do I refund a buyer?", "score": 0.91}],
    "passages": [],
    "closest": [],
    "notice": None,
}
HASH = "ab" * 32
REPO = Path(__file__).resolve().parent.parent
WRITERS = 32
VOTES_EACH = 20


def test_data_dir_explicit_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("FAQ_DATA_DIR", str(tmp_path / "env"))

    assert data_dir(tmp_path / "cli") == tmp_path / "cli"


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FAQ_DATA_DIR", str(tmp_path / "env"))

    assert data_dir() == tmp_path / "env"


@pytest.mark.parametrize(
    ("space", "storage_exists", "expected"),
    [(True, True, "space"), (True, False, "repo"), (False, True, "repo")],
)
def test_data_dir_uses_space_storage_only_on_a_space(
    tmp_path, monkeypatch, space, storage_exists, expected
):
    storage = tmp_path / "persistent"
    if storage_exists:
        storage.mkdir()
    monkeypatch.delenv("FAQ_DATA_DIR", raising=False)
    monkeypatch.setattr(feedback, "SPACE_DATA", storage)
    if space:
        monkeypatch.setenv("SPACE_ID", "someone/faq-chat")
    else:
        monkeypatch.delenv("SPACE_ID", raising=False)

    wanted = {"space": storage, "repo": feedback.DEFAULT_DATA}[expected]
    assert data_dir() == wanted


def test_vote_is_stored_with_reply_and_index_hash(tmp_path):
    store = FeedbackStore(tmp_path)
    store.record(False, REPLY, HASH)

    (row,) = store.rows()
    assert row["liked"] is False
    assert row["question"] == REPLY["question"]
    assert row["answer"] == REPLY["answer"]
    assert row["citations"] == REPLY["citations"]
    assert row["found"] is True
    assert row["manifest_sha256"] == HASH
    assert row["created_at"].endswith("Z")


def test_database_runs_in_wal_mode(tmp_path):
    FeedbackStore(tmp_path).record(True, REPLY, HASH)

    with sqlite3.connect(tmp_path / feedback.DATABASE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unwritable_data_folder_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(FeedbackError, match="cannot create the data folder"):
        FeedbackStore(blocker / "data")


def _vote_many(folder: str, writer: int) -> None:
    store = FeedbackStore(folder)
    for n in range(VOTES_EACH):
        store.record(n % 2 == 0, {**REPLY, "question": f"w{writer} n{n}"}, HASH)


def test_concurrent_threads_lose_no_vote(tmp_path):
    threads = [
        threading.Thread(target=_vote_many, args=(str(tmp_path), w))
        for w in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    questions = {row["question"] for row in FeedbackStore(tmp_path).rows()}
    assert len(questions) == WRITERS * VOTES_EACH


# Each process imports only the store, so 32 of them start in a moment.
_WRITER = """
import sys
from app.feedback import FeedbackStore
store = FeedbackStore(sys.argv[1])
for n in range(int(sys.argv[3])):
    store.record(n % 2 == 0, {"question": f"p{sys.argv[2]} n{n}"}, "ab" * 32)
"""


def test_concurrent_processes_lose_no_vote(tmp_path):
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), str(w), str(VOTES_EACH)],
            cwd=REPO,
        )
        for w in range(WRITERS)
    ]

    assert [p.wait(timeout=120) for p in processes] == [0] * WRITERS
    questions = {row["question"] for row in FeedbackStore(tmp_path).rows()}
    assert len(questions) == WRITERS * VOTES_EACH


class _FakeBot:
    """Answers every question with the same reply, from a one-topic index."""

    manifest_sha256 = HASH
    corpus = None

    def __init__(self, folder: Path | None = None):
        topic = SimpleNamespace(topic=REPLY["citations"][0]["topic"])
        self.index = SimpleNamespace(entries={"refund": topic}, folder=folder)

    def ask(self, question):
        return Reply(question, True, REPLY["answer"])


def _chat(turns: int) -> dict:
    respond, session = make_respond(_FakeBot()), new_session()
    for turn in range(turns):
        *_, session = respond(f"question {turn}", session)
    return session


def _like(session: dict, index: int, liked) -> gr.LikeData:
    shown = [m["content"] for m in session["messages"][index : index + 1]]
    return gr.LikeData(None, {"index": index, "value": shown, "liked": liked})


@pytest.mark.parametrize("liked", [True, False])
def test_like_on_a_reply_stores_that_reply(tmp_path, liked):
    store = FeedbackStore(tmp_path)
    session = _chat(3)

    make_like(_FakeBot(), store)(session, _like(session, 3, liked))

    (row,) = store.rows()
    assert row["question"] == "question 1"
    assert row["liked"] is liked
    assert row["manifest_sha256"] == HASH


@pytest.mark.parametrize(
    ("index", "liked"), [(2, True), (3, ""), (3, "Other"), (40, True)]
)
def test_like_on_no_reply_stores_nothing(tmp_path, index, liked):
    store = FeedbackStore(tmp_path)
    session = _chat(5)

    make_like(_FakeBot(), store)(session, _like(session, index, liked))

    assert store.count() == 0


def test_like_on_the_served_chat_is_stored(tmp_path):
    """A vote sent the way the browser sends it lands in the database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = launch(_FakeBot(tmp_path), port=port, data=tmp_path, block=False)
    try:
        url = f"http://127.0.0.1:{port}"
        client = Client(url, verbose=False, analytics_enabled=False)
        client.predict("how do I refund a buyer?", api_name="/chat")
        event = _vote_over_http(url, client.session_hash, index=1, liked=True)
    finally:
        demo.close()

    assert event["success"]
    (row,) = FeedbackStore(tmp_path).rows()
    assert row["question"] == "how do I refund a buyer?"
    assert row["liked"] is True


def _vote_over_http(url: str, session_hash: str, index: int, liked: bool) -> dict:
    """Send a like event as the browser does; return its completion message."""
    config = httpx.get(f"{url}/config").json()
    (chatbot,) = [c["id"] for c in config["components"] if c["type"] == "chatbot"]
    (like,) = [
        d["id"] for d in config["dependencies"] if [chatbot, "like"] in d["targets"]
    ]
    body = {
        "data": [None],
        "event_data": {"index": index, "value": [], "liked": liked},
        "fn_index": like,
        "trigger_id": chatbot,
        "session_hash": session_hash,
    }
    httpx.post(f"{url}/gradio_api/queue/join", json=body).raise_for_status()
    stream = f"{url}/gradio_api/queue/data"
    with httpx.stream("GET", stream, params={"session_hash": session_hash}) as events:
        for line in events.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the server closed the stream before the vote completed")


def test_export_csv_and_jsonl_hold_every_vote(tmp_path):
    store = FeedbackStore(tmp_path)
    store.record(True, REPLY, HASH)
    store.record(False, {**REPLY, "question": 'a "quoted", comma'}, HASH)

    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    export(store.rows(), "csv", as_csv)
    export(store.rows(), "jsonl", as_jsonl)

    rows = list(csv.DictReader(io.StringIO(as_csv.getvalue())))
    lines = [json.loads(line) for line in as_jsonl.getvalue().splitlines()]
    assert [r["question"] for r in rows] == [REPLY["question"], 'a "quoted", comma']
    assert json.loads(rows[0]["citations"]) == REPLY["citations"]
    assert lines == list(store.rows())


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_cli_export_writes_to_stdout(tmp_path, capsys, fmt):
    FeedbackStore(tmp_path).record(True, REPLY, HASH)

    assert main(["feedback", "export", "--format", fmt, "--data", str(tmp_path)]) == 0
    assert REPLY["question"] in capsys.readouterr().out


def test_cli_export_refuses_to_overwrite_without_force(tmp_path, capsys):
    FeedbackStore(tmp_path).record(True, REPLY, HASH)
    out = tmp_path / "votes.jsonl"
    out.write_text("keep me\n")
    args = ["feedback", "export", "--format", "jsonl", "--data", str(tmp_path)]

    assert main([*args, "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert main([*args, "--out", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["question"] == REPLY["question"]


def test_cli_export_into_a_missing_folder_is_one_line(tmp_path, capsys):
    FeedbackStore(tmp_path).record(True, REPLY, HASH)
    out = tmp_path / "no-such-folder" / "votes.csv"
    args = ["feedback", "export", "--data", str(tmp_path), "--out", str(out)]

    assert main(args) == 2
    assert "cannot write" in capsys.readouterr().err


def test_cli_export_names_folder_without_feedback(tmp_path, capsys):
    assert main(["feedback", "export", "--data", str(tmp_path / "none")]) == 2
    assert "no feedback stored" in capsys.readouterr().err


def test_unknown_export_format_is_named():
    with pytest.raises(FeedbackError, match="'xml'"):
        export(iter([]), "xml", io.StringIO())
