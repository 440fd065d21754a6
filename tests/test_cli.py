"""The command line, run as users run it: `python -m app build|ask`."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import SMALL_FAQ, write_jsonl
from conftest import run_app as run

from app.index import read_manifest

CONTRACT = {"question", "found", "answer", "citations", "passages"}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """A corpus and the index `python -m app build` made from it."""
    folder = tmp_path_factory.mktemp("cli")
    corpus = write_jsonl(folder / "faq.jsonl", SMALL_FAQ)
    index = folder / "index"
    result = run("build", "--corpus", str(corpus), "--index", str(index))
    return corpus, index, result


def test_build_writes_an_index(built):
    corpus, index, result = built
    assert result.returncode == 0, result.stderr
    assert f"{len(SMALL_FAQ)} entries" in result.stdout
    assert read_manifest(index)["entries"] == len(SMALL_FAQ)


def test_ask_json_prints_one_object_per_question(built):
    corpus, index, _ = built
    result = run(
        "ask", "--index", str(index), "--corpus", str(corpus), "--json",
        "I forgot my password", "what's the weather in Moscow?",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    assert CONTRACT <= set(first) and CONTRACT <= set(second)
    assert first["found"] is True
    assert first["citations"][0]["topic"] == "How can I reset my account password?"
    assert second["found"] is False
    assert second["citations"] == []


def test_ask_reads_stdin_and_reports_an_empty_line(built):
    corpus, index, _ = built
    questions = "how long does shipping abroad take?\n\nI forgot my password\n"
    result = run(
        "ask", "--index", str(index), "--corpus", str(corpus), "--json",
        stdin=questions,
    )  # fmt: skip
    assert result.returncode == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 3
    assert rows[0]["found"] and rows[2]["found"]
    assert rows[1]["question"] == "" and "empty" in rows[1]["error"]
    assert len(error_lines(result.stderr)) == 1


def test_corpus_without_a_searchable_word_is_one_error_line(tmp_path):
    corpus = write_jsonl(tmp_path / "faq.jsonl", [{"question": "A?", "answer": "B."}])
    result = run("build", "--corpus", str(corpus), "--index", str(tmp_path / "i"))
    assert result.returncode == 2
    assert "no entry holds a searchable word" in error_lines(result.stderr)[0]
    assert "Traceback" not in result.stderr


def test_serve_on_a_taken_port_is_one_error_line(built):
    corpus, index, _ = built
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = run("serve", "--index", str(index), "--corpus", str(corpus),
                     "--port", port)  # fmt: skip
    assert result.returncode == 2
    assert "choose another port with --port" in error_lines(result.stderr)[0]
    assert "Traceback" not in result.stderr


def test_broken_corpus_is_one_error_line_and_keeps_the_index(built, tmp_path):
    corpus, index, _ = built
    before = snapshot(index)
    broken = tmp_path / "faq.csv"
    broken.write_text("question,reply\nQ?,A.\n", encoding="utf-8")
    result = run("build", "--corpus", str(broken), "--index", str(index))
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1
    assert re.fullmatch(
        rf"error: {re.escape(str(broken))}:1: missing column 'answer'; .*", lines[0]
    )
    assert "Traceback" not in result.stderr
    assert snapshot(index) == before


def test_ask_with_another_corpus_keeps_the_index(built, tmp_path):
    _, index, _ = built
    before = snapshot(index)
    changed = write_jsonl(tmp_path / "faq.jsonl", SMALL_FAQ[:2])
    result = run(
        "ask", "--index", str(index), "--corpus", str(changed),
        "I forgot my password",
    )  # fmt: skip
    assert result.returncode == 2
    lines = error_lines(result.stderr)
    assert len(lines) == 1
    assert "was built from" in lines[0]
    assert "python -m app build" in lines[0]
    assert result.stdout == ""
    assert snapshot(index) == before
