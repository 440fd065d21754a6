"""The Gradio chat: question in, cited extractive answer out.

Everything shown comes from the FAQ or from the user, so both are escaped
before Gradio renders them as Markdown: HTML, script tags, images and links
in a question or in the corpus appear as inert text.

The conversation lives on the server, in each session's state, and is never
read back from the browser: the history a client sends cannot smuggle in
files or markup, and a thumbs up or down always refers to a reply this
server gave. A bounded queue answers a flood with "busy" instead of growing.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

# Gradio would otherwise report usage and check for updates over the network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio keeps a record of the last N events in memory for its monitoring
# page; 10,000 by default, which is more memory than this chat needs.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

import gradio as gr  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402

from .answer import Reply  # noqa: E402
from .bot import DEFAULT_CORPUS, DEFAULT_INDEX, MAX_QUESTION_CHARS, FaqBot  # noqa: E402
from .errors import FaqError, FeedbackError  # noqa: E402
from .feedback import FeedbackStore, data_dir  # noqa: E402

log = logging.getLogger(__name__)

SHIPPED_TITLE = "Seller help FAQ"
# Turns kept in one conversation; older ones scroll away, so neither the
# state nor the messages sent to the browser grow without end.
MAX_TURNS = 50
# Gradio's file route also fetches any public URL it is given; this chat
# serves no remote file, so such requests are refused before they go out.
_REMOTE_FILE = re.compile(r"/file=\s*[a-z][a-z0-9+.-]*:", re.IGNORECASE)
# A request body past this is refused before it is read: the longest question
# (4,000 characters are read of it) fits many times over, even as \u escapes.
MAX_BODY_BYTES = 1 << 20
# Characters that Markdown or HTML would act on.
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape(text: str) -> str:
    """Return `text` so that Markdown and HTML show it literally."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MARKUP.sub(r"\\\1", text)
    # The chat's Markdown turns bare "http://..." into links; an entity for
    # the colon shows the same text but is no longer a URL to the parser.
    return text.replace("://", "&#58;//")


def render_reply(reply: Reply) -> str:
    """The chat message for a reply: answer, notice and numbered sources."""
    lines = []
    if reply.notice:
        lines.append(f"*{escape(reply.notice)}*\n")
    if reply.found:
        lines.append(_escape_keeping_marks(reply.answer))
        lines.append("\n**Sources**")
        lines.extend(f"{c.n}\\. {escape(c.topic)}" for c in reply.citations)
    else:
        lines.append(escape(reply.answer.split(" Closest topics:")[0]))
        if reply.closest:
            lines.append("\n**Closest topics**")
            lines.extend(f"- {escape(topic)}" for topic in reply.closest)
    return "\n".join(lines)


def _escape_keeping_marks(answer: str) -> str:
    """Escape an answer but keep its citation marks readable as `[n]`."""
    return re.sub(r"\\\[(\d+)\\\]", r"**[\1]**", escape(answer))


def render_passages(reply: Reply) -> str:
    """The passages behind a reply, with their scores, as Markdown."""
    if not reply.passages:
        return "No passages."
    blocks = [
        f"**{score:.3f}** · {escape(p.topic)}\n\n> {escape(p.text)}"
        for p, score in ((p, p.score) for p in reply.passages)
    ]
    return "\n\n---\n\n".join(blocks)


def example_questions(bot: FaqBot, count: int = 5) -> list[str]:
    """A few of the FAQ's own questions, shortest first, as examples."""
    topics = sorted({e.topic for e in bot.index.entries.values()}, key=len)
    return [t[0].upper() + t[1:] for t in topics if len(t) > 20][:count]


def new_session() -> dict[str, Any]:
    """An empty conversation: the chat messages, and the reply behind each
    assistant message keyed by its position."""
    return {"messages": [], "replies": {}}


def make_respond(bot: FaqBot):
    """The chat handler bound to one bot."""

    def respond(message: str, session: dict[str, Any] | None):
        try:
            reply = bot.ask(message or "")
        except FaqError as err:
            raise gr.Error(str(err), print_exception=False) from None
        session = session or new_session()
        messages = session["messages"] + [
            {"role": "user", "content": escape(reply.question)},
            {"role": "assistant", "content": render_reply(reply)},
        ]
        replies = {**session["replies"], len(messages) - 1: reply.to_dict()}
        session = _trim({"messages": messages, "replies": replies})
        return "", session["messages"], render_passages(reply), session

    return respond


def _trim(session: dict[str, Any], max_turns: int = MAX_TURNS) -> dict[str, Any]:
    """Keep the last `max_turns` turns, renumbering the replies to match."""
    drop = max(0, len(session["messages"]) - 2 * max_turns)
    if not drop:
        return session
    return {
        "messages": session["messages"][drop:],
        "replies": {i - drop: r for i, r in session["replies"].items() if i >= drop},
    }


def make_like(bot: FaqBot, store: FeedbackStore | None):
    """The handler of the chat's thumbs up and down: stores the vote with the
    reply it was given to."""

    def like(session: dict[str, Any] | None, vote: gr.LikeData) -> None:
        position = vote.index[0] if isinstance(vote.index, list | tuple) else vote.index
        reply = (session or new_session())["replies"].get(position)
        # Anything but a plain up or down (for example, taking a vote back)
        # and votes on messages that are not replies are not stored.
        if reply is None or not isinstance(vote.liked, bool):
            return
        if store is None:
            gr.Warning("Feedback is not being stored on this server.")
            return
        try:
            store.record(vote.liked, reply, bot.manifest_sha256)
        except FeedbackError as err:
            log.warning("vote not stored: %s", err)
            gr.Warning("Your feedback could not be stored; please try later.")

    return like


