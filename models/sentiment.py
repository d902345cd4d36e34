"""Sentiment of a customer turn: a small head on a sentence vector, plus cues.

The default scorer (`LayerSentiment`) reads the vector of the encoder's top layers fine-tuned for
sentiment (`models.sentiment_tuning`), run on the lower layers' hidden states the turn's FAQ pass
computes anyway: sentiment costs those tuned layers, not a second model pass. A head without
tuned layers (`HeadSentiment`) reads the FAQ encoder's own sentence vector. Surface cues the
(uncased) encoder cannot see or under-weights -- shouting, "!!!", swearing, emoji, support
complaints such as "still waiting" -- adjust the head's logits.
A local Hugging Face sequence-classification checkpoint can replace the whole scorer.
Raises `SentimentError` when a head or checkpoint cannot be loaded or does not fit its input.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

NEGATIVE, NEUTRAL, POSITIVE = 0, 1, 2  # logit order of every head
MAX_CUE_CHARS = 4000  # cues look at the start of very long pastes only


class SentimentError(Exception):
    """A sentiment model cannot be loaded or cannot score its input."""


class Polarity(Enum):
    """The label of a turn's sentiment."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


@dataclass(frozen=True)
class Sentiment:
    """A turn's sentiment: score in [-1, 1], its label and the signals that fired."""

    score: float
    label: Polarity
    signals: tuple[str, ...] = ()


EMPTY = Sentiment(0.0, Polarity.NEUTRAL, ("empty",))  # what a blank turn scores


class SentimentModel(Protocol):
    """Anything that scores turns; `vector` is the turn's sentence embedding (may be ignored)."""

    def score(self, text: str, vector: np.ndarray | None = None) -> Sentiment:
        """Score one turn."""
        ...

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Sentiment]:
        """Score several turns."""
        ...


# --- cues -------------------------------------------------------------------------------------


def _words(words: str) -> re.Pattern[str]:
    """A case-blind pattern for whole words (space-separated regexes)."""
    return re.compile(r"\b(?:" + "|".join(words.split()) + r")\b", re.IGNORECASE)


# Cues whose weights are fitted with the head: they occur often enough in the training corpora.
LEARNED_CUES: dict[str, re.Pattern[str]] = {
    "swearing": _words(
        r"f+u+c+k\w* sh[i1]t\w* damn goddamn crap crappy wtf ffs bs bullsh\w* piss(?:ed)?"
        r" asshole arse bastard bloody hell screw(?:ed)?"
    ),
    "negative words": _words(
        r"useless terrible awful horrible worst broken pathetic garbage rubbish hate hated sucks?"
        r" annoy(?:ed|ing)? frustrat(?:ed|ing) angry furious disappoint(?:ed|ing)"
        r" disgust(?:ed|ing) unacceptable ridiculous incompetent scam waste wasted stupid"
        r" crashes fails? failed failing sad upset worse nightmare joke fed\s+up sick\s+of"
    ),
    "positive words": _words(
        r"thanks? thank\s+you thx ty great awesome perfect appreciated? helpful love loved"
        r" excellent amazing brilliant fantastic wonderful glad happy solved works\s+now cheers"
    ),
    "angry emoji": re.compile(
        "[\U0001f620\U0001f621\U0001f624\U0001f92c\U0001f44e\U0001f4a9"
        "\U0001f612\U0001f644\U0001f61e\U0001f622\U0001f614\U0001f629"
        "\U0001f62b\U0001f92e\U0001f922\U0001f595\u2639]"
    ),
    "happy emoji": re.compile(
        "[\U0001f600-\U0001f60d\U0001f642\U0001f917\U0001f44d\U0001f44f"
        "\U0001f64f\U0001f389\u2764\u2665\U0001f495\U0001f49c\U0001f499"
        "\U0001f49a\U0001f49b\U0001f970\U0001f929\u263a\U0001f44c]"
    ),
    "repeated punctuation": re.compile(r"[!?]{2,}"),
}
SHOUTING = "shouting"
# Intensifiers amplify whichever way the head already leans, so "THANK YOU!!!" stays happy.
INTENSIFIERS = (SHOUTING, "repeated punctuation")

