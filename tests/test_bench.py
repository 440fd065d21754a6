"""The bench command: every figure with its floor, on a tiny index."""

from __future__ import annotations

import json

import pytest

from app.bench import BUILT_IN_QUESTIONS, format_figures, load_questions, percentiles
from app.cli import main
from app.errors import QuestionError

FIGURES = (
    "machine.load_average",
    "latency.floor_encode_ms",
    "latency.ask_ms",
    "latency.ask_to_floor_p50",
    "latency.ask_repeated_ms",
    "batch.floor_encode_per_second",
    "batch.ask_many_per_second",
    "batch.ask_many_same_as_ask: 2/2",
    "start.floor_start_s",
    "start.ask_start_s",
    "start.start_to_floor",
    "build.build_s",
    "build.build_cpu_s",
    "build.peak_rss_mb",
    "embed.passages_per_second",
)


@pytest.fixture
def two_questions(tmp_path):
    path = tmp_path / "questions.jsonl"
    rows = [
        {"query": "How do I reset my password?"},
        {"query": "When are payouts sent?"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_bench_prints_every_figure(small_index, small_corpus, two_questions, capsys):
    code = main(
        ["bench", "--index", str(small_index), "--corpus", str(small_corpus)]
        + ["--questions", str(two_questions), "--runs", "1", "--batch", "2"]
    )
    out = capsys.readouterr().out
    assert code == 0
    for name in FIGURES:
        assert name in out


def test_bench_times_the_corpus_the_index_was_built_from(
    small_index, two_questions, capsys
):
    # No --corpus: the build is timed on the FAQ the manifest records.
    code = main(
        ["bench", "--index", str(small_index), "--questions", str(two_questions)]
        + ["--runs", "1", "--batch", "2"]
    )
    assert code == 0
    assert "build.build_s" in capsys.readouterr().out


def test_questions_fall_back_to_built_in_list(tmp_path):
    questions = load_questions(tmp_path / "missing.jsonl", limit=5)
    assert questions == list(BUILT_IN_QUESTIONS[:5])


def test_questions_are_distinct(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "a b"}\n{"query": "a b"}\n{"query": "c d"}\n')
    assert load_questions(path) == ["a b", "c d"]


def test_percentiles_are_in_milliseconds():
    assert percentiles([0.001, 0.002, 0.003]) == {"p50": 2.0, "p99": 2.98}


def test_figures_format_one_line_each():
    text = format_figures({"start": {"ask_start_s": 1.5, "runs": 3}})
    assert text.splitlines() == ["start.ask_start_s: 1.5", "start.runs: 3"]


def test_bench_without_questions_is_refused(small_bot, small_index, small_corpus):
    from app.bench import run_bench

    with pytest.raises(QuestionError, match="at least one question"):
        run_bench(small_bot, small_index, small_corpus, [])
