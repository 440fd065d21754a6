"""Corpus readers: the shipped help-centre page, every file format, and a
CorpusError naming the file and line for every kind of malformed input."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHIPPED_CORPUS, write_jsonl

from app.corpus import (
    MAX_ANSWER_CHARS,
    corpus_hash,
    drop_repeats,
    group_near_repeats,
    load_corpus,
)
from app.errors import CorpusError
from app.text import clean

NOISE = ["Skip to main content", "Comments", "Labels", "Show more"]
EXIT_TOPICS = {
    "How to exit platform activities?",
    "The product has been reviewed how to exit the platform activity",
    "How to exit the platform activity after the product has been reviewed?",
}


@pytest.fixture(scope="module")
def shipped():
    return load_corpus(SHIPPED_CORPUS)


def by_topic(entries, start: str):
    return next(e for e in entries if e.topic.startswith(start))


def test_shipped_corpus_has_twenty_entries(shipped):
    assert len(shipped) == 20


def test_shipped_topics_are_the_question_lines(shipped):
    lines = SHIPPED_CORPUS.read_text(encoding="utf-8").splitlines()
    for entry in shipped:
        assert entry.topic == clean(lines[entry.line - 1])
    assert shipped[0].topic == (
        "can i only set up a payout account with my primary account?"
    )
    assert shipped[-1].topic == "How to apply and use AliExpress business loan?"


def test_shipped_corpus_drops_page_noise(shipped):
    for entry in shipped:
        assert entry.topic not in NOISE
        assert entry.topic.strip()
        for line in NOISE:
            assert line not in entry.topic
            assert entry.text != line
    topics = {e.topic for e in shipped}
    assert not topics & {"", "\u00a0"}


def test_shipped_text_has_clean_whitespace(shipped):
    for entry in shipped:
        for value in (entry.topic, entry.text):
            assert "  " not in value
            assert "\u00a0" not in value
            assert value == value.strip()
            assert not re.search(r"[\x00-\x1f]", value)


@pytest.mark.parametrize(
    ("topic", "sentence"),
    [
        (
            "How to apply and use AliExpress business loan?",
            "The legal representative is a Chinese citizen aged 18-65.",
        ),
        ("Store coupons by country function", "Display targeted distribution coupons"),
        ("Store coupons by country function", 'Added "IM distribution" distribution'),
    ],
)
def test_repeated_sentences_appear_once(shipped, topic, sentence):
    raw = SHIPPED_CORPUS.read_text(encoding="utf-8")
    assert raw.count(sentence) >= 3
    assert by_topic(shipped, topic).text.count(sentence) == 1


def test_only_the_exit_activity_entries_are_grouped(shipped):
    sizes = Counter(entry.group for entry in shipped)
    grouped = {e.topic for e in shipped if sizes[e.group] > 1}
    assert grouped == EXIT_TOPICS
    assert len({e.group for e in shipped if e.topic in EXIT_TOPICS}) == 1


def test_drop_repeats_ignores_list_numbers():
    text = (
        "Rules: 1) Own a store with a good record; 2) Be aged 18-65. "
        "Please keep a good record. Be aged 18-65. Be aged 18-65 and have a store."
    )
    kept = drop_repeats(text)
    assert kept.count("Be aged 18-65.") == 1
    assert "Be aged 18-65 and have a store." in kept


def test_drop_repeats_drops_a_sentence_contained_in_an_earlier_one():
    text = "Show the coupon on every page & Display targeted coupons now. Display targeted coupons now."
    assert drop_repeats(text) == (
        "Show the coupon on every page & Display targeted coupons now."
    )


def test_drop_repeats_keeps_short_repeats():
    assert drop_repeats("Yes. It works. Yes.") == "Yes. It works. Yes."


RECORDS = [
    {"id": "r1", "question": "How do I return an item?", "answer": "Open the order.", "lang": "en"},
    {"id": "r2", "question": "Where is my parcel?", "answer": "Track it online.", "lang": "en"},
]  # fmt: skip


def write_table(path: Path, delimiter: str) -> Path:
    head = delimiter.join(["id", "Question", "Answer", "lang"])
    rows = [
        delimiter.join([r["id"], r["question"], r["answer"], r["lang"]])
        for r in RECORDS
    ]
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return path


WRITERS = {
    "faq.jsonl": lambda p: write_jsonl(p, RECORDS),
    "faq.json": lambda p: p.write_text(json.dumps(RECORDS, indent=2), encoding="utf-8"),
    "faq.csv": lambda p: write_table(p, ","),
    "faq.tsv": lambda p: write_table(p, "\t"),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_reader_keeps_ids_topics_and_metadata(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](path)
    entries = load_corpus(path)
    assert [e.id for e in entries] == ["r1", "r2"]
    assert [e.topic for e in entries] == [r["question"] for r in RECORDS]
    assert [e.text for e in entries] == [r["answer"] for r in RECORDS]
    assert all(e.metadata == {"lang": "en"} for e in entries)
    assert all(e.source == str(path) for e in entries)


def test_json_object_holding_entries_is_read_with_lines(tmp_path):
    path = tmp_path / "faq.json"
    document = {"title": "FAQ [v2]", "tags": ["a", "b"], "entries": RECORDS}
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    entries = load_corpus(path)
    assert [e.id for e in entries] == ["r1", "r2"]
    lines = path.read_text(encoding="utf-8").splitlines()
    for entry in entries:
        assert '"id"' in lines[entry.line - 1] or "{" in lines[entry.line - 1]


def test_json_array_items_report_their_own_line(tmp_path):
    path = tmp_path / "faq.json"
    path.write_text(json.dumps(RECORDS, indent=2), encoding="utf-8")
    lines = path.read_text(encoding="utf-8").splitlines()
    for entry in load_corpus(path):
        assert lines[entry.line - 1].strip() == "{"
        assert f'"id": "{entry.id}"' in lines[entry.line]


def test_folder_mixes_formats_in_name_order(tmp_path, caplog):
    write_jsonl(tmp_path / "a.jsonl", [RECORDS[0]])
    write_table(tmp_path / "b.csv", ",").write_text(
        "question,answer\nHow do I pay?,By card.\n", encoding="utf-8"
    )
    (tmp_path / "notes.md").write_text("ignored", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="app.corpus"):
        entries = load_corpus(tmp_path)
    assert [e.topic for e in entries] == ["How do I return an item?", "How do I pay?"]
    assert "not read" in caplog.text and "notes.md" in caplog.text


def test_folder_files_sharing_a_stem_get_distinct_ids(tmp_path):
    (tmp_path / "faq.csv").write_text("question,answer\nQ one?,A one.\n", "utf-8")
    (tmp_path / "faq.tsv").write_text("question\tanswer\nQ two?\tA two.\n", "utf-8")
    entries = load_corpus(tmp_path)
    assert len({e.id for e in entries}) == 2


def test_csv_row_spanning_lines_reports_its_first_line(tmp_path):
    path = tmp_path / "faq.csv"
    path.write_text(
        'question,answer\n"Q1?","A1."\n"Q2\nmore?","A2."\n"Q3?",""\n', "utf-8"
    )
    with pytest.raises(CorpusError, match=r"faq\.csv:5: missing or empty 'answer'"):
        load_corpus(path)


def test_csv_answer_longer_than_csv_default_limit_is_read(tmp_path):
    answer = "word " * 30_000
    path = tmp_path / "faq.csv"
    path.write_text(f"question,answer\nLong?,{answer}\n", "utf-8")
    assert len(load_corpus(path)[0].text) == len(answer.strip())


BAD_FILES = [
    ("bad.jsonl", '{"question": "Q?", "answer": "A."}\n\n{"question": "Q2?",\n', 3, "not valid JSON"),
    ("bad.csv", "question,reply\nQ?,A.\n", 1, "missing column 'answer'"),
    ("bad.tsv", "question\tanswer\nQ1?\tA1.\nQ2?\t \n", 3, "missing or empty 'answer'"),
    ("bad.json", '[\n {"question": "Q?", "answer": "A."},\n {"question": "Q2?", "answer": ""}\n]', 3, "missing or empty 'answer'"),
    ("utf.jsonl", b'{"question": "Q?", "answer": "A."}\n{"question": "Q2?", "answer": "\xff\xfe"}\n', 2, "not UTF-8"),
    ("bom16.csv", b"\xff\xfeq\x00u\x00", 1, "not UTF-8"),
    ("dup.jsonl", '{"id": 7, "question": "Q?", "answer": "A."}\n{"id": "7", "question": "Q2?", "answer": "B."}\n', 2, "duplicate id '7'"),
    ("huge.jsonl", '{"question": "Q?", "answer": "A."}\n' + json.dumps({"question": "Q2?", "answer": "x" * (MAX_ANSWER_CHARS + 1)}) + "\n", 2, "limit is 200,000"),
    ("huge.csv", "question,answer\nQ?,A.\nQ2?," + "y" * (MAX_ANSWER_CHARS * 2) + "\n", 3, "limit of 200,000"),
    ("quote.csv", 'question,answer\n"Q1?","A1."\n"Q2?","A2\n', 3, "broken CSV"),
    ("dangling.txt", "Skip to main content\nQ one?\nA one.\nComments\nQ two?\n", 5, "question without an answer: 'Q two?'"),
    ("blank.jsonl", '{"question": "Q?", "answer": "A."}\n' + json.dumps({"question": "Q2?", "answer": "\u200b\u00a0"}) + "\n", 2, "missing or empty 'answer'"),
    ("control.jsonl", json.dumps({"question": "\u0007\u001b", "answer": "A."}) + "\n", 1, "missing or empty 'question'"),
    ("list.jsonl", '{"question": "Q?", "answer": "A."}\n["Q2?", "A2."]\n', 2, "expected an object"),
    ("number.jsonl", '{"question": 5, "answer": "A."}\n', 1, "'question' must be text, not int"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content", "line", "message"), BAD_FILES)
def test_malformed_file_names_file_and_line(tmp_path, name, content, line, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError) as caught:
        load_corpus(path)
    assert caught.value.path == path
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jsonl", "", "file is empty"),
        ("blank.txt", "  \n\n", "file is empty"),
        ("faq.xml", "<faq/>", "unknown file type '.xml'"),
        ("none.json", '{"entries": []}', "no FAQ entries found"),
    ],
)
def test_unreadable_file_names_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(message)) as caught:
        load_corpus(path)
    assert str(caught.value).startswith(str(path))


def test_missing_path_is_a_corpus_error(tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(CorpusError, match="no such file or folder"):
        load_corpus(missing)
    with pytest.raises(CorpusError):
        corpus_hash(missing)


def test_folder_without_faq_files_is_a_corpus_error(tmp_path):
    (tmp_path / "readme.md").write_text("nothing", encoding="utf-8")
    with pytest.raises(CorpusError, match="folder holds no FAQ file"):
        load_corpus(tmp_path)


def test_corpus_hash_changes_with_the_content(tmp_path):
    path = write_jsonl(tmp_path / "faq.jsonl", RECORDS)
    before = corpus_hash(path)
    write_jsonl(path, RECORDS[:1])
    assert corpus_hash(path) != before


def test_group_near_repeats_joins_only_similar_answers(tmp_path):
    long = "Open the activity page and choose the products you want to take out of it now. "
    rows = [
        {"id": "a", "question": "Exit one?", "answer": long + "Then confirm."},
        {"id": "b", "question": "Exit two?", "answer": long + "Then press OK."},
        {"id": "c", "question": "Other?", "answer": "Shipping takes ten days to most countries of the world."},
    ]  # fmt: skip
    entries = load_corpus(write_jsonl(tmp_path / "faq.jsonl", rows))
    group_near_repeats(entries)
    assert [e.group for e in entries] == ["a", "a", "c"]


def test_json_array_on_one_line_gets_distinct_ids(tmp_path):
    records = [
        {"question": f"Question {n}?", "answer": f"Answer {n}."} for n in range(3)
    ]
    path = tmp_path / "faq.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    entries = load_corpus(path)
    assert [e.id for e in entries] == ["faq.json:1", "faq.json:1.2", "faq.json:1.3"]
    assert [e.line for e in entries] == [1, 1, 1]


def test_page_answer_of_one_word_is_kept(tmp_path):
    page = tmp_path / "faq.txt"
    page.write_text("Comments\nCan I sell used goods?\nNo\nLabels\n", encoding="utf-8")
    entries = load_corpus(page)
    assert [(e.topic, e.text) for e in entries] == [("Can I sell used goods?", "No")]
