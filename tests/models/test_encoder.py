"""The real bundled encoder: unit vectors, batching that never changes an embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.encoder import EncoderError, TransformerEncoder, default_model_dir

pytestmark = pytest.mark.model

TEXTS = ["hi", "how do I reset my password?", "🙂🙂", "", "x" * 5000, "¿Cómo cambio mi contraseña?"] * 12


def test_vectors_are_unit_length_and_batching_changes_nothing(encoder: TransformerEncoder) -> None:
    together = encoder.encode(TEXTS)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS[:6]])
    assert together.shape == (len(TEXTS), encoder.dim)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-4)
    assert np.allclose(together[:6], alone, atol=1e-4)


def test_two_workers_give_the_same_vectors() -> None:
    pair = TransformerEncoder(default_model_dir(), workers=2)
    single = TransformerEncoder(default_model_dir(), workers=1)
    assert np.allclose(pair.encode(TEXTS), single.encode(TEXTS), atol=1e-5)


def test_a_directory_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match=r"no config\.json"):
        TransformerEncoder(tmp_path)
