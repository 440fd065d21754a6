"""Entry file of the Hugging Face Space: the same chat as `python -m app serve`.

The committed `index/` matches the shipped corpus, so the Space starts
without building; if it ever does not match, it is rebuilt at start.
"""

import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from app.bot import FaqBot  # noqa: E402
from app.ui import build_app  # noqa: E402

logging.basicConfig(level=logging.INFO)
demo = build_app(FaqBot.open())
demo.queue(default_concurrency_limit=4, max_size=64)

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
