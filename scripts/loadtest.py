"""Load test: many concurrent users, the same answers, bounded memory.

Starts `python -m app serve` on 127.0.0.1 on a free port (or uses --url),
asks every distinct question once as a single user, then runs --clients
gradio_client users at once over --questions questions through the `/ask`
JSON endpoint and the `/chat` endpoint in turn. It reports errors, answers
that differ from the single-user answer, and p50/p99 latency. The memory run
then sends --memory-questions distinct questions and compares the server's
resident memory after the first 100 with that at the end.

    python scripts/loadtest.py [--clients 32] [--questions 1000]
        [--memory-questions 10000] [--url http://127.0.0.1:PORT --pid PID]
        [--corpus PATH] [--index DIR]

Without --index the server builds a fresh index in a temporary folder, so
the repository's own `index/` is never rebuilt by a test run.

Every loop is bounded and the server it started is stopped at the end. The
exit code is 0 only when there were no errors, no differing answers, and the
memory grew by at most --max-growth (default 10%).
"""

from __future__ import annotations

import argparse
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx  # noqa: E402
import psutil  # noqa: E402
from gradio_client import Client  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from app.bot import DEFAULT_CORPUS  # noqa: E402
from app.corpus import load_corpus  # noqa: E402

OFF_TOPIC = [
    "What is the capital of France?",
    "Who won the football world cup in 2018?",
    "Как вернуть деньги покупателю?",
    "如何重置我的密码？",
    "<script>alert(1)</script> ![x](http://127.0.0.1:9/x.png)",
]
# The first this many questions of the memory run warm the server up.
WARM_UP = 100


@dataclass
class Run:
    """What one load run saw."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None, mismatch: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            if error:
                self.errors.append(error)
            if mismatch:
                self.mismatches.append(mismatch)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(index: Path, corpus: Path, data: Path) -> tuple[subprocess.Popen, str]:
    """Run `python -m app serve` on a free local port until it answers."""
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    command += ["--index", str(index), "--corpus", str(corpus), "--data", str(data)]
    log = open(data / "server.log", "w")  # noqa: SIM115 -- lives as long as the server
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit(
                f"the server stopped at start (exit {server.returncode}); "
                f"see {data / 'server.log'}"
            )
        try:
            if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not answer within 300 s")


def question_set(corpus: Path) -> list[str]:
    """The FAQ's own questions, reworded a little, and some it does not cover."""
    topics = sorted({entry.topic for entry in load_corpus(corpus)})
    reworded = [f"{topic.lower().rstrip('?')} please" for topic in topics]
    return topics + reworded + OFF_TOPIC


def connect(url: str) -> Client:
    return Client(url, verbose=False, analytics_enabled=False, download_files=False)


def ask(client: Client, endpoint: str, question: str):
    """One request; the answer in a comparable form."""
    if endpoint == "/ask":
        return client.predict(question, api_name="/ask")
    _, messages, _ = client.predict(question, api_name="/chat")
    return "".join(part["text"] for part in messages[-1]["content"])


def single_user_answers(url: str, questions: list[str]) -> dict:
    """The answer of every question and endpoint, asked by one user."""
    client = connect(url)
    return {
        (endpoint, q): ask(client, endpoint, q)
        for q in tqdm(questions, desc="single user", unit="q")
        for endpoint in ("/ask", "/chat")
    }


