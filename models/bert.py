"""A plain-torch BERT and its WordPiece tokenizer, loaded without `transformers`.

Importing transformers and building its BERT takes seconds at start-up (its modelling code pulls
in torch's compiler and distributed packages); this module needs only torch, safetensors and
tokenizers, and loads the bundled all-MiniLM-L6-v2 in a fraction of that. It reads one layout:
a BERT `config.json` (absolute positions, GELU, encoder only), a WordPiece `tokenizer.json` that
agrees with `tokenizer_config.json`, and float32 weights in `model.safetensors`. The modules and
their parameter names are transformers' own, so the encoder's callers (layer sharing, tuning,
saved tuned layers) see the same surface and the same numbers. `load` returns None for any other
directory, and the caller falls back to transformers; this module raises no errors of its own.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

# transformers' own BERT tokenizer classes: any other class may tokenise differently
BERT_TOKENIZERS = (None, "BertTokenizer", "BertTokenizerFast")


@dataclass(frozen=True)
class BertConfig:
    """The config.json fields the plain BERT reads, with transformers' BertConfig defaults."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int | None = 0


@dataclass(frozen=True)
class Output:
    """What the model returns, named as transformers names it."""

    last_hidden_state: torch.Tensor


class Embeddings(nn.Module):
    """Word + token type 0 + absolute position embeddings, then LayerNorm."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = _table(config.vocab_size, h, config.pad_token_id)
        self.position_embeddings = _table(config.max_position_embeddings, h)
        self.token_type_embeddings = _table(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        # summed in transformers' order, so the floats round the same way
        hidden = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        hidden = hidden + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(hidden))


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention under an additive mask."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        h = config.hidden_size
        self.heads = config.num_attention_heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, tokens, width = hidden.shape
        q, k, v = (
            proj(hidden).view(batch, tokens, self.heads, -1).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout.p if self.training else 0.0
        )
        return out.transpose(1, 2).reshape(batch, tokens, width)


class AddNorm(nn.Module):
    """Dense projection, dropout, residual sum and LayerNorm (transformers' BertSelfOutput/BertOutput)."""

    def __init__(self, config: BertConfig, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class Attention(nn.Module):
    """Self-attention and its output projection."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = SelfAttention(config)
        self.output = AddNorm(config, config.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(hidden, mask), hidden)


class Intermediate(nn.Module):
    """The feed-forward expansion with exact (erf) GELU."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dense(hidden))


class Layer(nn.Module):
    """One transformer layer; `attention_mask` is additive, shaped (batch, 1, 1, tokens)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = AddNorm(config, config.intermediate_size)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        attended = self.attention(hidden, attention_mask)
        return self.output(self.intermediate(attended), attended)


class Encoder(nn.Module):
    """The stack of layers, as `model.encoder.layer`."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))


class BertModel(nn.Module):
    """BERT without the pooler: token ids and a 0/1 mask in, last hidden states out."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = Encoder(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> Output:
        hidden = self.embeddings(input_ids)
        mask = None
        if attention_mask is not None:
            mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.encoder.layer:
            hidden = layer(hidden, attention_mask=mask)
        return Output(hidden)


class WordPieceTokenizer:
    """A `tokenizers` WordPiece tokenizer called the way transformers' tokenizers are."""

    def __init__(self, tokenizer: Any, pad_token_id: int, truncation_side: str) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self._base = tokenizer
        self._side = truncation_side
        self._by_length: dict[int | None, Any] = {None: tokenizer}
        self._lock = threading.Lock()
        self.pad_token_id = pad_token_id

    def __call__(
        self,
        texts: Sequence[str],
        *,
        truncation: bool = False,
        max_length: int | None = None,
        padding: bool = False,
        return_tensors: str | None = None,
    ) -> dict[str, Any]:
        """{"input_ids", "attention_mask"}: lists, or padded tensors with `return_tensors="pt"`.

        Truncation happens only with an explicit `max_length` (special tokens included).
        """
        encodings = self._truncating(max_length if truncation else None).encode_batch(list(texts))
        ids = [encoding.ids for encoding in encodings]
        if not (padding or return_tensors):
            return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}
        width = max((len(row) for row in ids), default=0)
        padded = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            padded[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, : len(row)] = 1
        if return_tensors == "pt":
            return {"input_ids": padded, "attention_mask": mask}
        return {"input_ids": padded.tolist(), "attention_mask": mask.tolist()}

    def _truncating(self, max_length: int | None) -> Any:
        """A tokenizer truncating at `max_length`: one copy per length, never reconfigured once shared."""
        with self._lock:
            if max_length not in self._by_length:
                tokenizer = copy.deepcopy(self._base)
                tokenizer.enable_truncation(max_length, direction=self._side)
                self._by_length[max_length] = tokenizer
            return self._by_length[max_length]


def load(model_dir: Path) -> tuple[WordPieceTokenizer, BertModel] | None:
    """The tokenizer and eval-mode model, or None when the directory is not one this module reads."""
    from safetensors import SafetensorError

    try:
        config = read_config(model_dir)
        tokenizer = read_tokenizer(model_dir, config) if config else None
        model = read_model(model_dir, config) if config and tokenizer else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError):
        return None
    return (tokenizer, model) if tokenizer is not None and model is not None else None