# Support complaints are nearly absent from the training corpora (Reddit, film reviews), so their
# weights are priors, not fitted: each adds SUPPORT_PRIOR to the negative logit, about what a
# clearly negative word does, and none can outvote a strongly positive head on its own.
SUPPORT_PRIOR = 1.5
SUPPORT_CUES: dict[str, re.Pattern[str]] = {
    "still waiting": re.compile(
        r"\bstill (?:waiting|no (?:reply|answer|response|update|news|word))\b"
        r"|\bstill (?:not|hasn'?t|haven'?t) (?:here|arrived|received|delivered|come|shipped|sent|"
        r"processed|refunded)\b"
        r"|\bwaiting (?:for|since) (?:hours|days|weeks|ages|forever)\b|\bno one (?:has )?"
        r"(?:replied|answered|responded|got back)\b|\bnobody (?:has )?(?:replied|answered|"
        r"responded|got back)\b",
        re.IGNORECASE,
    ),
    "third time": re.compile(
        r"\b(?:second|2nd|third|3rd|fourth|4th|fifth|5th|umpteenth|\d+(?:th|rd|nd)) time\b"
        r"|\bhow many (?:more )?times\b|\bagain and again\b|\bover and over\b",
        re.IGNORECASE,
    ),
    "useless bot": re.compile(
        r"\b(?:useless|stupid|dumb|pointless|worthless|terrible|rubbish|crap|idiot(?:ic)?)"
        r" (?:bot|chatbot|robot|ai|assistant|support|service|app|answers?)\b"
        r"|\byou(?:'re| are) (?:useless|no help|not helping|not helpful)\b|\bnot helpful\b",
        re.IGNORECASE,
    ),
    "this is ridiculous": re.compile(
        r"\b(?:this|that|it)(?: is|'s) (?:ridiculous|unacceptable|absurd|a joke|insane|"
        r"outrageous|a disgrace|beyond a joke|so frustrating)\b"
        r"|\b(?:is|are) (?:a|an) (?:\w+ )?(?:joke|disgrace|shambles|farce)\b",
        re.IGNORECASE,
    ),
    "not working again": re.compile(
        r"\b(?:not|isn'?t|doesn'?t|won'?t|can'?t|stopped|never) work(?:s|ing|ed)? again\b"
        r"|\bstill (?:not|isn'?t|doesn'?t|won'?t|can'?t) (?:work|load|open|fixed|resolved)"
        r"|\b(?:broken|down|failing|crashing) again\b|\bstill broken\b",
        re.IGNORECASE,
    ),
    "wants to leave": re.compile(
        r"\b(?:cancel|close|delete) my (?:account|subscription|order|membership|plan)\b"
        r"|\b(?:want|demand|need|give me) (?:a|my) refund\b|\bmy money back\b",
        re.IGNORECASE,
    ),
}


# A customer's apology is politeness ("sorry, I meant…", "sorry to bother you"), but the training
# corpora read "sorry" as remorse or sad news, so the score stays as measured and the turn carries
# an "apology" signal: the trigger policy does not hand a polite turn off on its score alone.
APOLOGY = re.compile(
    r"^\W*(?:(?:i'?m|i am|so|very|really) )*sorry\b(?!,? but| to hear| for your loss)"
    r"|\bsorry,? (?:i meant|i mean|my bad|typo|wrong (?:one|question))\b"
    r"|\bsorry (?:for|about) (?:the|my) (?:confusion|typo|mistake|delay|late reply|trouble|bother|"
    r"questions?|english|spelling)\b|\bsorry (?:to|for) (?:bother|trouble|disturb|ask)\w*\b",
    re.IGNORECASE,
)
APOLOGY_SIGNAL = "apology"


