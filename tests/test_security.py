"""Safe by default: local binding, no file served but the app's own, nothing
unpickled, no request fetched elsewhere, questions bounded on the server.

The model weights are checked against their SHA-256 before loading
(`app.embed.bundled_model_dir`); the embedder's own tests cover it in full,
and one case here shows that altered weights are refused.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import socket
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx  # noqa: E402
import pytest  # noqa: E402
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from app import Embedder, FaqBot, ModelError, build_index, embed, load_index, ui  # noqa: E402
from app.bot import MAX_QUESTION_CHARS  # noqa: E402
from app.cli import make_parser  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app"
SECRET = "s3cr3t-marker-7f1c"
FAQ = [
    {"id": "refund", "question": "How do I refund a buyer?", "answer": "Open the order page and choose Refund. The buyer receives the money within five working days."},
    {"id": "loan", "question": "What is the interest rate of the business loan?", "answer": "The business loan has a daily interest rate of 0.05 percent."},
]  # fmt: skip
NOTICE = f"Your question was cut to its first {MAX_QUESTION_CHARS:,} characters."


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The chat on 127.0.0.1, its index folder, and a secret file beside it."""
    folder = tmp_path_factory.mktemp("served")
    corpus = folder / "faq.jsonl"
    corpus.write_text("".join(json.dumps(e) + "\n" for e in FAQ), encoding="utf-8")
    (folder / "secret.txt").write_text(SECRET)
    embedder = Embedder()
    build_index(corpus, folder / "index", embedder, show_progress=False)
    bot = FaqBot(load_index(folder / "index"), embedder)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    demo = ui.launch(bot, port=port, data=folder / "data", block=False)
    yield demo, port, folder
    demo.close()


