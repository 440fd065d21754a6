"""Take the README's screenshot: the chat answering a real question.

Starts the app on 127.0.0.1, asks one question in headless Chromium through
Playwright, and saves docs/chat.png. Needs `pip install playwright` and a
Chromium on the machine (Debian: `apt-get install chromium`); Playwright's
own browser download is not used.

    python scripts/screenshot.py [--question TEXT] [--out docs/chat.png]
"""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from playwright.sync_api import sync_playwright  # noqa: E402

from app.bot import FaqBot  # noqa: E402
from app.ui import build_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Chromium reaches for update and sync services at start; this machine, and
# most CI machines, have no route to them.
QUIET_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def capture(url: str, question: str, out: Path) -> None:
    """Ask `question` in the page at `url` and save a screenshot to `out`."""
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=QUIET_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 980})
        page.goto(url)
        box = page.get_by_label("Your question")
        box.fill(question)
        box.press("Enter")
        page.get_by_text("Sources").first.wait_for(timeout=30_000)
        page.get_by_text("Passages used, with scores").click()
        page.wait_for_timeout(800)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--question", default="how do I get out of a promotion I signed up for?")
    parser.add_argument("--out", type=Path, default=Path("docs/chat.png"))
    args = parser.parse_args()
    demo = build_app(FaqBot.open())
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        capture(f"http://127.0.0.1:{port}/", args.question, args.out)
    finally:
        demo.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
