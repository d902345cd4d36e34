"""The sentiment fine-tuning recipe end to end on a tiny made-up sample (seconds, real encoder)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from models.encoder import TransformerEncoder
from models.sentiment import LayerSentiment, load_scorer, save_head
from models.sentiment_training import Settings as HeadSettings
from models.sentiment_tuning import Settings, layer_arrays, read_rows, split, train

NEGATIVE = ("this is awful", "I hate waiting", "terrible support again", "worst day ever", "so annoying")
POSITIVE = ("thanks a lot", "this is great", "love it", "works perfectly now", "what a lovely day")
NEUTRAL = ("the meeting is at noon", "where is the invoice page", "my order number is 42", "it is tuesday")


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    labelled = [(t, "negative") for t in NEGATIVE] + [(t, "positive") for t in POSITIVE]
    write_csv(tmp_path / "goemotions_train.csv", [*labelled, *((t, "neutral") for t in NEUTRAL)] * 2)
    write_csv(tmp_path / "sst2_train.csv", labelled * 2)
    return tmp_path


def test_the_split_is_seeded_and_holds_out_a_tenth_of_each_source(data: Path) -> None:
    rows = read_rows(data)
    fitting, held = split(rows)
    again = split(rows)
    assert np.array_equal(fitting, again[0]) and np.array_equal(held, again[1])
    assert not set(fitting) & set(held)
    assert {str(s) for s in rows.source[held]} == {"goemotions", "sst2"}
    assert rows.binary.sum() == 20  # SST-2 rows choose between negative and positive only


def test_the_recipe_runs_end_to_end_and_its_artefact_loads(
    data: Path, tmp_path: Path, encoder: TransformerEncoder
) -> None:
    settings = Settings(tuned_layers=1, epochs=1.0, checks=1, batch=8)
    head, layers = train(data, None, settings, HeadSettings(max_epochs=2), encoder=encoder)
    assert head.encoder == encoder.name
    assert head.metadata["tuning"]["first"] == len(encoder.layers) - 1
    assert set(head.metadata["held_out"]) == {"goemotions_negative_f1", "sst2_negative_f1"}
    save_head(head, tmp_path / "tuned.npz", layer_arrays(layers))
    scorer = load_scorer(tmp_path / "tuned.npz", encoder)
    assert isinstance(scorer, LayerSentiment)
    assert scorer.first == len(encoder.layers) - 1
    results = scorer.score_batch(["this is awful", "thanks a lot", ""])
    assert all(-1.0 <= result.score <= 1.0 for result in results)