def is_apology(text: str, found: dict[str, list[str]]) -> bool:
    """Whether a turn apologises politely (and does not complain)."""
    return not any(name in found for name in COMPLAINT_CUES) and bool(APOLOGY.search(text[:MAX_CUE_CHARS]))


# Emoji are unknown tokens to the encoder and rare in the training corpora, so an angry one is a
# complaint prior too; shouting or "???" on a complaint makes it louder, not merely emphatic.
COMPLAINT_CUES = (*SUPPORT_CUES, "angry emoji")
LOUDNESS = 0.5
_LETTER = re.compile(r"[^\W\d_]")


def complaint_offset(found: dict[str, list[str]]) -> float:
    """What the complaint cues add to the negative logit, amplified by the intensifiers."""
    complaints = sum(name in found for name in COMPLAINT_CUES)
    loud = sum(name in found for name in INTENSIFIERS)
    return SUPPORT_PRIOR * complaints * (1 + LOUDNESS * loud)


def is_shouting(text: str) -> bool:
    """Whether most words of three or more letters are in capitals (and at least two are)."""
    words = re.findall(r"[^\W\d_]{3,}", text)
    loud = sum(word.isupper() for word in words)
    return loud >= 2 and loud * 2 >= len(words)


def find_cues(text: str) -> dict[str, list[str]]:
    """The learned and support cues in a text, each with the words that matched it."""
    text = text[:MAX_CUE_CHARS]
    found: dict[str, list[str]] = {}
    if is_shouting(text):
        found[SHOUTING] = []
    for name, pattern in (LEARNED_CUES | SUPPORT_CUES).items():
        matches = [m.group(0).lower() for m in pattern.finditer(text)]
        if matches:
            found[name] = list(dict.fromkeys(matches))
    return found


LEXICON_FEATURES = ("lexicon compound", "lexicon positive", "lexicon negative")


def learned_cue_names() -> tuple[str, ...]:
    """Learned features in order: cue flags, lexicon valence, each intensifier times the lean."""
    intensified = (f"{name} x lean" for name in INTENSIFIERS)
    return (SHOUTING, *LEARNED_CUES, *LEXICON_FEATURES, *intensified)


def cue_features(found: dict[str, list[str]], valence: tuple[float, float, float], lean: float) -> np.ndarray:
    """The learned features as a float32 vector, given the head's own lean in [-1, 1]."""
    plain = [float(name in found) for name in (SHOUTING, *LEARNED_CUES)]
    amplified = [float(name in found) * lean for name in INTENSIFIERS]
    return np.asarray([*plain, *valence, *amplified], dtype=np.float32)


# --- a word-valence lexicon, read the VADER way ----------------------------------------------


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


NEGATIONS = _wordset(
    "not no never none nobody nothing neither nor nowhere cannot without aint isnt arent wasnt"
    " werent dont doesnt didnt cant couldnt wont wouldnt shouldnt hasnt havent hadnt"
)
BOOSTERS = _wordset(
    "very really so extremely totally absolutely completely utterly incredibly super too most"
    " deeply highly hugely seriously fucking"
)
EDGE_PUNCTUATION = "\"'.,;:!?()[]{}<>*_~`"


def valence(text: str, lexicon: dict[str, float]) -> tuple[float, float, float]:
    """VADER-style valence: compound in [-1, 1], positive share, negative share."""
    raw = text[:MAX_NGRAM_CHARS].split()
    words = [token.strip(EDGE_PUNCTUATION).lower() for token in raw]
    some_caps = any(t.isupper() for t in raw) and not all(t.isupper() for t in raw)
    values = [_word_valence(i, raw, words, lexicon, some_caps) for i in range(len(raw))]
    if "but" in words:  # what follows "but" dominates
        pivot = words.index("but")
        values = [v * (0.5 if i < pivot else 1.5) for i, v in enumerate(values)]
    total = sum(values)
    if total:
        total += math.copysign(min(text.count("!"), 4) * 0.292, total)
    positive = sum(v + 1 for v in values if v > 0)
    negative = sum(1 - v for v in values if v < 0)
    spread = positive + negative + sum(1 for v in values if v == 0) or 1.0
    return total / math.sqrt(total * total + 15), positive / spread, negative / spread


