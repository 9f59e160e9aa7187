"""Character-level language modelling helpers shared by char_lstm.py and char_transformer.py:
the shipped public-domain text (examples/data/shakespeare.txt), its character vocabulary, a
train/validation split, random (input, next-character) batches, sampling from a softmax with
a temperature, and the loss-curve figure."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from _common import plt

TEXT_PATH = Path(__file__).resolve().parent / "data" / "shakespeare.txt"


class Corpus(NamedTuple):
    """The text as integer ids, its vocabulary, and the train / validation ids (90 / 10 %)."""

    chars: str
    train: np.ndarray
    val: np.ndarray

    def encode(self, s: str) -> np.ndarray:
        """The ids of the characters of `s`."""
        index = {c: i for i, c in enumerate(self.chars)}
        return np.array([index[c] for c in s], dtype=np.int64)

    def decode(self, ids) -> str:
        """The text of the ids."""
        return "".join(self.chars[int(i)] for i in ids)


def load_corpus(limit: int | None = None) -> Corpus:
    """The shipped text (its first `limit` characters if given), split 90 / 10."""
    text = TEXT_PATH.read_text(encoding="utf-8")
    chars = "".join(sorted(set(text)))
    text = text[:limit] if limit else text
    ids = np.array([chars.index(c) for c in text], dtype=np.int64)
    cut = int(len(ids) * 0.9)
    return Corpus(chars, ids[:cut], ids[cut:])


def batch(ids: np.ndarray, batch_size: int, seq: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`batch_size` random windows of `seq` characters (N, seq) and the characters after each
    position (N, seq)."""
    start = rng.integers(0, len(ids) - seq - 1, batch_size)
    x = np.stack([ids[s:s + seq] for s in start])
    y = np.stack([ids[s + 1:s + seq + 1] for s in start])
    return x, y


def val_batches(ids: np.ndarray, batch_size: int, seq: int, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """A fixed set of validation batches (the same every evaluation)."""
    rng = np.random.default_rng(1234)
    return [batch(ids, batch_size, seq, rng) for _ in range(count)]


def sample_from(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """One id drawn from softmax(logits / temperature)."""
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(len(p), p=p / p.sum()))


def loss_figure(name: str, steps: list[int], train: list[float], val_steps: list[int], val: list[float]) -> plt.Figure:
    """Training loss per step and validation loss at each evaluation, in nats per character."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(steps, train, lw=0.7, alpha=0.6, label="train (per step)")
    ax.plot(val_steps, val, "o-", label="validation")
    ax.set(xlabel="step", ylabel="cross-entropy (nats / char)", title=f"{name}: loss")
    ax.legend()
    return fig