def make_ask(bot: FaqBot):
    """The JSON endpoint for programs: the same reply as `app ask --json`."""

    def ask(question: str) -> dict[str, Any]:
        try:
            return bot.ask(question or "").to_dict()
        except FaqError as err:
            raise gr.Error(str(err), print_exception=False) from None

    return ask


def open_store(folder: str | Path | None = None) -> FeedbackStore | None:
    """The feedback store, or None (with a warning) when it cannot be opened."""
    try:
        return FeedbackStore(folder)
    except FeedbackError as err:
        log.warning("feedback will not be stored: %s", err)
        return None


def default_title(bot: FaqBot) -> str:
    """The page title: the shipped FAQ's name, else one made from the
    corpus file's name ("pet_care.csv" gives "Pet care FAQ"), else "FAQ"."""
    if bot.corpus is None:
        return "FAQ"
    if bot.corpus.resolve() == DEFAULT_CORPUS.resolve():
        return SHIPPED_TITLE
    name = re.sub(r"[_\-\s]+", " ", bot.corpus.stem).strip() or "FAQ"
    name = name[0].upper() + name[1:]
    return name if name.lower().endswith("faq") else f"{name} FAQ"


def build_app(
    bot: FaqBot,
    data: str | Path | None = None,
    max_queue: int = 64,
    concurrency: int = 4,
    title: str | None = None,
) -> gr.Blocks:
    """Lay out the chat for one bot, with a bounded request queue.

    Args:
        bot: The bot that answers.
        data: Folder for feedback. Defaults to `feedback.data_dir()`.
        max_queue: Requests that may wait; more get a "queue is full" reply.
            Defaults to 64.
        concurrency: Requests answered at once. Defaults to 4.
        title: Page title. Defaults to `default_title(bot)`.

    Returns:
        The app, ready to launch.
    """
    store = open_store(data)
    title = title or default_title(bot)
    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(
            f"## {escape(title)}\nAnswers are sentences taken from the FAQ, each "
            "marked with the topic it came from. Questions the FAQ does not cover "
            "are declined."
        )
        session = gr.State(new_session())
        chatbot = gr.Chatbot(
            label="Chat",
            height=480,
            sanitize_html=True,
            allow_tags=False,
            latex_delimiters=[],
            buttons=["copy", "copy_all"],
        )
        question = gr.Textbox(
            label="Your question",
            placeholder=f"Ask the {title}",
            max_length=MAX_QUESTION_CHARS * 4,
            submit_btn=True,
        )
        gr.Examples(example_questions(bot), inputs=question, label="Try")
        with gr.Accordion("Passages used, with scores", open=False):
            passages = gr.Markdown("Ask a question to see the passages.")
        question.submit(
            make_respond(bot),
            [question, session],
            [question, chatbot, passages, session],
            api_name="chat",
        )
        chatbot.like(make_like(bot, store), [session], None, api_visibility="private")
        gr.api(make_ask(bot), api_name="ask")
    demo.queue(max_size=max_queue, default_concurrency_limit=concurrency)
    return demo


class GuardRequests:
    """ASGI middleware in front of Gradio: answers 403 to `/file=<url>`
    instead of letting the server fetch the URL on the caller's behalf, and
    413 to a body declared larger than `MAX_BODY_BYTES`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        refusal = _refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await refusal(scope, receive, send)


def _refusal(scope) -> PlainTextResponse | None:
    if _REMOTE_FILE.search(unquote(scope.get("path", ""))):
        return PlainTextResponse("remote files are not served", status_code=403)
    declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        return PlainTextResponse("request too large", status_code=413)
    return None


def launch_options(
    host: str = "127.0.0.1",
    port: int | None = 7860,
    blocked: list[str | Path] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `Blocks.launch`: local only unless told, no share
    link, no server-side rendering, index and feedback files never served,
    no remote file fetched, uploads and request bodies capped.

    Args:
        host: Address to bind. Defaults to 127.0.0.1.
        port: Port; None lets Gradio pick. Defaults to 7860.
        blocked: Folders never to serve. Defaults to the default index and
            data folders.
    """
    blocked = blocked or [DEFAULT_INDEX, data_dir()]
    return {
        "server_name": host,
        "server_port": port,
        "share": False,
        "ssr_mode": False,
        "show_error": False,
        "blocked_paths": [str(Path(p).resolve()) for p in blocked],
        # The chat takes no files: uploads stay tiny, and no past questions
        # are kept in the browser's run history.
        "max_file_size": "100kb",
        "run_history": False,
        "app_kwargs": {"middleware": [Middleware(GuardRequests)]},
    }


def launch(
    bot: FaqBot,
    host: str = "127.0.0.1",
    port: int = 7860,
    data: str | Path | None = None,
    max_queue: int = 64,
    concurrency: int = 4,
    block: bool = True,
    title: str | None = None,
) -> gr.Blocks:
    """Serve the chat; until interrupted unless `block` is False.

    Args:
        bot: The bot that answers.
        host: Address to bind. Defaults to 127.0.0.1.
        port: Port. Defaults to 7860.
        data: Folder for feedback. Defaults to `feedback.data_dir()`.
        max_queue: Requests that may wait. Defaults to 64.
        concurrency: Requests answered at once. Defaults to 4.
        block: Serve in the foreground. Defaults to True; with False the
            server runs in a thread and the caller must `close()` it.
        title: Page title. Defaults to `default_title(bot)`.

    Returns:
        The running app (once it stops, when `block` is True).
    """
    demo = build_app(
        bot, data, max_queue=max_queue, concurrency=concurrency, title=title
    )
    blocked = [bot.index.folder, data_dir(data)]
    demo.launch(**launch_options(host, port, blocked), prevent_thread_lock=not block)
    return demo
