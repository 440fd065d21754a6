"""The Gradio chat: question in, cited extractive answer out.

Everything shown comes from the FAQ or from the user, so both are escaped
before Gradio renders them as Markdown: HTML, script tags, images and links
in a question or in the corpus appear as inert text.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import gradio as gr

from .answer import Reply
from .bot import MAX_QUESTION_CHARS, FaqBot
from .errors import FaqError

log = logging.getLogger(__name__)

TITLE = "Seller help FAQ"
# Characters that Markdown or HTML would act on.
_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape(text: str) -> str:
    """Return `text` so that Markdown and HTML show it literally."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKUP.sub(r"\\\1", text)


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


def make_respond(bot: FaqBot):
    """The chat handler bound to one bot."""

    def respond(message: str, history: list[dict[str, Any]]):
        history = list(history or [])
        try:
            reply = bot.ask(message or "")
        except FaqError as err:
            gr.Warning(str(err))
            return "", history, gr.skip()
        history.append({"role": "user", "content": escape(reply.question)})
        history.append({"role": "assistant", "content": render_reply(reply)})
        return "", history, render_passages(reply)

    return respond


def make_ask(bot: FaqBot):
    """The JSON endpoint for programs: the same reply as `app ask --json`."""

    def ask(question: str) -> dict[str, Any]:
        try:
            return bot.ask(question or "").to_dict()
        except FaqError as err:
            raise gr.Error(str(err)) from None

    return ask


def build_app(bot: FaqBot) -> gr.Blocks:
    """Lay out the chat for one bot."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(
            f"## {TITLE}\nAnswers are sentences taken from the FAQ, each marked with "
            "the topic it came from. Questions the FAQ does not cover are declined."
        )
        chatbot = gr.Chatbot(label="Chat", height=480, sanitize_html=True)
        question = gr.Textbox(
            label="Your question",
            placeholder="Ask about the seller help FAQ",
            max_length=MAX_QUESTION_CHARS * 4,
            submit_btn=True,
        )
        gr.Examples(example_questions(bot), inputs=question, label="Try")
        with gr.Accordion("Passages used, with scores", open=False):
            passages = gr.Markdown("Ask a question to see the passages.")
        question.submit(
            make_respond(bot),
            [question, chatbot],
            [question, chatbot, passages],
            api_name="chat",
        )
        gr.api(make_ask(bot), api_name="ask")
    return demo


def launch(bot: FaqBot, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the chat until interrupted."""
    demo = build_app(bot)
    demo.queue(default_concurrency_limit=4, max_size=64)
    demo.launch(server_name=host, server_port=port, show_error=True)
