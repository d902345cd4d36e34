"""Fine-tuning the top layers of the sentence encoder on a FAQ knowledge base.

Recipe (version `RECIPE_VERSION`): a cosine-softmax classifier with an additive margin
(CosFace: logits SCALE * (cos - MARGIN on the true entry)) over the knowledge base's entries
trains the top `tuned_layers` transformer layers and one weight vector per entry, initialised
at the entry's mean embedding. The embeddings and the lower layers stay frozen, so their
output (the hidden states entering the first tuned layer) is computed once per question and
shared by the base model's top layers (sentiment, requests for a person) and the tuned ones
(FAQ retrieval). Training is seeded and runs on one thread, so a given KB gives the same layers.

Raises `AdaptationError` when a knowledge base cannot be fine-tuned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.encoder import mean_pool, run_layers

RECIPE_VERSION = 2  # bump when the recipe or its calibration (models/calibration.py) changes
MAX_LENGTH = 64  # FAQ questions are short; longer text adds cost, not meaning
BATCH_SIZE = 32
SCALE = 20.0
MARGIN = 0.1
ENCODER_LR = 5e-5
WEIGHT_LR = 1e-2
MAX_EPOCHS = 5.0
MAX_EXAMPLES_SEEN = 15_000  # caps CPU time: a 15,000-question KB gets one epoch
TUNED_LAYERS = 3

Progress = Callable[[float], None]


class AdaptationError(Exception):
    """The knowledge base cannot be fine-tuned on (too few entries, mismatched inputs)."""


def epochs_for(n_examples: int) -> float:
    """Passes over a KB of this size: MAX_EPOCHS, fewer when that would pass MAX_EXAMPLES_SEEN."""
    return min(MAX_EPOCHS, MAX_EXAMPLES_SEEN / max(1, n_examples))


def copy_top_layers(model: Any, first: int, state: Any = None) -> Any:
    """A `ModuleList` copy of a BERT-like model's layers from `first` up, holding `state` if given.

    Raises torch's RuntimeError when `state` does not fit those layers.
    """
    import torch

    layers = torch.nn.ModuleList(copy.deepcopy(list(model.encoder.layer[first:])))
    if state is not None:
        layers.load_state_dict(state)
    return layers


def first_tuned(model: Any, tuned_layers: int) -> int:
    """Index of the first tuned layer of a BERT-like model."""
    n_layers = int(model.config.num_hidden_layers)
    if not 1 <= tuned_layers <= n_layers:
        raise AdaptationError(f"tuned_layers must be in 1..{n_layers}, not {tuned_layers}")
    return n_layers - tuned_layers


def lower_states(tokenizer: Any, model: Any, texts: Sequence[str], first: int) -> list[Any]:
    """Hidden states entering layer `first`, one unpadded (tokens, dim) tensor per text."""
    import torch

    states: list[Any] = [None] * len(texts)
    order = np.argsort([len(text) for text in texts], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            rows = order[start : start + 128]
            batch = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            hidden = run_layers(
                model.encoder.layer[:first],
                model.embeddings(input_ids=batch["input_ids"]),
                batch["attention_mask"],
            )
            for row, length, i in zip(hidden, batch["attention_mask"].sum(1).tolist(), rows, strict=True):
                states[i] = row[:length].clone()
    return states


def pooled(layers: Sequence[Any], states: Sequence[Any]) -> Any:
    """Pad the states, run `layers`, mean-pool over real tokens and L2-normalise."""
    import torch

    width = max(state.shape[0] for state in states)
    hidden = torch.zeros(len(states), width, states[0].shape[1])
    mask = torch.zeros(len(states), width)
    for i, state in enumerate(states):
        hidden[i, : state.shape[0]] = state
        mask[i, : state.shape[0]] = 1.0
    return mean_pool(run_layers(layers, hidden, mask), mask)


def top_vectors(layers: Sequence[Any], states: Sequence[Any], batch: int = 128) -> np.ndarray:
    """Sentence vectors from lower states through `layers`, batched by length."""
    import torch

    out = np.zeros((len(states), states[0].shape[1] if states else 0), dtype=np.float32)
    order = np.argsort([state.shape[0] for state in states], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(states), batch):
            rows = order[start : start + batch]
            out[rows] = pooled(layers, [states[i] for i in rows]).numpy()
    return out


def train_top_layers(
    model: Any,
    states: Sequence[Any],
    labels: Sequence[str],
    *,
    tuned_layers: int = TUNED_LAYERS,
    epochs: float | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Any:
    """A tuned copy of the model's top layers (a `torch.nn.ModuleList`); the model is unchanged."""
    import torch

    if len(states) != len(labels):
        raise AdaptationError(f"{len(states)} questions but {len(labels)} labels")
    if len(set(labels)) < 2:
        raise AdaptationError("fine-tuning needs at least two entries")
    first = first_tuned(model, tuned_layers)
    layers = copy_top_layers(model, first)
    _, targets = np.unique(np.asarray(labels), return_inverse=True)
    with torch.random.fork_rng():  # seeds dropout without disturbing the caller's torch RNG
        torch.manual_seed(seed)
        weights = torch.nn.Parameter(_entry_means(layers, states, targets))
        rng = np.random.default_rng(seed)
        steps = _batches(np.array([s.shape[0] for s in states]), epochs or epochs_for(len(states)), rng)
        _train(layers, states, torch.as_tensor(targets), weights, steps, progress)
    return layers.eval()


def _entry_means(layers: Any, states: Sequence[Any], targets: np.ndarray) -> Any:
    """Unit-length mean base embedding of each entry: the classifier's starting weights."""
    import torch

    vectors = torch.from_numpy(top_vectors(layers, states))
    index = torch.as_tensor(targets)
    sums = torch.zeros(int(targets.max()) + 1, vectors.shape[1]).index_add_(0, index, vectors)
    return torch.nn.functional.normalize(sums, dim=-1)


def _batches(lengths: np.ndarray, epochs: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths, epochs * n / BATCH_SIZE of them."""
    return length_batches(lengths, BATCH_SIZE, max(1, round(epochs * len(lengths) / BATCH_SIZE)), rng)


def length_batches(lengths: np.ndarray, size: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`steps` shuffled batches of similar lengths (less padding), epoch after epoch."""
    out: list[np.ndarray] = []
    while len(out) < steps:
        order = rng.permutation(len(lengths))
        epoch: list[np.ndarray] = []
        for start in range(0, len(order), size * 50):
            chunk = order[start : start + size * 50]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            epoch += [chunk[i : i + size] for i in range(0, len(chunk), size)]
        rng.shuffle(epoch)
        out += epoch
    return out[:steps]


def _train(
    layers: Any,
    states: Sequence[Any],
    targets: Any,
    weights: Any,
    batches: list[np.ndarray],
    progress: Progress | None,
) -> None:
    """CosFace training of the layers and the entry weights, one batch per step."""
    import torch

    optimiser = torch.optim.AdamW(
        [
            {"params": list(layers.parameters()), "lr": ENCODER_LR},
            {"params": [weights], "lr": WEIGHT_LR, "weight_decay": 0.0},
        ]
    )
    layers.train()
    for step, rows in enumerate(batches):
        vectors = pooled(layers, [states[i] for i in rows])
        cosines = vectors @ torch.nn.functional.normalize(weights, dim=-1).T
        margin = MARGIN * torch.nn.functional.one_hot(targets[rows], weights.shape[0])
        loss = torch.nn.functional.cross_entropy(SCALE * (cosines - margin), targets[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if progress is not None:
            progress((step + 1) / len(batches))
    layers.eval()