def connect_all(url: str, count: int) -> list[Client]:
    """`count` users, each with its own session, connected in parallel."""
    users: list[Client] = []
    threads = [
        threading.Thread(target=lambda: users.append(connect(url)))
        for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return users


def run_load(
    users: list[Client],
    work: list[tuple[str, str]],
    expected: dict | None = None,
    desc: str = "load",
) -> Run:
    """Send every (endpoint, question) of `work`, each user taking the next
    as soon as it is free; compare answers with `expected` when given."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in work:
        todo.put(item)
    run = Run()
    bar = tqdm(total=len(work), desc=desc, unit="q")

    def user(client: Client) -> None:
        while True:
            try:
                endpoint, question = todo.get_nowait()
            except queue.Empty:
                return
            run.add(*_timed(client, endpoint, question, expected))
            bar.update()

    threads = [threading.Thread(target=user, args=(c,)) for c in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    return run


def _timed(client: Client, endpoint: str, question: str, expected: dict | None):
    started = time.perf_counter()
    try:
        answer = ask(client, endpoint, question)
    except Exception as err:  # any failure of a request counts as an error
        return time.perf_counter() - started, f"{endpoint} {question!r}: {err}", None
    seconds = time.perf_counter() - started
    wanted = expected.get((endpoint, question)) if expected else answer
    mismatch = None if answer == wanted else f"{endpoint} {question!r}"
    return seconds, None, mismatch


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(name: str, run: Run, seconds: float) -> None:
    count = len(run.latencies)
    print(
        f"{name}: {count} questions in {seconds:.1f} s ({count / seconds:.0f}/s), "
        f"errors {len(run.errors)}, answers differing from single user "
        f"{len(run.mismatches)}, latency p50 {percentile(run.latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(run.latencies, 0.99) * 1000:.0f} ms"
    )
    for problem in (run.errors + run.mismatches)[:5]:
        print(f"  {problem[:200]}")


def memory_run(
    users: list[Client], pid: int, questions: list[str], total: int
) -> tuple[int, int, int]:
    """Resident memory of the server after the first `WARM_UP` questions and
    after `total` (printed at each quarter too); every question is new, so
    caches fill to their bounds."""
    work = [
        ("/ask", f"{questions[i % len(questions)]} (case {i})") for i in range(total)
    ]
    server = psutil.Process(pid)
    marks = [WARM_UP] + [WARM_UP + (total - WARM_UP) * q // 4 for q in (1, 2, 3, 4)]
    rss, errors, done = [], 0, 0
    for mark in marks:
        run = run_load(users, work[done:mark], desc=f"memory to {mark}")
        errors, done = errors + len(run.errors), mark
        rss.append(server.memory_info().rss)
    steps = ", ".join(f"{m}: {r / 2**20:.1f}" for m, r in zip(marks, rss))
    print(
        f"memory: RSS {rss[0] / 2**20:.1f} MiB after {WARM_UP} questions, "
        f"{rss[-1] / 2**20:.1f} MiB after {total} "
        f"({(rss[-1] / rss[0] - 1) * 100:+.1f}%), errors {errors}; MiB by questions "
        f"answered: {steps}"
    )
    return rss[0], rss[-1], errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running chat (default: start one)")
    parser.add_argument("--pid", type=int, help="its process id, for the memory run")
    parser.add_argument(
        "--index", type=Path, help="index folder (default: built afresh in a temp dir)"
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--questions", type=int, default=1_000)
    parser.add_argument("--memory-questions", type=int, default=10_000)
    parser.add_argument("--max-growth", type=float, default=0.10)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the load and memory tests; 0 when all held."""
    args = parse_args(argv)
    server = None
    with tempfile.TemporaryDirectory(prefix="faq-load-") as data:
        if args.url:
            url, pid = args.url.rstrip("/"), args.pid
        else:
            # A fresh index in the temp dir: the server builds it at start and
            # never touches the repository's own.
            index = args.index or Path(data) / "index"
            server, url = start_server(index, args.corpus, Path(data))
            pid = server.pid
        try:
            return _measure(args, url, pid)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)


def _measure(args: argparse.Namespace, url: str, pid: int | None) -> int:
    questions = question_set(args.corpus)
    expected = single_user_answers(url, questions)
    work = [
        (("/ask", "/chat")[i % 2], questions[i % len(questions)])
        for i in range(args.questions)
    ]
    users = connect_all(url, args.clients)
    started = time.perf_counter()
    run = run_load(users, work, expected)
    report(f"{args.clients} users", run, time.perf_counter() - started)
    healthy = not run.errors and not run.mismatches
    if pid is None or args.memory_questions <= WARM_UP:
        print("memory: skipped (needs the server's --pid and > 100 questions)")
        return 0 if healthy else 1
    before, after, errors = memory_run(users, pid, questions, args.memory_questions)
    bounded = after <= before * (1 + args.max_growth)
    return 0 if healthy and not errors and bounded else 1


if __name__ == "__main__":
    sys.exit(main())
