"""Faults: bad corpora, damaged indexes, killed builds, a full disk, bad input.

Whatever goes wrong, the index already on disk keeps answering as before,
and a damaged index is rebuilt or refused, never served.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_app

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app import Embedder, FaqBot, IndexStateError, QuestionError  # noqa: E402
from app import index as index_module  # noqa: E402
from app.bot import MAX_QUESTION_CHARS  # noqa: E402
from app.cli import main  # noqa: E402
from app.index import build_index, load_index  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FAQ = [
    {"id": "refund", "question": "How do I refund a buyer?", "answer": "Open the order page and choose Refund. Enter the amount to return and confirm. The buyer receives the money within five working days."},
    {"id": "shipping", "question": "How long does international shipping take?", "answer": "Standard international shipping takes ten to twenty days. Express shipping arrives within five days."},
    {"id": "password", "question": "How can I reset my account password?", "answer": "Click Forgot password on the sign-in page. We send a reset link to your email address. The link stays valid for one hour."},
    {"id": "loan", "question": "What is the interest rate of the business loan?", "answer": "The business loan has a daily interest rate of 0.05 percent. Interest is charged only on the amount you draw."},
]  # fmt: skip
QUESTIONS = [
    "how do I give the buyer their money back?",
    "how long does shipping abroad take?",
    "I forgot my password",
    "What is the capital of France?",
]


def write_faq(path: Path, entries: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    return path


def answers(bot: FaqBot) -> list[tuple]:
    """What the bot says to the test questions, in a comparable form."""
    return [
        (r.found, r.answer, [c.topic for c in r.citations])
        for r in map(bot.ask, QUESTIONS)
    ]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of an index folder with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    """A good corpus, its index, and the answers that index gives."""
    folder = tmp_path_factory.mktemp("built")
    corpus = write_faq(folder / "faq.jsonl", FAQ)
    build_index(corpus, folder / "index", embedder, show_progress=False)
    expected = answers(FaqBot(load_index(folder / "index"), embedder))
    return corpus, folder / "index", expected


@pytest.fixture
def index_copy(built, tmp_path) -> Path:
    """A private copy of the good index that a test may break."""
    return Path(shutil.copytree(built[1], tmp_path / "index"))


# --- a bad corpus stops the build and leaves the index as it was ------------


def _not_utf8(folder: Path) -> Path:
    path = folder / "faq.csv"
    path.write_bytes(b"question,answer\nRefund?,Yes.\nCaf\xe9?,Open daily.\n")
    return path


def _empty(folder: Path) -> Path:
    path = folder / "faq.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    return path


def _no_answer_column(folder: Path) -> Path:
    path = folder / "faq.csv"
    path.write_text("question,reply\nRefund?,Open the order.\n", encoding="utf-8")
    return path


def _duplicate_ids(folder: Path) -> Path:
    return write_faq(folder / "faq.jsonl", FAQ + [{**FAQ[1], "id": "refund"}])


def _enormous_jsonl_line(folder: Path) -> Path:
    huge = {"id": "huge", "question": "Why?", "answer": "Because. " * 40_000}
    return write_faq(folder / "faq.jsonl", FAQ[:2] + [huge])


def _enormous_csv_field(folder: Path) -> Path:
    path = folder / "faq.csv"
    path.write_text(f'question,answer\nA?,B.\nC?,"{"x" * 300_000}"\n')
    return path


@pytest.mark.parametrize(
    ("make_corpus", "expected"),
    [
        (_not_utf8, r"faq\.csv:3: not UTF-8 text \(byte 0xe9\)"),
        (_empty, r"faq\.jsonl: file is empty"),
        (_no_answer_column, r"faq\.csv:1: missing column 'answer'"),
        (_duplicate_ids, r"faq\.jsonl:5: duplicate id 'refund'"),
        (_enormous_jsonl_line, r"faq\.jsonl:3: answer is 360,000 characters long"),
        (_enormous_csv_field, r"faq\.csv:3: broken CSV"),
    ],
)
def test_bad_corpus_build_names_file_and_keeps_index(
    index_copy, tmp_path, make_corpus, expected
):
    before = snapshot(index_copy)
    corpus = make_corpus(tmp_path)

    result = run_app("build", "--corpus", str(corpus), "--index", str(index_copy))

    assert result.returncode == 2
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {tmp_path}")
    assert re.search(expected, line)
    assert snapshot(index_copy) == before


# --- a damaged index is found on load, then rebuilt or refused ---------------


def _generation(folder: Path) -> Path:
    manifest = json.loads((folder / "manifest.json").read_text())
    return folder / manifest["generation"]


def _delete_passages(folder: Path) -> str:
    (_generation(folder) / "passages.jsonl").unlink()
    return "passages.jsonl is missing"


def _truncate_vectors(folder: Path) -> str:
    path = _generation(folder) / "vectors.faiss"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "vectors.faiss has"


def _alter_sentence_vectors(folder: Path) -> str:
    path = _generation(folder) / "sentence_vectors.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    return "sentence_vectors.npy was altered"


def _alter_entries_text(folder: Path) -> str:
    path = _generation(folder) / "entries.jsonl"
    text = path.read_text(encoding="utf-8").replace("five", "nine")
    path.write_text(text, encoding="utf-8")
    return "entries.jsonl"


def _remove_generation(folder: Path) -> str:
    shutil.rmtree(_generation(folder))
    return "is missing"


def _truncate_manifest(folder: Path) -> str:
    path = folder / "manifest.json"
    path.write_text(path.read_text()[:100])
    return "manifest.json is damaged"


DAMAGE = [
    _delete_passages,
    _truncate_vectors,
    _alter_sentence_vectors,
    _alter_entries_text,
    _remove_generation,
    _truncate_manifest,
]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_index_is_refused_on_load(index_copy, damage):
    problem = damage(index_copy)

    with pytest.raises(IndexStateError, match=problem):
        load_index(index_copy)


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_index_is_refused_without_rebuild(built, index_copy, damage):
    problem = damage(index_copy)

    with pytest.raises(IndexStateError, match=f"cannot be used: .*{problem}"):
        FaqBot.open(index_copy, corpus=built[0], rebuild=False)


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_index_is_rebuilt_and_answers_the_same(built, index_copy, damage):
    damage(index_copy)

    bot = FaqBot.open(index_copy, corpus=built[0])

    assert answers(bot) == built[2]


def test_cli_no_rebuild_refuses_damaged_index(built, index_copy):
    _truncate_vectors(index_copy)

    result = run_app(
        "ask",
        "--index",
        str(index_copy),
        "--corpus",
        str(built[0]),
        "--no-rebuild",
        "refund?",
    )

    assert result.returncode == 2
    assert "error: index at" in result.stderr
    assert "vectors.faiss has" in result.stderr
    assert result.stdout == ""


# --- a build killed half way leaves the previous index serving ---------------

# Runs the real build command with one step slowed down, so that the test can
# kill it at a known point.
_SLOW_BUILD = """
import sys, time
import app.index as index
step = getattr(index, sys.argv[1])
def slowly(*args, **kwargs):
    time.sleep(0.3)
    result = step(*args, **kwargs)
    time.sleep(0.3)
    return result
