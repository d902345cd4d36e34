"""One turn through the models: a sentiment scorer with tuned top layers shares the lower layers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from bot.brain import Brain, clean_turn
from handoff.knowledge import KnowledgeBase
from models.encoder import TransformerEncoder
from models.faq import Retrieval
from models.kb import Entry
from models.requests import HumanRequestDetector
from models.sentiment import Head, LayerSentiment, learned_cue_names, tuned_layers
from models.tuned import TunedEncoder, load_or_tune

TOPICS = ("refund", "password", "invoice", "outage", "teammate", "card", "export", "delete")
FRAMES = ("how do i {}", "help with {} please", "question about {}", "my {} is not working", "{} page")
WORDS = sorted({w for frame in FRAMES for w in frame.replace("{}", "").split()} | set(TOPICS))
TURNS = ["how do i refund", "my password is not working", "", "help with invoice please", "🙂🎉"]
WORDY = [t for t in TURNS if t.isascii() and t]  # turns with words in them


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TransformerEncoder:
    """A randomly initialised four-layer BERT with a word-level vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]))
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(WORDS) + 5, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    BertModel(config).save_pretrained(str(folder))
    return TransformerEncoder(Path(folder), workers=1)


def layer_scorer(encoder: TransformerEncoder, count: int) -> LayerSentiment:
    """A scorer whose `count` top layers differ from the encoder's, with a random head."""
    import torch

    rng = np.random.default_rng(0)
    top = torch.nn.ModuleList(encoder.layers[-count:]).state_dict()
    arrays = {
        key: value.numpy() + rng.normal(0, 0.05, value.shape).astype(np.float32) for key, value in top.items()
    }
    layers, first = tuned_layers(arrays, encoder)
    head = Head(
        w1=rng.normal(0, 1, (32, 8)).astype(np.float32),
        b1=np.zeros(8, np.float32),
        w2=rng.normal(0, 1, (8, 3)).astype(np.float32),
        b2=np.zeros(3, np.float32),
        ngram_weights=np.zeros((16, 3), np.float32),
        cue_weights=np.zeros((len(learned_cue_names()), 3), np.float32),
        negative_threshold=-0.2,
        positive_threshold=0.2,
    )
    return LayerSentiment(head, layers, first, encoder)


def entries() -> list[Entry]:
    return [
        Entry(id=t, question=FRAMES[0].format(t), alternates=tuple(f.format(t) for f in FRAMES[1:]), answer=t)
        for t in TOPICS
    ]


@pytest.fixture
def lower_passes(tiny: TransformerEncoder) -> Iterator[list[int]]:
    """Counts the forward passes through the embeddings (one per pass through the lower layers)."""
    calls: list[int] = []
    hook = tiny.model.embeddings.register_forward_hook(lambda *_: calls.append(1))
    yield calls
    hook.remove()


def brain(encoder: object, base: TransformerEncoder, scorer: LayerSentiment) -> Brain:
    knowledge = KnowledgeBase(Database(memory=True), encoder)  # type: ignore[arg-type]
    knowledge.import_entries(entries(), "test")
    return Brain(encoder, knowledge, scorer, HumanRequestDetector(base))  # type: ignore[arg-type]


def plain_values(retrieval: Retrieval, approx: bool = False) -> tuple[object, ...]:
    """A retrieval's entries and numbers; with `approx`, numbers that match to float32 precision
    (a batch of one and a batch of many may round the last bit differently)."""
    picks = (retrieval.best, retrieval.runner_up)
    numbers = [retrieval.confidence] + [n for c in picks if c for n in (c.similarity, c.probability)]
    return (
        *(c and c.entry_id for c in picks),
        *(pytest.approx(n, abs=1e-6) if approx else n for n in numbers),
    )


def test_the_scorer_layers_run_on_the_turns_one_lower_pass(
    tiny: TransformerEncoder, lower_passes: list[int]
) -> None:
    scorer = layer_scorer(tiny, 1)
    expected = scorer.score_batch(TURNS)
    plain = brain(tiny, tiny, scorer)
    lower_passes.clear()
    readings = plain.read(TURNS)
    assert len(lower_passes) == 1
    assert [r.sentiment for r in readings] == expected
    base = plain.knowledge.index().search(tiny.encode(WORDY))  # FAQ reads the base
    read = [r.retrieval for r, t in zip(readings, TURNS, strict=True) if t in WORDY]
    assert [plain_values(r) for r in read] == [plain_values(r, approx=True) for r in base]
    for wordless in ("", "🙂🎉"):
        blank = readings[TURNS.index(wordless)].retrieval
        assert blank.best is None and blank.runner_up is None and blank.confidence == 0.0
    plain.close()


def test_slack_emoji_codes_reach_the_models_as_emoji(tiny: TransformerEncoder) -> None:
    plain = brain(tiny, tiny, layer_scorer(tiny, 1))
    coded, typed, wave = plain.read([":rage::rage: still broken", "😡😡 still broken", ":wave::tada:"])
    assert coded == typed
    assert any("angry emoji" in signal for signal in coded.sentiment.signals)
    assert wave.retrieval.best is None and wave.retrieval.confidence == 0.0
    plain.close()


def test_with_a_tuned_kb_encoder_three_stacks_share_one_lower_pass(
    tiny: TransformerEncoder, tmp_path: Path, lower_passes: list[int]
) -> None:
    texts = [text for entry in entries() for text in entry.examples]
    labels = [entry.id for entry in entries() for _ in entry.examples]
    tuned = load_or_tune(tiny, texts, labels, tmp_path)
    scorer = layer_scorer(tiny, 2)
    assert tuned.first < scorer.first  # sentiment's stack starts with base layers
    expected = scorer.score_batch(TURNS)
    faq = tuned.encode(WORDY)
    both = brain(tuned, tiny, scorer)
    lower_passes.clear()
    readings = both.read(TURNS)
    assert len(lower_passes) == 1
    for got, want in zip([r.sentiment for r in readings], expected, strict=True):
        assert got.label is want.label and got.score == pytest.approx(want.score, abs=1e-4)
    kb = both.knowledge.index().search(faq)
    live = [r.retrieval for r, t in zip(readings, TURNS, strict=True) if t in WORDY]
    assert [r.best.entry_id for r in live if r.best] == [r.best.entry_id for r in kb if r.best]
    assert isinstance(tuned, TunedEncoder)
    both.close()


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("<@U123> my Q&amp;A page shows &lt;none&gt;", "my Q&A page shows <none>"),
        (
            "see <https://tally.example/help|the help page> &amp; <https://x.example>",
            "see the help page & https://x.example",
        ),
        ("&amp;lt; stays as typed", "&lt; stays as typed"),
        ("<!here>   refund   please", "refund please"),
        ("mail <mailto:dana@a.example|dana@a.example> or <tel:+1555|call>", "mail dana@a.example or call"),
        ("as I said in <#C123|billing> <mailto:x@y.example>", "as I said in #billing x@y.example"),
        ("still broken :rage::rage: :-1::skin-tone-3:", "still broken 😡😡 👎🏼"),
        ("thanks :slightly_smiling_face: :tada:", "thanks 🙂 🎉"),
        ("meet at 10:30:45 :our-logo:", "meet at 10:30:45 :our-logo:"),
    ],
)
def test_a_turn_reaches_the_models_as_the_words_the_customer_typed(slack: str, plain: str) -> None:
    assert clean_turn(slack) == plain
