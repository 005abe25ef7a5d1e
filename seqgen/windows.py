"""Fixed-length windows over an encoded corpus, and its train/validation/seed splits.

A window is ``window`` consecutive token indices; its target is the token
that follows, so a corpus of ``n`` tokens gives ``n - window`` windows (the
reference's "sequences").  Windows are views into one array, never copies.

Two splits (``SPLITS``): ``random`` is the reference's, a random share of
overlapping windows, so nearly every validation window's tokens were also
trained on; ``blocks`` holds out contiguous blocks of the corpus and drops
the windows that would straddle two splits, so no token position is shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqgen.errors import SeqgenError

SPLITS = ("random", "blocks")
BLOCKS = 20  # contiguous blocks a held-out split cuts the corpus into


def count_windows(num_tokens: int, window: int) -> int:
    """Number of (window, next token) pairs in a corpus of ``num_tokens``."""
    return max(0, num_tokens - window)


def window_starts(num_tokens: int, window: int, max_windows: int | None = None, seed: int = 0, stride: int = 1) -> np.ndarray:
    """Start positions of the windows a corpus gives, all or a random subset.

    Args:
        num_tokens: length of the encoded corpus.
        window: window length.
        max_windows: keep a random subset of this many (sorted); None keeps all.
        seed: seeds the subset.
        stride: tokens between window starts.  1 (the reference) gives every
            window; a model trained on every position still learns every
            token with a larger stride (the windows tile the corpus), in a
            ``stride``-th of the steps per epoch.

    Returns:
        Start positions, shape ``(num_windows,)``, ascending.
    """
    if window < 1:
        raise SeqgenError(f"The window must be at least 1 token (got {window}).")
    if stride < 1:
        raise SeqgenError(f"The stride must be at least 1 token (got {stride}).")
    total = count_windows(num_tokens, window)
    if total == 0:
        raise SeqgenError(
            f"The window ({window} tokens) is not shorter than the corpus ({num_tokens} tokens after filtering): "
            "no training sequence fits. Use a smaller window, a lower min-count, or a larger corpus."
        )
    starts = np.arange(0, total, stride)
    if max_windows is not None and max_windows < len(starts):
        return np.sort(np.random.default_rng(seed).choice(starts, size=max_windows, replace=False))
    return starts


def gather_windows(ids: np.ndarray, starts: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """The windows at ``starts`` and their next-token targets (the trainer gathers batches the same way in tf.data).

    Args:
        ids: encoded corpus, shape ``(num_tokens,)``.
        starts: window start positions, shape ``(num_windows,)``.
        window: window length.

    Returns:
        ``inputs`` of shape ``(num_windows, window)`` and ``targets`` of shape ``(num_windows,)``.
    """
    sequences = np.lib.stride_tricks.sliding_window_view(np.asarray(ids), window + 1)[np.asarray(starts, dtype=np.int64)]
    return sequences[:, :window], sequences[:, window]


def reference_split(num_windows: int, test_size: float = 0.2, random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The reference's ``train_test_split(test_size=0.2, random_state=42)`` on window indices.

    Same result as scikit-learn's ShuffleSplit: a ``RandomState`` permutation
    whose first ``ceil(test_size * n)`` entries are the test (seed) set.

    Returns:
        ``(train_indices, seed_indices)``.
    """
    if not 0.0 < test_size < 1.0:
        raise SeqgenError(f"The seed split must be a fraction between 0 and 1 (got {test_size}).")
    num_test = math.ceil(test_size * num_windows)
    num_train = num_windows - num_test
    if num_train < 1 or num_test < 1:
        raise SeqgenError(f"{num_windows} windows are too few to split into training and seed sets.")
    permutation = np.random.RandomState(random_state).permutation(num_windows)
    return permutation[num_test:num_test + num_train], permutation[:num_test]


@dataclass(frozen=True)
class Splits:
    """Window indices of each split (disjoint, together all windows)."""

    train: np.ndarray
    validation: np.ndarray
    seed: np.ndarray