def _word_valence(
    i: int, raw: list[str], words: list[str], lexicon: dict[str, float], some_caps: bool
) -> float:
    value = lexicon.get(raw[i].lower(), lexicon.get(words[i], 0.0))  # emoticons keep punctuation
    if not value:
        return 0.0
    if some_caps and raw[i].isupper():
        value += math.copysign(0.733, value)
    if i and words[i - 1] in BOOSTERS:
        value += math.copysign(0.293, value)
    window = [w.replace("'", "") for w in words[max(0, i - 3) : i]]
    if any(w in NEGATIONS for w in window):
        value *= -0.74
    return value


# --- word and character n-grams ---------------------------------------------------------------

MAX_NGRAM_CHARS = 1000  # about what the encoder's 128 tokens cover
TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]+|[^\w\s]")


def ngram_ids(text: str, buckets: int) -> np.ndarray:
    """Sorted hashed ids of a text's words, word pairs and in-word character 3- to 5-grams."""
    words = TOKEN.findall(text[:MAX_NGRAM_CHARS].lower())
    grams = [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]
    for word in words:
        padded = f"<{word}>"
        grams.extend(padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1))
    ids = {zlib.crc32(gram.encode("utf-8", "surrogatepass")) % buckets for gram in grams}
    return np.fromiter(sorted(ids), dtype=np.int64, count=len(ids))


# --- the head ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Head:
    """A trained head: (embedding, n-grams) -> (neg, neutral, pos) logits, cue weights, cut-offs."""

    w1: np.ndarray  # (dim, hidden): a one-hidden-layer MLP on the sentence embedding
    b1: np.ndarray  # (hidden,)
    w2: np.ndarray  # (hidden, 3)
    b2: np.ndarray  # (3,)
    ngram_weights: np.ndarray  # (buckets, 3): a bag of hashed n-grams, L2-normalised
    cue_weights: np.ndarray  # (len(learned_cue_names()), 3)
    negative_threshold: float  # score at or below which a turn is negative
    positive_threshold: float  # score at or above which a turn is positive
    lexicon: dict[str, float] = field(default_factory=dict)  # word -> valence in [-4, 4]
    encoder: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """The embedding size the head expects."""
        return int(self.w1.shape[0])

    @property
    def buckets(self) -> int:
        """The number of n-gram hash buckets."""
        return int(self.ngram_weights.shape[0])

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        """The embedding part of the logits: (n, 3) for (n, dim) embeddings."""
        hidden = np.maximum(vectors @ self.w1 + self.b1, 0.0)
        return np.asarray(hidden @ self.w2 + self.b2)

    def ngram_logits(self, ids: np.ndarray) -> np.ndarray:
        """The n-gram part of the logits for one text's ids: (3,)."""
        if not len(ids):
            return np.zeros(3, dtype=np.float32)
        return np.asarray(self.ngram_weights[ids].sum(axis=0) / np.sqrt(len(ids)))


def default_head_path() -> Path:
    """The head shipped with Baton, trained by `models.sentiment_training`."""
    return Path(__file__).parent / "data" / "sentiment_head.npz"