def get(port: int, path: str) -> tuple[int, str]:
    """Send `path` byte for byte (no client-side clean-up of `..`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        conn.sendall(request.encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.decode("utf-8", errors="replace").partition("\r\n\r\n")
    return int(head.split()[1]), body


def test_serve_binds_localhost_unless_told():
    args = make_parser().parse_args(["serve"])

    assert args.host == "127.0.0.1"
    assert inspect.signature(ui.launch).parameters["host"].default == "127.0.0.1"
    assert ui.launch_options()["server_name"] == "127.0.0.1"
    assert "127.0.0.1" in (REPO / "space.py").read_text()


def test_running_server_listens_on_localhost_only(served):
    demo, port, _ = served

    assert demo.server_name == "127.0.0.1"
    assert demo.local_url.startswith(f"http://127.0.0.1:{port}")


def test_nothing_phones_out(served):
    demo, _, _ = served
    options = ui.launch_options()

    assert demo.analytics_enabled is False
    assert demo.share is False
    assert options["share"] is False
    assert options["ssr_mode"] is False
    assert options["run_history"] is False


TRAVERSALS = [
    "/gradio_api/file=/etc/passwd",
    "/file=/etc/passwd",
    "/gradio_api/file=../../../../../../etc/passwd",
    "/file=../../pyproject.toml",
    "/gradio_api/file=../../pyproject.toml",
    "/gradio_api/file=pyproject.toml",
    "/gradio_api/file=%2e%2e/%2e%2e/pyproject.toml",
    "/gradio_api/file=%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/gradio_api/file=%252e%252e%252fpyproject.toml",
    "/gradio_api/file=..%5c..%5cpyproject.toml",
    "/gradio_api/file/etc/passwd",
    "/gradio_api/file/../../pyproject.toml",
    "/static/../../pyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/assets/..%2f..%2f..%2fpyproject.toml",
    "/svelte/..%2f..%2fpyproject.toml",
    "/gradio_api/file={repo}/pyproject.toml",
    "/gradio_api/file={repo}/index/manifest.json",
    "/gradio_api/file={folder}/index/manifest.json",
    "/gradio_api/file={folder}/secret.txt",
    "/gradio_api/file={folder}/data/feedback.sqlite3",
    "/gradio_api/file=%2F{folder}%2Fsecret.txt",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_file_routes_serve_nothing_outside_the_app(served, template):
    _, port, folder = served
    path = template.format(repo=REPO, folder=folder)

    status, body = get(port, path)

    assert status in (400, 403, 404)
    for content in ("root:x:", "[project]", "corpus_sha256", SECRET, "SQLite"):
        assert content not in body


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:9/x.png", "http%3A%2F%2F127.0.0.1:9/x", "HTTPS://127.0.0.1:9/"],
)
def test_file_route_fetches_no_url(served, target):
    _, port, _ = served

    status, body = get(port, f"/gradio_api/file={target}")

    assert (status, body) == (403, "remote files are not served")


def test_uploads_are_capped(served):
    _, port, _ = served
    big = {"files": ("big.txt", b"x" * 200_000)}

    answer = httpx.post(f"http://127.0.0.1:{port}/gradio_api/upload", files=big)

    assert answer.status_code == 413


@pytest.mark.parametrize("route", ["/gradio_api/queue/join", "/gradio_api/call/ask"])
def test_huge_request_body_is_refused_unread(served, route):
    _, port, _ = served
    body = b'{"data": ["' + b"x" * (ui.MAX_BODY_BYTES + 1) + b'"]}'

    answer = httpx.post(f"http://127.0.0.1:{port}{route}", content=body)

    assert (answer.status_code, answer.text) == (413, "request too large")


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(node: ast.AST) -> str:
    return ast.unparse(node.func) if isinstance(node, ast.Call) else ""


@pytest.mark.parametrize("source", sorted(APP.glob("*.py")), ids=lambda p: p.name)
def test_app_unpickles_nothing(source):
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    calls = _calls(tree)

    assert not imported & {
        "pickle",
        "cPickle",
        "joblib",
        "dill",
        "cloudpickle",
        "shelve",
    }
    assert not [c for c in calls if _name(c) in ("torch.load", "eval", "exec")]
    for call in calls:
        if _name(call) in ("np.load", "numpy.load"):
            flags = {k.arg: k.value for k in call.keywords}
            assert isinstance(flags.get("allow_pickle"), ast.Constant)
            assert flags["allow_pickle"].value is False


def test_model_weights_with_another_hash_are_refused(monkeypatch):
    monkeypatch.setattr(embed, "BUNDLED_SHA256", "0" * 64)

    with pytest.raises(ModelError, match="expected 0{64}; reinstall"):
        embed.bundled_model_dir()


def test_index_data_is_numpy_json_and_faiss_only(served):
    _, _, folder = served
    manifest = json.loads((folder / "index" / "manifest.json").read_text())

    suffixes = {Path(name).suffix for name in manifest["files"]}

    assert suffixes <= {".npy", ".json", ".jsonl", ".faiss"}


@pytest.fixture(scope="module")
def client(served) -> Client:
    _, port, _ = served
    return Client(
        f"http://127.0.0.1:{port}",
        verbose=False,
        analytics_enabled=False,
        download_files=False,
    )


@pytest.mark.parametrize("filler", ["refund ", "x", "\x00 refund\x07 ", "退款"])
def test_ask_endpoint_bounds_a_long_question(client, filler):
    question = (filler * 100_000)[:100_000]

    reply = client.predict(question, api_name="/ask")

    assert reply["notice"] == NOTICE
    assert len(reply["question"]) <= MAX_QUESTION_CHARS


def test_ask_endpoint_refuses_a_long_empty_question(client):
    with pytest.raises(AppError, match="the question is empty"):
        client.predict("\x00\t " * 50_000, api_name="/ask")


def test_chat_endpoint_bounds_a_long_question(client):
    _, messages, _ = client.predict("refund " * 15_000, api_name="/chat")
    user, reply = ("".join(p["text"] for p in m["content"]) for m in messages[-2:])

    assert len(user) <= 2 * MAX_QUESTION_CHARS  # escaped Markdown, at most doubled
    assert NOTICE.replace(".", "\\.") in reply


def test_chat_endpoint_takes_no_history_from_the_client(client):
    endpoint = client.view_api(return_format="dict")["named_endpoints"]["/chat"]

    assert [p["component"] for p in endpoint["parameters"]] == ["Textbox"]
