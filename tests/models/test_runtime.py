"""ONNX Runtime layers: torch's vectors, rebuilt when weights change, torch for what it cannot run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from models.encoder import TransformerEncoder, default_model_dir
from models.onnx_graph import Graph
from models.runtime import LayerRuntime
from tests.models.test_bert import VARIED, close, tiny_bert


@pytest.fixture(scope="module")
def torch_only() -> TransformerEncoder:
    """The bundled model with every layer in torch: the reference."""
    return TransformerEncoder(default_model_dir(), onnx=False)


def run(call: object, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    assert callable(call)
    return np.asarray(call(hidden, mask))


@pytest.mark.model
def test_the_bundled_encoder_runs_its_layers_on_onnx_runtime(
    encoder: TransformerEncoder, torch_only: TransformerEncoder
) -> None:
    runtime = encoder._runtime
    assert runtime is not None and torch_only._runtime is None
    ours = encoder.encode(VARIED)  # one padded batch per length group, lone turns, 128-token cut
    assert all(runtime.session(layer) is not None for layer in encoder.layers)
    assert close(ours, torch_only.encode(VARIED))
    assert close(
        encoder.encode(["how do I reset my password?"]), torch_only.encode(["how do I reset my password?"])
    )


@pytest.mark.model
def test_shared_lower_layers_and_foreign_top_stacks_match_torch(
    encoder: TransformerEncoder, torch_only: TransformerEncoder
) -> None:
    tuned = copy.deepcopy(encoder.layers[4:])  # a copied stack, as the sentiment and KB tunings make
    with_runtime = encoder.encode_tops(VARIED, 4, [encoder.layers[4:], tuned])
    reference = torch_only.encode_tops(VARIED, 4, [torch_only.layers[4:], tuned])
    for ours, theirs in zip(with_runtime, reference, strict=True):
        assert close(ours, theirs)


def test_a_layer_changed_in_place_is_rebuilt_and_one_in_training_runs_in_torch(tmp_path: Path) -> None:
    import torch

    encoder = TransformerEncoder(tiny_bert(tmp_path / "bert"), workers=1)
    runtime = LayerRuntime.create(threads=1)
    assert runtime is not None
    layer = copy.deepcopy(encoder.layers[0]).eval()
    hidden = np.random.default_rng(0).standard_normal((2, 5, 32)).astype(np.float32)
    mask = np.zeros((2, 1, 1, 5), dtype=np.float32)
    mask[1, ..., 3:] = np.finfo(np.float32).min  # the second row has two padded tokens

    def expected() -> np.ndarray:
        with torch.inference_mode():
            return layer(torch.from_numpy(hidden), attention_mask=torch.from_numpy(mask)).numpy()

    before = run(runtime.session(layer), hidden, mask)
    assert np.abs(before - expected()).max() <= 1e-5
    with torch.no_grad():
        layer.intermediate.dense.weight.mul_(-1.5)  # what an optimiser step does to a tuned layer
    after = run(runtime.session(layer), hidden, mask)
    assert np.abs(after - expected()).max() <= 1e-5 and np.abs(after - before).max() > 1e-2
    assert runtime.session(layer.train()) is None


def test_transformers_layers_and_a_missing_runtime_fall_back_to_torch(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path / "bert")
    loaded_by_transformers = TransformerEncoder(folder, workers=1, plain=False)
    assert loaded_by_transformers._runtime is None
    runtime = LayerRuntime.create(threads=1)
    assert runtime is not None and runtime.session(loaded_by_transformers.layers[0]) is None
    assert TransformerEncoder(folder, workers=1, onnx=False)._runtime is None


def test_the_graph_writer_gives_a_model_onnx_runtime_runs() -> None:
    import onnxruntime

    graph = Graph("check")
    x = graph.input("x", ["rows", 3])
    shifted = graph.node(
        "Add", [x, graph.const("shift", np.array([1.0, -2.0, 0.5], dtype=np.float32))], "shifted"
    )
    shape = graph.const("shape", np.array([0, -1], dtype=np.int64))
    flat = graph.node("Reshape", [shifted, shape], "flat")
    graph.node("Softmax", [flat], "y", axis=-1)  # a negative attribute is a ten-byte varint
    graph.output("y", ["rows", 3])
    session = onnxruntime.InferenceSession(graph.model(17), providers=["CPUExecutionProvider"])
    x_values = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.0]], dtype=np.float32)
    (y,) = session.run(None, {"x": x_values})
    z = np.exp(x_values + np.array([1.0, -2.0, 0.5], dtype=np.float32))
    assert np.allclose(y, z / z.sum(1, keepdims=True), atol=1e-6)


@pytest.mark.model
def test_only_small_passes_go_to_onnx_runtime(
    encoder: TransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ONNX_MAX_TOKENS padded tokens it is no faster than torch and its arena would grow."""
    from models.encoder import ONNX_MAX_TOKENS

    runtime = encoder._runtime
    assert runtime is not None
    asked: list[object] = []
    real = runtime.session
    monkeypatch.setattr(runtime, "session", lambda layer: asked.append(layer) or real(layer))
    encoder.encode(["the export keeps failing " * 30] * 8)  # one pass of 8 × 128 tokens
    assert asked == [] and ONNX_MAX_TOKENS < 8 * 128
    encoder.encode(["how do I reset my password?"])
    assert len(asked) == len(encoder.layers)
