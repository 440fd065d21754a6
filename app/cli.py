"""Command line: build the index, ask questions, serve the chat."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TextIO

from .bot import DEFAULT_CORPUS, DEFAULT_INDEX, FaqBot
from .errors import FaqError, IndexStateError

log = logging.getLogger("app")

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    """Register a sub-command handler under `name`."""

    def register(handler: Command) -> Command:
        COMMANDS[name] = handler
        return handler

    return register


def _add_index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        type=Path,
        default=DEFAULT_INDEX,
        help="index folder (default: %(default)s)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="FAQ file or folder the index must match (default: the one it was"
        " built from; the shipped FAQ for index/)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model id or folder (default: $FAQ_MODEL or all-MiniLM-L6-v2)",
    )
    parser.add_argument(
        "--no-rebuild",
        action="store_true",
        help="fail instead of rebuilding a stale or damaged index",
    )


def make_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build the index from a FAQ")
    build.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="FAQ file or folder"
    )
    build.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="index folder")
    build.add_argument("--model", default=None, help="model id or folder")

    ask = sub.add_parser(
        "ask", help="answer questions from arguments or standard input"
    )
    _add_index_options(ask)
    ask.add_argument("--json", action="store_true", help="one JSON object a line")
    ask.add_argument(
        "questions",
        nargs="*",
        metavar="QUESTION",
        help="questions (quote each); none: read one a line from stdin",
    )

    serve = sub.add_parser("serve", help="serve the web chat")
    _add_index_options(serve)
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    serve.add_argument(
        "--port", type=int, default=7860, help="port (default: %(default)s)"
    )
    serve.add_argument(
        "--title", default=None, help="page title (default: named after the corpus)"
    )
    _add_serve_limits(serve)
    _add_feedback_parser(sub)
    _add_eval_parser(sub)
    _add_bench_parser(sub)
    return parser


def _add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="feedback folder (default: $FAQ_DATA_DIR, /data on a Space, or data/)",
    )


def _add_serve_limits(parser: argparse.ArgumentParser) -> None:
    _add_data_option(parser)
    parser.add_argument(
        "--max-queue",
        type=int,
        default=64,
        help="requests that may wait; more are told the chat is busy (default: %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=4,
        help="requests answered at once (default: %(default)s)",
    )


def _add_feedback_parser(sub) -> None:
    feedback = sub.add_parser("feedback", help="review the votes users gave")
    actions = feedback.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write every vote as CSV or JSON Lines")
    export.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        default="csv",
        help="(default: %(default)s)",
    )
    export.add_argument(
        "--out",
        type=Path,
        default=None,
        help="file to write (default: standard output)",
    )
    export.add_argument(
        "--force", action="store_true", help="overwrite an existing --out file"
    )
    _add_data_option(export)


@command("build")
def run_build(args: argparse.Namespace) -> int:
    """Build the index from a FAQ."""
    from .embed import Embedder
    from .index import build_index

    manifest = build_index(args.corpus, args.index, Embedder(args.model))
    print(
        f"Built {args.index}: {manifest['entries']} entries, {manifest['passages']} passages,"
        f" {manifest['vectors']} vectors in {manifest['build_seconds']} s"
    )
    return 0


def open_bot(args: argparse.Namespace) -> FaqBot:
    """Open the bot that the index options name."""
    return FaqBot.open(
        args.index,
        corpus=args.corpus,
        model=args.model,
        rebuild=not args.no_rebuild,
        show_progress=True,
    )


@command("ask")
def run_ask(args: argparse.Namespace) -> int:
    """Answer questions."""
    bot = open_bot(args)
    questions: Iterable[str] = args.questions or _lines(sys.stdin)
    failures = 0
    for question in questions:
        failures += not _answer_one(bot, question, args.json, sys.stdout)
    return 1 if failures else 0


def _lines(stream: TextIO) -> Iterable[str]:
    for line in stream:
        yield line.rstrip("\n")


def _answer_one(bot: FaqBot, question: str, as_json: bool, out: TextIO) -> bool:
    try:
        reply = bot.ask(question)
    except FaqError as err:
        if as_json:
            out.write(json.dumps({"question": question, "error": str(err)}) + "\n")
        print(f"error: {err}", file=sys.stderr)
        return False
    if as_json:
        out.write(json.dumps(reply.to_dict(), ensure_ascii=False) + "\n")
    else:
        out.write(_plain(reply) + "\n")
    out.flush()
    return True


def _plain(reply) -> str:
    lines = [f"Q: {reply.question}"]
    if reply.notice:
        lines.append(f"({reply.notice})")
    lines.append(reply.answer)
    for citation in reply.citations:
        lines.append(f"  [{citation.n}] {citation.topic} (score {citation.score:.3f})")
    return "\n".join(lines) + "\n"


@command("serve")
def run_serve(args: argparse.Namespace) -> int:
    """Serve the chat in the browser."""
    from .memory import limit_malloc_arenas

    limit_malloc_arenas()  # before the model and the server start threads
    from .ui import launch

    bot = open_bot(args)
    _check_port_free(args.host, args.port)
    launch(
        bot,
        host=args.host,
        port=args.port,
        data=args.data,
        max_queue=args.max_queue,
        concurrency=args.concurrency,
        title=args.title,
    )
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Fail in one line when the port is taken, rather than in Gradio's
    traceback after it has tried a range of other ports."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise FaqError(
                f"cannot serve on {host}:{port} ({err.strerror}); "
                "choose another port with --port"
            ) from None


@command("feedback")
def run_feedback(args: argparse.Namespace) -> int:
    """Export the stored votes for review."""
    from .errors import FeedbackError
    from .feedback import FeedbackStore, data_dir, export

    folder = data_dir(args.data)
    if not (folder / "feedback.sqlite3").is_file():
        raise FeedbackError(f"no feedback stored in {str(folder)!r}")
    rows = FeedbackStore(folder).rows()
    if args.out is None:
        count = export(rows, args.format, sys.stdout)
    else:
        try:
            with open(
                args.out, "w" if args.force else "x", encoding="utf-8", newline=""
            ) as out:
                count = export(rows, args.format, out)
        except FileExistsError:
            raise FeedbackError(
                f"{str(args.out)!r} exists; pass --force to overwrite it"
            ) from None
        except OSError as err:
            raise FeedbackError(
                f"cannot write {str(args.out)!r}: {err.strerror}"
            ) from None
    log.info("exported %d votes from %s", count, folder)
    return 0


def _add_eval_parser(sub) -> None:
    from .evaluate import DEFAULT_SET, SPLITS

    evaluate = sub.add_parser("eval", help="measure retrieval on labelled questions")
    _add_index_options(evaluate)
    evaluate.add_argument(
        "--set",
        type=Path,
        default=DEFAULT_SET,
        help="JSON Lines of labelled questions (default: %(default)s)",
    )
    evaluate.add_argument(
        "--split", choices=SPLITS, default="all", help="questions to use (default: all)"
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")


@command("eval")
def run_eval(args: argparse.Namespace) -> int:
    """Measure retrieval and refusals on labelled questions."""
    from .evaluate import evaluate, format_table

    figures = evaluate(open_bot(args), args.set, args.split, show_progress=True)
    if args.json:
        print(json.dumps(figures, ensure_ascii=False))
    else:
        print(f"{figures['set']} ({figures['split']})")
        print(format_table(figures))
    return 0


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="time answers against the encoder's floor")
    _add_index_options(bench)
    bench.add_argument(
        "--questions",
        type=Path,
        default=None,
        help="JSON Lines with a 'query' field (default: the labelled set)",
    )
    bench.add_argument(
        "--limit", type=int, default=None, help="time at most this many questions"
    )
    bench.add_argument(
        "--runs", type=int, default=3, help="process starts to time (default: 3)"
    )
    bench.add_argument(
        "--batch", type=int, default=32, help="questions per batch (default: 32)"
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")


@command("bench")
def run_bench(args: argparse.Namespace) -> int:
    """Time answers, start-up and index builds against their floors."""
    from .bench import format_figures, load_questions
    from .bench import run_bench as bench

    questions = load_questions(args.questions, args.limit)
    bot = open_bot(args)
    if bot.corpus is None:
        raise IndexStateError(f"index at {args.index} names no corpus; give --corpus")
    figures = bench(bot, args.index, bot.corpus, questions, args.runs, args.batch)
    print(json.dumps(figures) if args.json else format_figures(figures))
    return 0


def _quiet_libraries() -> None:
    """Keep third-party chatter (weight-loading bars, loader notes) off the
    terminal; our own INFO lines stay."""
    for name in ("faiss", "sentence_transformers", "transformers", "httpx", "bm25s"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run one command, turn known errors into one line."""
    args = make_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    _quiet_libraries()
    try:
        return COMMANDS[args.command](args)
    except FaqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
