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


def test_stacks_sharing_base_layers_run_them_once_and_match_separate_runs() -> None:
    import copy

    import torch

    encoder = TransformerEncoder(default_model_dir(), onnx=False)  # torch layers: hooks see each call
    top = copy.deepcopy(encoder.layers[5])
    with torch.no_grad():
        for parameter in top.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    stacks = [encoder.layers[3:], [*encoder.layers[3:5], top]]
    calls: list[str] = []
    watched = {"3": encoder.layers[3], "4": encoder.layers[4], "5": encoder.layers[5], "top": top}
    hooks = [layer.register_forward_pre_hook(lambda *_, n=n: calls.append(n)) for n, layer in watched.items()]
    try:
        together = encoder.encode_tops(TEXTS[:6], 3, stacks)
    finally:
        for hook in hooks:
            hook.remove()
    assert sorted(calls) == ["3", "4", "5", "top"]  # one padded batch; layers 3 and 4 ran once
    separate = [encoder.encode_tops(TEXTS[:6], 3, [stack])[0] for stack in stacks]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(together, separate, strict=True))
    assert not np.allclose(together[0], together[1], atol=1e-3)  # the tuned copy changed the vectors
