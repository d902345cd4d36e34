"""The plain-torch BERT: transformers' vectors and token ids without importing transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.encoder import MAX_TOKENS, TransformerEncoder, default_model_dir

VARIED = [
    "",
    " ",
    "\t\n",
    "hi",
    "ok",
    "?",
    "how do I reset my password?",
    "HOW DO I RESET MY PASSWORD???",
    "My invoice for March is wrong, I was charged twice!!!",
    "can't log in... tried 3 times, still 'invalid token' (error #4012)",
    "refund pls 🙏",
    "🙂🙂",
    "😡😡😡 this is the worst support ever 👎",
    "¿Cómo cambio mi contraseña?",
    "Où est ma facture ? Je ne la trouve pas.",
    "Warum wurde mein Konto gesperrt? Ärgerlich!",
    "Почему не работает экспорт?",
    "パスワードをリセットするにはどうすればいいですか",
    "我的账户被锁定了",
    "هل يمكنني استرداد أموالي؟",
    "naïve café résumé — Ünïcödé ÀÉÎ",
    "[CLS] literal [SEP] and [MASK] tokens [PAD]",
    "<b>html</b> &amp; https://example.com/a?b=c#d user@example.com",
    "x" * 5000,
    "supercalifragilisticexpialidocious " * 3,
    "word " * 127,
    "word " * 300,
    " ".join(f"token{i}" for i in range(200)),
    "The export has been failing since yesterday. " * 20,
    "line one\nline two\n\nline four\r\nline five",
    "tabs\tand    many   spaces",
    "1234567890 3.14159 -42 1e10 $100.00 50%",
    "```python\nprint('hello')\n```",
    "zero\u200bwidth\u00a0space\ufeff",
]


@pytest.fixture(scope="module")
def reference() -> TransformerEncoder:
    """The bundled model loaded with transformers, as before the plain BERT."""
    return TransformerEncoder(default_model_dir(), plain=False)


def tiny_bert(folder: Path, *, tokenizer_json: bool = True, **config: Any) -> Path:
    """A random two-layer BERT checkpoint with a small word-level vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "how", "do", "i", "reset", "my", "password"]
    folder.mkdir()
    BertTokenizerFast(vocab={word: i for i, word in enumerate(words)}).save_pretrained(str(folder))
    if not tokenizer_json:
        (folder / "tokenizer.json").unlink()
    torch.manual_seed(0)
    settings = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    values = {"vocab_size": len(words), "max_position_embeddings": MAX_TOKENS, **settings, **config}
    BertModel(BertConfig(**values)).save_pretrained(str(folder))
    return folder


def close(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Same sentence vectors: cosine at least 0.99999 and no component off by more than 1e-4."""
    return float((ours * theirs).sum(1).min()) >= 0.99999 and float(np.abs(ours - theirs).max()) <= 1e-4


@pytest.mark.model
def test_the_bundled_model_gives_transformers_vectors(
    encoder: TransformerEncoder, reference: TransformerEncoder
) -> None:
    assert type(encoder.model).__module__ == "models.bert"
    assert close(encoder.encode(VARIED), reference.encode(VARIED))


@pytest.mark.model
def test_token_ids_and_padding_match_transformers(
    encoder: TransformerEncoder, reference: TransformerEncoder
) -> None:
    ours = encoder.tokenizer(VARIED, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    assert ours == reference.tokenizer(VARIED, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    assert max(map(len, ours)) == MAX_TOKENS
    assert encoder.tokenizer.pad_token_id == reference.tokenizer.pad_token_id
    options: dict[str, Any] = {"padding": True, "truncation": True, "max_length": 64, "return_tensors": "pt"}
    padded, theirs = encoder.tokenizer(VARIED, **options), reference.tokenizer(VARIED, **options)
    for key in ("input_ids", "attention_mask"):
        assert padded[key].tolist() == theirs[key].tolist()


@pytest.mark.model
def test_shared_layers_and_the_cache_key_are_unchanged(
    encoder: TransformerEncoder, reference: TransformerEncoder
) -> None:
    """Stored embeddings (keyed by name) and cached tuned layers (by parameter name) stay valid."""
    assert encoder.name == reference.name
    assert encoder.model.config.num_hidden_layers == reference.model.config.num_hidden_layers
    assert list(encoder.layers.state_dict()) == list(reference.layers.state_dict())
    base, top = encoder.encode_tops(VARIED, 3, [encoder.layers[3:], reference.layers[3:]])
    assert close(base, top)


@pytest.mark.model
def test_the_bundled_model_loads_without_importing_transformers() -> None:
    script = (
        "import sys; from models.encoder import TransformerEncoder, default_model_dir; "
        "TransformerEncoder(default_model_dir(), workers=1).encode(['hello']); "
        "print('transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_small_bert_gives_the_same_vectors_both_ways(tmp_path: Path) -> None:
    folder = tiny_bert(tmp_path / "bert")
    plain, transformers = (
        TransformerEncoder(folder, workers=1),
        TransformerEncoder(folder, workers=1, plain=False),
    )
    assert type(plain.model).__module__ == "models.bert"
    texts = ["how do i reset my password", "password", "", "unknown words here " * 30]
    assert close(plain.encode(texts), transformers.encode(texts))


@pytest.mark.parametrize(
    ("change", "options"),
    [
        ("no tokenizer.json", {"tokenizer_json": False}),
        ("relative positions", {"position_embedding_type": "relative_key"}),
        ("another activation", {"hidden_act": "relu"}),
    ],
)
def test_other_directories_load_with_transformers(
    tmp_path: Path, change: str, options: dict[str, Any]
) -> None:
    folder = tiny_bert(tmp_path / "bert", **options)
    encoder = TransformerEncoder(folder, workers=1)
    assert type(encoder.model).__module__.startswith("transformers."), change
    assert encoder.encode(["how do i reset my password"]).shape == (1, 32)


def test_fine_tuning_gives_the_same_layers_both_ways(tmp_path: Path) -> None:
    """Dropout draws in the same order, so a tuned cache made with transformers stays right."""
    from models.adaptation import lower_states, train_top_layers

    folder = tiny_bert(tmp_path / "bert")
    texts = ["how do i reset my password", "reset password", "my password", "how do i", "do i reset"] * 4
    labels = ["a", "b", "a", "b", "a"] * 4
    tuned = []
    for plain in (True, False):
        encoder = TransformerEncoder(folder, workers=1, plain=plain)
        states = lower_states(encoder.tokenizer, encoder.model, texts, 1)
        layers = train_top_layers(encoder.model, states, labels, tuned_layers=1, epochs=2.0)
        tuned.append(layers.state_dict())
    assert list(tuned[0]) == list(tuned[1])
    assert all(float((tuned[0][name] - tuned[1][name]).abs().max()) <= 1e-6 for name in tuned[1])