def split_windows(num_windows: int, seed_fraction: float = 0.2, validation_fraction: float = 0.1, random_state: int = 42) -> Splits:
    """Split windows into training, validation and seed sets.

    The seed set is the reference's 20 % split (same indices as its
    ``train_test_split``); the validation set is then drawn from what remains.
    """
    rest, seed = reference_split(num_windows, seed_fraction, random_state)
    if validation_fraction <= 0:
        return Splits(train=rest, validation=rest[:0], seed=seed)
    if validation_fraction >= 1:
        raise SeqgenError(f"The validation split must be a fraction below 1 (got {validation_fraction}).")
    num_validation = max(1, round(validation_fraction * len(rest)))
    if num_validation >= len(rest):
        raise SeqgenError(f"{num_windows} windows are too few for training, validation and seed splits.")
    shuffled = np.random.default_rng(random_state).permutation(rest)
    return Splits(train=shuffled[num_validation:], validation=shuffled[:num_validation], seed=seed)


def block_split(starts: np.ndarray, num_tokens: int, window: int, seed_fraction: float = 0.2,
                validation_fraction: float = 0.1, random_state: int = 42, blocks: int = BLOCKS) -> Splits:
    """Held-out split: contiguous blocks of the corpus, whole blocks per split, with a gap between them.

    The token positions are cut into ``blocks`` equal blocks (fewer when a
    block would hold under four windows); a seeded shuffle gives
    ``round(seed_fraction * blocks)`` of them to the seed split,
    ``round(validation_fraction * rest)`` to validation and the rest to
    training.  A window reads positions ``start … start + window`` (its
    target included) and is kept only when they all lie in one split's
    blocks: a one-window gap, so no position is shared between splits.

    Args:
        starts: window start positions in use, shape ``(num_windows,)``.
        num_tokens: length of the encoded corpus.
        window: window length.

    Returns:
        Indices into ``starts`` for each split, each in a seeded random order.
    """
    if not 0.0 < seed_fraction < 1.0 or not 0.0 <= validation_fraction < 1.0:
        raise SeqgenError(f"Split fractions must be below 1 (seed {seed_fraction}, validation {validation_fraction}).")
    blocks = min(blocks, num_tokens // (4 * (window + 1)))
    num_seed = max(1, round(seed_fraction * blocks))
    num_validation = max(1, round(validation_fraction * (blocks - num_seed))) if validation_fraction > 0 else 0
    if blocks - num_seed - num_validation < 1:
        raise SeqgenError(f"{num_tokens} tokens are too few for a held-out split with windows of {window} "
                          f"(it needs {3 * 4 * (window + 1)} or more); use the random split (--split random).")
    rng = np.random.default_rng(random_state)
    block_split_of = np.empty(blocks, dtype=np.int64)  # 0 train, 1 validation, 2 seed
    block_split_of[rng.permutation(blocks)] = [2] * num_seed + [1] * num_validation + [0] * (blocks - num_seed - num_validation)
    starts = np.asarray(starts, dtype=np.int64)
    first = block_split_of[starts * blocks // num_tokens]
    last = block_split_of[(starts + window) * blocks // num_tokens]
    parts = [rng.permutation(np.flatnonzero((first == part) & (last == part))) for part in range(3)]
    if not len(parts[0]) or not len(parts[2]) or (num_validation and not len(parts[1])):
        raise SeqgenError(f"{len(starts)} windows are too few for a held-out split; use more windows or --split random.")
    return Splits(train=parts[0], validation=parts[1], seed=parts[2])


def make_splits(split: str, starts: np.ndarray, num_tokens: int, window: int, seed_fraction: float = 0.2,
                validation_fraction: float = 0.1, random_state: int = 42) -> Splits:
    """The ``random`` (:func:`split_windows`) or ``blocks`` (:func:`block_split`) split of the windows at ``starts``."""
    if split == "random":
        return split_windows(len(starts), seed_fraction, validation_fraction, random_state)
    if split == "blocks":
        return block_split(starts, num_tokens, window, seed_fraction, validation_fraction, random_state)
    raise SeqgenError(f"Unknown split {split!r}; choose one of: {', '.join(SPLITS)}.")
