"""BERT layers on ONNX Runtime: torch's arithmetic, in about half the time for one chat turn.

A lone 14-token turn through six torch layers spends most of its time dispatching some 150 small
operators one by one; ONNX Runtime runs each layer as one prepared graph with fused kernels
(bench/RESULTS.md). Each layer's graph is written here from the layer's own weights, node by
node, as `models.bert.Layer` computes it: no exporter and no tracing, so building one takes
milliseconds and gives the same vectors to about 1e-6.

`LayerRuntime.session(layer)` returns a callable for one `models.bert.Layer` in eval mode, built
once and rebuilt if its weights change in place. It returns None for anything else (a
transformers layer, a layer being trained), and the caller runs that layer in torch. Raises no
errors of its own: when onnxruntime is not installed, `LayerRuntime.create` returns None.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from models.onnx_graph import Graph

LayerCall = Callable[[np.ndarray, np.ndarray], np.ndarray]
OPSET = 17  # LayerNormalization is an ONNX operator from opset 17


class LayerRuntime:
    """Prepared ONNX Runtime sessions for transformer layers, keyed by the layer itself."""

    def __init__(self, ort: Any, threads: int) -> None:
        self._ort, self._threads = ort, threads
        self._lock = threading.Lock()
        self._built: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], LayerCall]] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def create(cls, threads: int) -> LayerRuntime | None:
        """A runtime with `threads` intra-op threads per call, or None without onnxruntime."""
        try:
            import onnxruntime
        except ImportError:
            return None
        onnxruntime.set_default_logger_severity(3)  # its optimiser's notices are not ours to print
        return cls(onnxruntime, threads)

    def session(self, layer: Any) -> LayerCall | None:
        """`(hidden, additive_mask) -> hidden` for a plain BERT layer in eval mode, else None."""
        from models.bert import Layer

        if not isinstance(layer, Layer) or layer.training:
            return None
        versions = tuple(p._version for p in layer.parameters())
        with self._lock:
            built = self._built.get(layer)
            if built is None or built[0] != versions:
                built = (versions, self._prepare(layer))
                self._built[layer] = built
        return built[1]

    def _prepare(self, layer: Any) -> LayerCall:
        """An inference session for the layer's graph, as a plain function."""
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # an arena per layer would keep each layer's largest buffers for good (tens of MB apiece)
        options.enable_cpu_mem_arena = False
        # a thread that spins waiting for work steals a core from the other worker
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = self._ort.InferenceSession(layer_graph(layer), options, providers=["CPUExecutionProvider"])

        def call(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
            return session.run(None, {"hidden": hidden, "mask": mask})[0]

        return call


def layer_graph(layer: Any) -> bytes:
    """The ONNX model of one `models.bert.Layer`: hidden (b, t, h) and additive mask (b, 1, 1, t) in."""
    attention, width = layer.attention.self, layer.attention.self.query.in_features
    graph, size = Graph("bert_layer"), width // attention.heads
    hidden = graph.input("hidden", ["batch", "tokens", width])
    mask = graph.input("mask", ["batch", 1, 1, "tokens"])

    def linear(source: str, module: Any, name: str) -> str:
        weight = graph.const(f"{name}.w", module.weight.detach().numpy().T)
        product = graph.node("MatMul", [source, weight], f"{name}.mm")
        return graph.node("Add", [product, graph.const(f"{name}.b", module.bias.detach().numpy())], name)

    def add_norm(source: str, residual: str, module: Any, name: str) -> str:
        summed = graph.node("Add", [source, residual], f"{name}.sum")
        scale = graph.const(f"{name}.g", module.weight.detach().numpy())
        shift = graph.const(f"{name}.b", module.bias.detach().numpy())
        return graph.node("LayerNormalization", [summed, scale, shift], name, axis=-1, epsilon=module.eps)

    def scalar(name: str, value: float) -> str:
        return graph.const(name, np.array(value, dtype=np.float32))

    split = graph.const("split", np.array([0, 0, attention.heads, size], dtype=np.int64))
    merge = graph.const("merge", np.array([0, 0, width], dtype=np.int64))

    def heads(module: Any, name: str, perm: list[int]) -> str:
        shaped = graph.node("Reshape", [linear(hidden, module, name), split], f"{name}.heads")
        return graph.node("Transpose", [shaped], f"{name}.t", perm=perm)

    # softmax(q k^T / sqrt(d) + mask) v, as torch's scaled_dot_product_attention
    q, k = heads(attention.query, "q", [0, 2, 1, 3]), heads(attention.key, "k", [0, 2, 3, 1])
    v = heads(attention.value, "v", [0, 2, 1, 3])
    scores = graph.node(
        "Mul", [graph.node("MatMul", [q, k], "qk"), scalar("scale", 1 / math.sqrt(size))], "s"
    )
    probs = graph.node("Softmax", [graph.node("Add", [scores, mask], "masked")], "probs", axis=-1)
    context = graph.node("Transpose", [graph.node("MatMul", [probs, v], "ctx")], "ctx.t", perm=[0, 2, 1, 3])
    context = graph.node("Reshape", [context, merge], "ctx.merged")
    out = layer.attention.output
    attended = add_norm(linear(context, out.dense, "ao"), hidden, out.LayerNorm, "ao.ln")
    inner = linear(attended, layer.intermediate.dense, "ff1")
    # exact (erf) GELU, torch's default: x * (1 + erf(x / sqrt 2)) / 2
    erf = graph.node("Erf", [graph.node("Mul", [inner, scalar("rsqrt2", 1 / math.sqrt(2))], "ff1.s")], "erf")
    half = graph.node("Mul", [inner, scalar("half", 0.5)], "ff1.h")
    gelu = graph.node("Mul", [half, graph.node("Add", [erf, scalar("one", 1.0)], "erf1")], "gelu")
    add_norm(linear(gelu, layer.output.dense, "ff2"), attended, layer.output.LayerNorm, "out")
    graph.output("out", ["batch", "tokens", width])
    return graph.model(OPSET)
