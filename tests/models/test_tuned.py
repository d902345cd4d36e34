"""Fine-tuning on a knowledge base, with a tiny random BERT the tests build (no real model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.calibration import Evidence, folds, threshold
from models.encoder import TransformerEncoder
from models.tuned import TunedEncoder, cache_key, load_or_tune, tune, worth_tuning

TOPICS = ("refund", "password", "invoice", "outage", "teammate", "card", "export", "delete")
FRAMES = (
    "how do i {}",
    "help with {} please",
    "question about {}",
    "my {} is not working",
    "where is the {} page",
    "can you explain {}",
)
WORDS = sorted({w for frame in FRAMES for w in frame.replace("{}", "").split()} | set(TOPICS))


def synthetic_kb() -> tuple[list[str], list[str]]:
    """Eight entries, six phrasings each: the topic word is what tells them apart."""
    rows = [(frame.format(topic), topic) for topic in TOPICS for frame in FRAMES]
    return [text for text, _ in rows], [label for _, label in rows]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised four-layer BERT and a word-level tokenizer, saved like a checkpoint."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n"
    )
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def base(tiny_model: Path) -> TransformerEncoder:
    return TransformerEncoder(tiny_model, workers=1)


@pytest.fixture(scope="module")
def tuned(base: TransformerEncoder, tmp_path_factory: pytest.TempPathFactory) -> TunedEncoder:
    texts, labels = synthetic_kb()
    return load_or_tune(base, texts, labels, tmp_path_factory.mktemp("tuned"))


def test_the_shared_lower_layers_give_the_base_vectors_unchanged(
    base: TransformerEncoder, tuned: TunedEncoder
) -> None:
    texts = ["how do i refund", "password", "where is the export page please"]
    base_vectors, faq_vectors = tuned.encode_pair(texts)
    np.testing.assert_allclose(base_vectors, base.encode(texts), atol=1e-5)
    np.testing.assert_allclose(faq_vectors, tuned.encode(texts), atol=1e-5)
    assert not np.array_equal(faq_vectors, base_vectors)  # the top layers did change


def test_tuning_is_deterministic_and_leaves_the_base_model_alone(
    base: TransformerEncoder, tuned: TunedEncoder
) -> None:
    texts, labels = synthetic_kb()
    before = base.encode(texts)
    layers, info = tune(base, texts, labels)
    again = TunedEncoder(base, layers, info)
    np.testing.assert_array_equal(again.encode(texts), tuned.encode(texts))
    assert info.threshold == tuned.info.threshold and info.slope == tuned.info.slope
    np.testing.assert_array_equal(base.encode(texts), before)


def test_a_cached_tuning_is_loaded_not_redone(base: TransformerEncoder, tmp_path: Path) -> None:
    texts, labels = synthetic_kb()
    lines: list[str] = []
    first = load_or_tune(base, texts, labels, tmp_path, lines.append)
    assert any("fine-tuning" in line for line in lines)  # progress was reported
    lines.clear()
    second = load_or_tune(base, texts, labels, tmp_path, lines.append)
    assert lines == []
    np.testing.assert_array_equal(second.encode(texts), first.encode(texts))
    (folder,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    saved = json.loads((folder / "tuning.json").read_text())
    assert saved["key"] == folder.name == second.info.key
    assert second.name != base.name  # the embedding cache keeps tuned and base vectors apart


def test_the_cache_key_follows_the_kb_and_the_base_model() -> None:
    texts, labels = synthetic_kb()
    key = cache_key("model-a", texts, labels)
    assert cache_key("model-a", texts[::-1], labels[::-1]) == key  # row order does not matter
    assert cache_key("model-a", [*texts[:-1], "a new question"], labels) != key
    assert cache_key("model-a", texts, [*labels[:-1], "other"]) != key
    assert cache_key("model-a", texts[:-1], labels[:-1]) != key
    assert cache_key("model-b", texts, labels) != key


def test_the_confidence_is_one_half_at_the_kb_threshold(tuned: TunedEncoder) -> None:
    info = tuned.info
    at = tuned.calibrator.confidence(np.array([info.threshold]), np.zeros(1))[0]
    above = tuned.calibrator.confidence(np.array([info.threshold + 0.1]), np.zeros(1))[0]
    assert at == pytest.approx(0.5) and above > 0.5


def test_folds_hold_out_whole_entries_and_use_nothing_but_the_kb() -> None:
    _, labels = synthetic_kb()
    y = np.asarray(labels)
    parts = folds(labels)
    assert len(parts) >= 2
    for fold in parts:
        assert sorted([*fold.train, *fold.calibration]) == list(range(len(labels)))
        assert not set(y[fold.train]) & fold.held_out
        assert set(y[fold.calibration]) >= fold.held_out
    assert len(set().union(*(fold.held_out for fold in parts))) >= 6


def test_the_threshold_is_the_median_held_out_entry_each_counted_once() -> None:
    top = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.3, 0.3, 0.3, 0.5, 0.6])
    correct = np.array([True, True, True, False, False, False, False, False, False, False])
    unknown = np.array([False, False, False, False, True, True, True, True, True, True])
    entry = np.array(["a", "a", "b", "b", "big", "big", "big", "big", "c", "d"])
    point = threshold(Evidence(top, correct, unknown, entry))
    assert point.cosine == pytest.approx(0.5)  # entries big, c, d: 0.3, 0.5, 0.6 (not 0.3 pooled)
    assert point.slope > 1.0
    assert point.confidence(np.array([0.95]))[0] > 0.5 > point.confidence(np.array([0.35]))[0]


def test_small_knowledge_bases_are_not_worth_tuning() -> None:
    _, labels = synthetic_kb()
    assert worth_tuning(labels)
    assert not worth_tuning(labels[:18])  # three entries
    assert not worth_tuning([label for i, label in enumerate(labels) if i % 6 < 3])  # three phrasings each


def test_baton_eval_tunes_once_per_kb_whatever_the_test_labels(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    texts, labels = synthetic_kb()
    kb = tmp_path / "kb.csv"
    kb.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in zip(texts, labels, strict=True)))
    questions = ["refund please", "my password", "where is the invoice", "delete export"]
    runs = []
    for name, gold in (("a", ["refund", "password", "oos", "oos"]), ("b", ["oos"] * 4)):
        test = tmp_path / f"{name}.csv"
        test.write_text("text,label\n" + "".join(f"{q},{g}\n" for q, g in zip(questions, gold, strict=True)))
        monkeypatch.setenv("BATON_MODEL", str(tiny_model))
        monkeypatch.setenv("BATON_DB", str(tmp_path / "baton.db"))
        monkeypatch.setenv("BATON_TUNED_DIR", str(tmp_path / "tuned"))
        assert main(["eval", "--kb", str(kb), "--test", str(test), "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    assert runs[0]["tuned"] and runs[1]["tuned"] and runs[0]["n"] == 4
    (folder,) = [p for p in (tmp_path / "tuned").iterdir() if not p.name.startswith(".")]
    assert folder.is_dir()  # the second run reused the first run's tuning, made from the KB alone
    assert main(["eval", "--kb", str(kb), "--test", str(test), "--no-tune", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tuned"] is False