def load_head(path: Path) -> Head:
    """Read a head saved by `save_head`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        names = tuple(str(name) for name in arrays["cue_names"])
        metadata = json.loads(str(arrays["metadata"]))
        floats = {
            key: arrays[key].astype(np.float32)
            for key in ("w1", "b1", "w2", "b2", "ngram_weights", "cue_weights")
        }
        head = Head(
            **floats,
            negative_threshold=float(arrays["negative_threshold"]),
            positive_threshold=float(arrays["positive_threshold"]),
            lexicon=dict(
                zip(
                    (str(w) for w in arrays["lexicon_words"]),
                    (float(v) for v in arrays["lexicon_values"]),
                    strict=True,
                )
            ),
            encoder=str(arrays["encoder"]),
            metadata=metadata,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise SentimentError(f"cannot read a sentiment head from {path}: {exc}") from exc
    if names != learned_cue_names():
        raise SentimentError(f"{path} was trained with cues {names}, not {learned_cue_names()}")
    return head


def save_head(head: Head, path: Path, layers: dict[str, np.ndarray] | None = None) -> None:
    """Write a head, and any tuned layers' `layer.*` arrays, as one .npz (no pickles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = dict(layers or {})
    np.savez_compressed(
        path,
        **arrays,
        w1=head.w1.astype(np.float16),
        b1=head.b1.astype(np.float32),
        w2=head.w2.astype(np.float32),
        b2=head.b2.astype(np.float32),
        ngram_weights=head.ngram_weights.astype(np.float16),
        cue_weights=head.cue_weights.astype(np.float32),
        cue_names=np.asarray(learned_cue_names()),
        lexicon_words=np.asarray(sorted(head.lexicon)),
        lexicon_values=np.asarray([head.lexicon[w] for w in sorted(head.lexicon)], np.float16),
        negative_threshold=np.float32(head.negative_threshold),
        positive_threshold=np.float32(head.positive_threshold),
        encoder=np.asarray(head.encoder),
        metadata=np.asarray(json.dumps(head.metadata, sort_keys=True)),
    )


def load_layer_arrays(path: Path) -> dict[str, np.ndarray]:
    """The tuned layers' weights saved with a head (`layer.<name>` arrays), as float32; may be empty."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {
                key.removeprefix("layer."): data[key].astype(np.float32)
                for key in data.files
                if key.startswith("layer.")
            }
    except (OSError, ValueError) as exc:
        raise SentimentError(f"cannot read tuned layers from {path}: {exc}") from exc


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (..., k) logits."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


def polarity_for(score: float, negative_threshold: float, positive_threshold: float) -> Polarity:
    """The label a score earns under the given thresholds."""
    if score <= negative_threshold:
        return Polarity.NEGATIVE
    if score >= positive_threshold:
        return Polarity.POSITIVE
    return Polarity.NEUTRAL


def model_logits(text: str, vector: np.ndarray, head: Head) -> np.ndarray:
    """The head's logits from the embedding and n-grams; zeros for a turn with no letters."""
    if not _LETTER.search(text):  # emoji and symbols only: unknown tokens, the model reads noise
        return np.zeros(len(head.b2), dtype=np.float32)
    return head.logits(vector[None, :])[0] + head.ngram_logits(ngram_ids(text, head.buckets))


def score(text: str, vector: np.ndarray, head: Head) -> Sentiment:
    """Score one turn from its text and its sentence embedding (pure)."""
    if not text.strip():
        return EMPTY
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vector.shape != (head.dim,):
        raise SentimentError(f"expected a {head.dim}-d embedding, got shape {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise SentimentError("the embedding has non-finite values")
    logits = model_logits(text, vector, head)
    probs = softmax(logits)
    lean = float(probs[POSITIVE] - probs[NEGATIVE])
    found = find_cues(text)
    lexical = valence(text, head.lexicon)
    logits = logits + cue_features(found, lexical, lean) @ head.cue_weights
    logits[NEGATIVE] += complaint_offset(found)
    probs = softmax(logits)
    value = float(np.clip(probs[POSITIVE] - probs[NEGATIVE], -1.0, 1.0))
    label = polarity_for(value, head.negative_threshold, head.positive_threshold)
    signals = [f"model {lean:+.2f}", *describe_cues(found)]
    if is_apology(text, found):
        signals.append(APOLOGY_SIGNAL)
    if abs(lexical[0]) >= 0.05:
        signals.insert(1, f"lexicon {lexical[0]:+.2f}")
    return Sentiment(round(value, 4), label, tuple(signals))


def describe_cues(found: dict[str, list[str]]) -> list[str]:
    """Human-readable signals: cue names, with the matched words for the word lists."""
    return [f"{name}: {', '.join(hits)}" if name.endswith("words") else name for name, hits in found.items()]


class HeadSentiment:
    """The default scorer: the trained head on the FAQ encoder's embedding, plus cues."""

    def __init__(self, head: Head) -> None:
        self.head = head
        self.name = f"head:{head.encoder}"

    def score(self, text: str, vector: np.ndarray | None = None) -> Sentiment:
        """Score one turn; `vector` is required (the FAQ encoder's embedding of `text`)."""
        if vector is None:
            raise SentimentError("the default sentiment head needs the turn's embedding")
        return score(text, vector, self.head)

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Sentiment]:
        """Score several turns; `vectors` is the (n, dim) array of their embeddings."""
        if vectors is None or len(vectors) != len(texts):
            raise SentimentError("score_batch needs one embedding per text")
        return [score(text, vector, self.head) for text, vector in zip(texts, vectors, strict=True)]


