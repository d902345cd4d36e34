"""Shared fixtures for the model tests: the real bundled encoder, loaded once."""

from __future__ import annotations

import pytest

from models.encoder import TransformerEncoder, default_model_dir


@pytest.fixture(scope="session")
def encoder() -> TransformerEncoder:
    """The real all-MiniLM-L6-v2 encoder shipped with Baton."""
    return TransformerEncoder(default_model_dir())