setattr(index, sys.argv[1], slowly)
from app.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _wait_for(predicate, seconds: float = 120.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _staging_has_files(folder: Path) -> bool:
    return any(f.is_file() for d in folder.glob(".gen-*") for f in d.iterdir())


@pytest.mark.parametrize(
    ("slowed", "kill_when"),
    [
        ("_save", "data files are being written"),
        ("_write_jsonl", "data files are being written"),
        ("_replace_manifest", "the new generation is complete"),
    ],
)
def test_build_killed_half_way_leaves_previous_index(
    built, index_copy, tmp_path, slowed, kill_when
):
    before = snapshot(index_copy)
    old_generations = {p.name for p in index_copy.glob("gen-*")}
    ready = {
        "data files are being written": lambda: _staging_has_files(index_copy),
        "the new generation is complete": lambda: bool(
            {p.name for p in index_copy.glob("gen-*")} - old_generations
        ),
    }[kill_when]
    corpus = write_faq(tmp_path / "faq.jsonl", FAQ + [{**FAQ[0], "id": "again"}])
    args = ["build", "--corpus", str(corpus), "--index", str(index_copy)]
    build = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BUILD, slowed, *args],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        seen = _wait_for(ready)
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=60)

    assert seen and build.returncode == -signal.SIGKILL
    assert {k: v for k, v in snapshot(index_copy).items() if k in before} == before
    bot = FaqBot.open(index_copy, corpus=built[0], rebuild=False)
    assert answers(bot) == built[2]


def test_two_builds_at_once_both_finish_and_leave_one_index(
    built, index_copy, tmp_path, embedder
):
    corpus = write_faq(tmp_path / "faq.jsonl", FAQ + [{**FAQ[0], "id": "again"}])
    args = ["build", "--corpus", str(corpus), "--index", str(index_copy)]
    slow = subprocess.Popen(
        [sys.executable, "-c", _SLOW_BUILD, "_save", *args],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert _wait_for(lambda: _staging_has_files(index_copy))
        # The slow build holds the lock: this one waits, then writes its own.
        manifest = build_index(built[0], index_copy, embedder, show_progress=False)
    finally:
        assert slow.wait(timeout=300) == 0

    assert not list(index_copy.glob(".gen-*"))
    assert [p.name for p in index_copy.glob("gen-*")] == [manifest["generation"]]
    bot = FaqBot.open(index_copy, corpus=built[0], rebuild=False)
    assert answers(bot) == built[2]


def test_next_build_clears_what_a_killed_build_left(built, index_copy, embedder):
    (index_copy / ".gen-leftover").mkdir()
    (index_copy / ".gen-leftover" / "vectors.faiss").write_bytes(b"half")

    build_index(built[0], index_copy, embedder, show_progress=False)

    assert not list(index_copy.glob(".gen-*"))
    assert len(list(index_copy.glob("gen-*"))) == 1


# --- a full disk leaves the previous index serving ---------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs when this machine lets the test mount one (as root),
    else None: then the test makes the writes fail with ENOSPC itself."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until `leave` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))


def _fail_writes_after(monkeypatch, count: int) -> None:
    """Make `_save` fail with ENOSPC after `count` calls (no tmpfs here)."""
    real = index_module._save
    calls = []

    def save(path, array):
        calls.append(path)
        if len(calls) > count:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, array)

    monkeypatch.setattr(index_module, "_save", save)