class LayerSentiment:
    """The default scorer: the encoder's sentiment-tuned top layers, then the head, plus cues.

    Its vector is the tuned layers' mean-pooled output over the hidden states entering layer
    `first`, so a turn shares the lower layers with FAQ retrieval: `Brain.read` runs `layers` as
    one more top stack of its single pass and hands the vectors in. Without them, the scorer runs
    the encoder itself.
    """

    def __init__(self, head: Head, layers: Any, first: int, encoder: Any) -> None:
        self.head = head
        self.layers = layers
        self.first = first
        self.encoder = encoder
        self.name = f"layers:{head.encoder}"

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The tuned layers' sentence vectors (zeros for blank texts)."""
        out = np.zeros((len(texts), self.head.dim), dtype=np.float32)
        live = [i for i, text in enumerate(texts) if text.strip()]
        if live:
            out[live] = self.encoder.encode_tops([texts[i] for i in live], self.first, [self.layers])[0]
        return out

    def score(self, text: str, vector: np.ndarray | None = None) -> Sentiment:
        """Score one turn; `vector`, if given, is the tuned layers' vector of `text`."""
        return self.score_batch([text], None if vector is None else np.asarray(vector)[None, :])[0]

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Sentiment]:
        """Score several turns; `vectors`, if given, are the tuned layers' vectors of `texts`."""
        if vectors is None:
            vectors = self.vectors(texts)
        if len(vectors) != len(texts):
            raise SentimentError("score_batch needs one vector per text")
        return [score(text, vector, self.head) for text, vector in zip(texts, vectors, strict=True)]


def tuned_layers(arrays: dict[str, np.ndarray], encoder: Any) -> tuple[Any, int]:
    """A copy of the encoder's top layers holding the saved weights, and the first one's index."""
    import torch

    from models.adaptation import copy_top_layers

    count = len({key.split(".", 1)[0] for key in arrays})
    first = len(encoder.layers) - count
    if not 1 <= count <= len(encoder.layers):
        raise SentimentError(f"{count} tuned layers do not fit a {len(encoder.layers)}-layer encoder")
    try:
        state = {key: torch.from_numpy(value) for key, value in arrays.items()}
        layers = copy_top_layers(encoder.model, first, state)
    except RuntimeError as exc:
        raise SentimentError(f"the tuned layers do not fit the encoder: {exc}") from exc
    return layers.eval(), first


def load_npz(path: Path, encoder: Any = None) -> SentimentModel:
    """A head .npz: with tuned layers, on the given `TransformerEncoder` (else the bundled one)."""
    head = load_head(path)
    arrays = load_layer_arrays(path)
    if not arrays:
        return HeadSentiment(head)
    from models.encoder import TransformerEncoder, default_model_dir

    if not isinstance(encoder, TransformerEncoder):  # none given, or one without layers to share
        encoder = TransformerEncoder(default_model_dir())
    layers, first = tuned_layers(arrays, encoder)
    return LayerSentiment(head, layers, first, encoder)


