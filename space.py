"""Entry file of the Hugging Face Space: the same chat as `python -m app serve`.

The committed `index/` matches the shipped corpus, so the Space starts
without building; if it ever does not match, it is rebuilt at start. Votes
go to `/data` when the Space has persistent storage (see `app.feedback`).
"""

import logging
import os

# Nothing is fetched or reported over the network at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from app.memory import limit_malloc_arenas  # noqa: E402

limit_malloc_arenas()  # before the model and the server start threads

from app.bot import FaqBot  # noqa: E402
from app.feedback import data_dir  # noqa: E402
from app.ui import build_app, launch_options  # noqa: E402

logging.basicConfig(level=logging.INFO)
bot = FaqBot.open()
demo = build_app(bot)

if __name__ == "__main__":
    # The Space runtime sets GRADIO_SERVER_NAME to 0.0.0.0; elsewhere the
    # chat stays on this machine.
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    demo.launch(**launch_options(host, port, [bot.index.folder, data_dir()]))
