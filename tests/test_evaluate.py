"""The evaluator: metric values on hand-made rankings, question files, the
`eval` command end to end, and the quality the shipped FAQ reaches."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_jsonl  # noqa: E402

from app import FaqBot  # noqa: E402
from app.cli import main  # noqa: E402
from app.errors import CorpusError  # noqa: E402
from app.evaluate import (  # noqa: E402
    DEFAULT_SET,
    EvalQuery,
    Outcome,
    evaluate,
    hit_at,
    load_queries,
    ndcg_at,
    recall_at,
    reciprocal_rank,
    resolve_threads,
    select_split,
    summarize,
)
from app.index import build_index, load_index  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FAQ = [
    {"id": "refund", "question": "How do I refund a buyer?", "answer": "Open the order page and choose Refund. Enter the amount to return and confirm. The buyer receives the money within five working days.", "thread": "money"},
    {"id": "refund-2", "question": "How do I refund a buyer?", "answer": "A partial refund is possible too: enter a smaller amount on the Refund form.", "thread": "money"},
    {"id": "shipping", "question": "How long does international shipping take?", "answer": "Standard international shipping takes ten to twenty days. Express shipping arrives within five days.", "thread": "post"},
    {"id": "password", "question": "How can I reset my account password?", "answer": "Click Forgot password on the sign-in page. We send a reset link to your email address. The link stays valid for one hour.", "thread": "login"},
]  # fmt: skip
QUESTIONS = [
    {"query": "how do I give the buyer their money back?", "topics": ["How do I refund a buyer?"], "kind": "paraphrase", "split": "tune"},
    {"query": "how long does shipping abroad take?", "topics": ["How long does international shipping take?"], "kind": "paraphrase", "split": "heldout"},
    {"query": "I forgot my password", "topics": ["How can I reset my account password?"], "kind": "keyword", "split": "heldout"},
    {"query": "recipe for chocolate chip cookies", "topics": [], "kind": "offtopic", "split": "heldout"},
]  # fmt: skip


@pytest.mark.parametrize(
    ("ranking", "gold", "expected"),
    [
        (["a", "b", "c"], {"a"}, 1.0),
        (["b", "a", "c"], {"a"}, 0.0),
        ([], {"a"}, 0.0),
    ],
)
def test_hit_at_one_checks_first_topic(ranking, gold, expected):
    assert hit_at(ranking, gold, 1) == expected


@pytest.mark.parametrize(
    ("ranking", "gold", "expected"),
    [
        (["a", "b", "c"], {"a"}, 1.0),
        (["x", "y", "a"], {"a", "z"}, 1 / 3),
        (["x", "x", "x", "a"], {"a"}, 1 / 2),
        ([f"t{i}" for i in range(10)] + ["a"], {"a"}, 0.0),
    ],
)
def test_reciprocal_rank_counts_each_topic_once(ranking, gold, expected):
    assert reciprocal_rank(ranking, gold) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranking", "gold", "expected"),
    [
        (["a", "b", "c"], {"a"}, 1.0),
        (["b", "a"], {"a"}, 1 / math.log2(3)),
        (
            ["x", "a", "b"],
            {"a", "b"},
            (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)),
        ),
        (["x", "y"], {"a"}, 0.0),
    ],
)
def test_ndcg_uses_binary_gains(ranking, gold, expected):
    assert ndcg_at(ranking, gold) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("ranking", "gold", "expected"),
    [
        (["a", "b", "c", "d", "e", "f"], {"a", "f"}, 0.5),
        (["a", "a", "b"], {"a", "b"}, 1.0),
        (["x"], {"a"}, 0.0),
    ],
)
def test_recall_at_five(ranking, gold, expected):
    assert recall_at(ranking, gold) == pytest.approx(expected)


def test_summary_counts_refusals_and_kinds():
    queries = [
        EvalQuery("q1", ("a",), "detail"),
        EvalQuery("q2", ("b",), "detail"),
        EvalQuery("q3", (), "offtopic"),
        EvalQuery("q4", (), "offtopic"),
    ]
    outcomes = [
        Outcome(["a", "b"], found=True, first_topic="a", seconds=0.5),
        Outcome(["a", "b"], found=False, seconds=0.5),
        Outcome(["a"], found=False, seconds=0.5),
        Outcome(["b"], found=True, first_topic="b", seconds=0.5),
    ]
    figures = summarize(queries, outcomes)
    assert figures["hit@1"] == 0.5
    assert figures["mrr@10"] == 0.75
    assert (figures["refused_uncovered"], figures["refused_uncovered_rate"]) == (1, 0.5)
    assert (figures["wrongly_refused"], figures["wrongly_refused_rate"]) == (1, 0.5)
    assert figures["first_sentence_gold"] == 1.0
    assert figures["qps"] == 2.0
    assert figures["per_kind"] == {
        "detail": {"questions": 2, "hit@1": 0.5},
        "offtopic": {"questions": 2, "refused": 0.5},
    }


def test_threads_resolve_to_their_topics(tmp_path):
    from app.corpus import load_corpus

    entries = load_corpus(write_jsonl(tmp_path / "faq.jsonl", FAQ))
    queries = resolve_threads([EvalQuery("q", thread="money")], entries)
    assert queries[0].gold == ("How do I refund a buyer?",)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "faq_eval.jsonl:1: not JSON"),
        ('{"topics": []}', "needs a 'query' text"),
        ('{"query": "q", "topics": "a"}', "'topics' must be a list"),
    ],
)
def test_malformed_question_file_names_the_line(tmp_path, line, message):
    path = tmp_path / "faq_eval.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        load_queries(path)


def test_unknown_split_lists_the_splits_found():
    queries = [EvalQuery("q", ("a",), split="tune")]
    with pytest.raises(CorpusError, match=r"no question in split 'heldout'.*tune"):
        select_split(queries, "heldout")


def test_eval_command_prints_figures_as_json(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    questions = write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    code = main(
        ["eval", "--corpus", str(corpus), "--index", str(tmp_path / "index"),
         "--set", str(questions), "--split", "heldout", "--json"]
    )  # fmt: skip
    figures = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (figures["questions"], figures["answerable"], figures["uncovered"]) == (
        3,
        2,
        1,
    )
    assert figures["hit@1"] == 1.0
    assert figures["refused_uncovered"] == 1
    assert figures["wrongly_refused"] == 0
    assert set(figures["per_kind"]) == {"paraphrase", "keyword", "offtopic"}


def test_eval_command_reads_thread_labels(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    questions = write_jsonl(
        tmp_path / "questions.jsonl",
        [
            {"query": "give a buyer their money back", "thread": "money"},
            {"query": "forgot my sign-in password", "thread": "login"},
        ],
    )
    main(
        ["eval", "--corpus", str(corpus), "--index", str(tmp_path / "index"),
         "--set", str(questions), "--json"]
    )  # fmt: skip
    figures = json.loads(capsys.readouterr().out)
    assert (figures["answerable"], figures["hit@1"]) == (2, 1.0)


def test_eval_command_prints_a_table(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "faq.jsonl", FAQ)
    questions = write_jsonl(tmp_path / "questions.jsonl", QUESTIONS)
    main(
        ["eval", "--corpus", str(corpus), "--index", str(tmp_path / "index"),
         "--set", str(questions)]
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()[1:]
    rows = {k.strip(): v.strip() for k, v in (n.rsplit("  ", 1) for n in lines)}
    assert rows["hit@1"] == "1.000"
    assert rows["uncovered refused"] == "1/1 (1.000)"


@pytest.fixture(scope="module")
def shipped_bot(tmp_path_factory, embedder) -> FaqBot:
    folder = tmp_path_factory.mktemp("shipped")
    corpus = REPO / "corpus" / "seller_help_faq.txt"
    build_index(corpus, folder, embedder, show_progress=False)
    return FaqBot(load_index(folder), embedder)


def test_shipped_heldout_ranking_holds_its_level(shipped_bot):
    figures = evaluate(shipped_bot, DEFAULT_SET, "heldout")
    # Measured with the defaults: hit@1 0.935, MRR@10 0.965 on 62 answerable
    # questions; a change that loses one more question fails here.
    assert figures["hit@1"] >= 0.93
    assert figures["mrr@10"] >= 0.96
    assert figures["recall@5"] == 1.0


def test_shipped_heldout_refusals_hold_their_level(shipped_bot):
    figures = evaluate(shipped_bot, DEFAULT_SET, "heldout")
    # Measured: 15/20 uncovered refused, 3/62 answerable wrongly refused.
    assert figures["refused_uncovered_rate"] >= 0.75
    assert figures["wrongly_refused_rate"] <= 0.05
    assert figures["per_kind"]["offtopic"]["refused"] == 1.0