# --- plug-in: any local Hugging Face sequence classifier -------------------------------------

_LABEL_WORDS = {"neg": NEGATIVE, "neu": NEUTRAL, "pos": POSITIVE}


def map_labels(id2label: dict[int, str]) -> dict[int, int]:
    """Map a checkpoint's class ids to NEGATIVE / NEUTRAL / POSITIVE, from names or position."""
    mapped: dict[int, int] = {}
    for index, name in id2label.items():
        lowered = name.lower()
        for prefix, polarity in _LABEL_WORDS.items():
            if lowered.startswith(prefix):
                mapped[int(index)] = polarity
    if len(mapped) == len(id2label) and NEGATIVE in mapped.values():
        return mapped
    generic = all(re.fullmatch(r"label_\d+", name.lower()) for name in id2label.values())
    if generic and len(id2label) == 2:
        return {0: NEGATIVE, 1: POSITIVE}
    if generic and len(id2label) == 3:
        return {0: NEGATIVE, 1: NEUTRAL, 2: POSITIVE}
    raise SentimentError(f"cannot map labels {sorted(id2label.values())} to negative/positive")


class TransformersSentiment:
    """A local Hugging Face sequence-classification checkpoint; score = P(pos) - P(neg)."""

    def __init__(self, model_dir: Path, max_tokens: int = 512) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not (model_dir / "config.json").is_file():
            raise SentimentError(f"{model_dir} is not a transformer model directory")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self._model = AutoModelForSequenceClassification.from_pretrained(
                str(model_dir), local_files_only=True
            ).eval()
        except (OSError, ValueError) as exc:
            raise SentimentError(f"cannot load a classifier from {model_dir}: {exc}") from exc
        self._torch = torch
        self._labels = map_labels(dict(self._model.config.id2label))
        positions = int(getattr(self._model.config, "max_position_embeddings", max_tokens))
        self._max_tokens = min(max_tokens, positions)
        self.name = f"transformers:{model_dir.name}"

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities of negative / neutral / positive (neutral 0 for 2-class models)."""
        if not texts:
            return np.zeros((0, 3), dtype=np.float32)
        batch = self._tokenizer(
            [text or " " for text in texts],
            padding=True,
            truncation=True,
            max_length=self._max_tokens,
            return_tensors="pt",
        )
        with self._torch.inference_mode():
            logits = self._model(**batch).logits.float().numpy()
        probs = softmax(logits)
        out = np.zeros((len(texts), 3), dtype=np.float32)
        for index, polarity in self._labels.items():
            out[:, polarity] += probs[:, index]
        return out

    def score(self, text: str, vector: np.ndarray | None = None) -> Sentiment:
        """Score one turn (the embedding is not needed)."""
        return self.score_batch([text])[0]

    def score_batch(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[Sentiment]:
        """Score several turns in one forward pass."""
        return [
            _sentiment_from(row) if text.strip() else EMPTY
            for text, row in zip(texts, self.probabilities(texts), strict=True)
        ]


def _sentiment_from(probs: np.ndarray) -> Sentiment:
    value = float(np.clip(probs[POSITIVE] - probs[NEGATIVE], -1.0, 1.0))
    label = (Polarity.NEGATIVE, Polarity.NEUTRAL, Polarity.POSITIVE)[int(np.argmax(probs))]
    return Sentiment(round(value, 4), label, (f"model {value:+.2f}",))


def load_scorer(path: Path | None = None, encoder: Any = None) -> SentimentModel:
    """The default head (path None), a head .npz, or a local Hugging Face checkpoint directory.

    `encoder`: the `TransformerEncoder` whose lower layers a head with tuned layers shares (the
    bundled one is loaded when none is given).
    """
    if path is None:
        return load_npz(default_head_path(), encoder)
    if path.is_dir():
        return TransformersSentiment(path)
    if path.suffix == ".npz":
        return load_npz(path, encoder)
    raise SentimentError(f"{path} is neither a sentiment head (.npz) nor a checkpoint directory")
