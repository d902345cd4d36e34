"""Shared fixtures: the real bundled encoder (loaded once) and a fast fake for pure logic."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from models.encoder import TransformerEncoder, default_model_dir


@pytest.fixture(scope="session")
def encoder() -> TransformerEncoder:
    """The real all-MiniLM-L6-v2 encoder shipped with Baton."""
    return TransformerEncoder(default_model_dir())


class FakeEncoder:
    """Bag-of-words vectors from hashed words: same words, same direction. Counts its calls."""

    name = "fake-bow"
    dim = 64

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors; texts without words give zero vectors."""
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    """A fresh fake encoder."""
    return FakeEncoder()