def test_full_disk_build_leaves_previous_index(
    built, embedder, small_disk, tmp_path, monkeypatch
):
    """On a real 2 MB tmpfs filled to 40 kB free when it can be mounted,
    else with `_save` failing with ENOSPC (see `small_disk`)."""
    disk = small_disk or tmp_path
    folder = disk / "index"
    build_index(built[0], folder, embedder, show_progress=False)
    before = snapshot(folder)
    if small_disk:
        _fill(disk, leave=40_000)
    else:
        _fail_writes_after(monkeypatch, 2)
    bigger = write_faq(tmp_path / "bigger.jsonl", FAQ + [{**FAQ[0], "id": "again"}])

    with pytest.raises(IndexStateError, match="the previous index is unchanged"):
        build_index(bigger, folder, embedder, show_progress=False)

    assert snapshot(folder) == before
    assert answers(FaqBot.open(folder, corpus=built[0], rebuild=False)) == built[2]


def test_full_disk_at_manifest_switch_leaves_no_generation(
    built, index_copy, embedder, tmp_path, monkeypatch
):
    """Simulated: the disk fills just as the new manifest is written."""
    before = snapshot(index_copy)

    def no_space(folder, manifest):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder))

    monkeypatch.setattr(index_module, "_replace_manifest", no_space)
    bigger = write_faq(tmp_path / "bigger.jsonl", FAQ + [{**FAQ[0], "id": "again"}])

    with pytest.raises(IndexStateError, match="No space left on device"):
        build_index(bigger, index_copy, embedder, show_progress=False)

    assert snapshot(index_copy) == before
    assert answers(FaqBot.open(index_copy, corpus=built[0], rebuild=False)) == built[2]


def test_cli_reports_full_disk_in_one_line(built, tmp_path, monkeypatch, capsys):
    _fail_writes_after(monkeypatch, 0)
    folder = tmp_path / "index"

    code = main(["build", "--corpus", str(built[0]), "--index", str(folder)])

    err = capsys.readouterr().err.splitlines()
    (line,) = [x for x in err if x.startswith("error:")]
    assert code == 2
    assert line.startswith(f"error: cannot write the index at {folder}")
    assert "No space left on device" in line
    assert not list(folder.iterdir())


# --- bad input through the Python API and the command line --------------------


@pytest.fixture(scope="module")
def bot(built, embedder) -> FaqBot:
    return FaqBot(load_index(built[1]), embedder)


@pytest.mark.parametrize("question", ["", "   ", "\n\t", "\x00\x01\x1f", "?!", "😀"])
def test_api_refuses_empty_question(bot, question):
    with pytest.raises(QuestionError, match="please type a question"):
        bot.ask(question)


@pytest.mark.parametrize("question", [None, 42, b"refund?"])
def test_api_refuses_question_that_is_not_text(bot, question):
    with pytest.raises(QuestionError, match="must be text"):
        bot.ask(question)


@pytest.mark.parametrize("filler", ["refund ", "x", "退款", "\x00 refund"])
def test_api_cuts_long_question_and_says_so(bot, filler):
    reply = bot.ask(filler * (100_000 // len(filler)))

    assert len(reply.question) <= MAX_QUESTION_CHARS
    assert reply.notice == (
        f"Your question was cut to its first {MAX_QUESTION_CHARS:,} characters."
    )


@pytest.mark.parametrize(
    "question",
    [
        "how do I refund\x00 a buyer?\x07",
        "😀 refund a buyer 🙏",
        "כיצד אני מחזיר כסף לקונה?",
        "如何给买家退款？",
        "Как вернуть деньги покупателю?",
        "<script>alert(1)</script> refund ![x](http://127.0.0.1:9/x.png)",
        "Wie kann ich einem Käufer das Geld zurückgeben?",
    ],
)
def test_api_answers_or_declines_any_text(bot, question):
    reply = bot.ask(question)

    assert "\x00" not in reply.question and "\x07" not in reply.question
    assert reply.found == bool(reply.citations)
    assert reply.notice is None


def test_cli_answers_each_line_and_reports_bad_ones(built, monkeypatch, capsys):
    lines = [
        "how do I refund a buyer?",
        "",
        "x" * 100_000,
        "\x00\x01",
        "如何给买家退款？",
    ]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))

    code = main(["ask", "--json", "--index", str(built[1]), "--corpus", str(built[0])])

    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert [("error" in o) for o in out] == [False, True, False, True, False]
    assert out[0]["found"] and out[0]["citations"]
    assert out[2]["notice"].startswith("Your question was cut")
    assert "empty" in out[1]["error"]