def read_config(model_dir: Path) -> BertConfig | None:
    """The BERT config, or None for any architecture or option the plain BERT does not have."""
    raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    plain = (
        raw.get("model_type") == "bert"
        and raw.get("hidden_act", "gelu") == "gelu"
        and raw.get("position_embedding_type", "absolute") == "absolute"
        and not raw.get("is_decoder")
        and not raw.get("add_cross_attention")
        and raw.get("hidden_size", 768) % raw.get("num_attention_heads", 12) == 0
        and raw.get("dtype", raw.get("torch_dtype")) in (None, "float32")  # else transformers casts
    )
    names = {field.name for field in fields(BertConfig)}
    return BertConfig(**{k: v for k, v in raw.items() if k in names}) if plain else None


def read_tokenizer(model_dir: Path, config: BertConfig) -> WordPieceTokenizer | None:
    """The tokenizer.json pipeline, or None where transformers' tokenizer could differ from it."""
    from tokenizers import Tokenizer

    path, settings_path = model_dir / "tokenizer.json", model_dir / "tokenizer_config.json"
    if not path.is_file():
        return None
    spec = json.loads(path.read_text(encoding="utf-8"))
    settings = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.is_file() else {}
    # transformers rebuilds BERT's normaliser from tokenizer_config.json: both must say the same
    normalizer = spec.get("normalizer") or {}
    agrees = (
        settings.get("tokenizer_class") in BERT_TOKENIZERS
        and (spec.get("model") or {}).get("type") == "WordPiece"
        and (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
        and spec.get("post_processor") is not None
        and normalizer.get("type") == "BertNormalizer"
        and normalizer.get("clean_text", True)
        and normalizer.get("lowercase") == settings.get("do_lower_case", True)
        and normalizer.get("handle_chinese_chars") == settings.get("tokenize_chinese_chars", True)
        and normalizer.get("strip_accents") == settings.get("strip_accents")
        and all(token.get("special") for token in spec.get("added_tokens", []))
    )
    if not agrees:
        return None
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    pad = tokenizer.token_to_id(_token(settings.get("pad_token", "[PAD]")))
    side = settings.get("truncation_side") or (spec.get("truncation") or {}).get("direction") or "right"
    return WordPieceTokenizer(tokenizer, pad if pad is not None else config.pad_token_id or 0, side.lower())


def read_model(model_dir: Path, config: BertConfig) -> BertModel | None:
    """The model with float32 weights from model.safetensors (with or without a `bert.` prefix)."""
    from safetensors import safe_open

    path = model_dir / "model.safetensors"
    if not path.is_file():
        return None
    with torch.device("meta"):  # no random initialisation: every weight is read from the file
        model = BertModel(config)
    with safe_open(str(path), framework="pt") as file:
        stored = set(file.keys())
        prefix = "" if "embeddings.word_embeddings.weight" in stored else "bert."
        weights = {name: file.get_tensor(prefix + name) for name in model.state_dict()}
    if any(tensor.dtype != torch.float32 for tensor in weights.values()):
        return None  # transformers may keep another dtype; the vectors must not move
    model.load_state_dict(weights, assign=True)
    return model.eval()


def _table(rows: int, width: int, padding_idx: int | None = None) -> nn.Embedding:
    """An embedding table with its weights left uninitialised, as they are read from the file.

    (Initialising one on the meta device would import torch._dynamo: 1-2 s.)
    """
    return nn.Embedding(rows, width, padding_idx, _weight=torch.empty(rows, width))


def _token(value: str | dict[str, Any]) -> str:
    """A special token's text, whether tokenizer_config.json stores it as a string or an object."""
    return value["content"] if isinstance(value, dict) else value
