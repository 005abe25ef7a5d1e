"""Tests for seqgen.windows: windows with next-token targets, the reference's seed split and the held-out block split."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from seqgen.errors import SeqgenError
from seqgen.windows import (block_split, count_windows, gather_windows, make_splits, reference_split, split_windows,
                            window_starts)


@pytest.mark.parametrize(("num_tokens", "window"), [(41, 40), (100, 40), (10, 1), (7, 6)])
def test_all_windows_and_their_targets(num_tokens, window):
    ids = np.arange(num_tokens) * 3 + 1  # distinct values so each position is recognisable
    starts = window_starts(num_tokens, window)
    inputs, targets = gather_windows(ids, starts, window)
    assert inputs.shape == (num_tokens - window, window)
    assert targets.shape == (num_tokens - window,)
    assert len(inputs) == count_windows(num_tokens, window)
    for index in range(num_tokens - window):
        np.testing.assert_array_equal(inputs[index], ids[index:index + window])
        assert targets[index] == ids[index + window]  # the target is the token that follows


def test_a_window_subset_is_sorted_distinct_and_seeded():
    starts = window_starts(1000, 40, max_windows=100, seed=3)
    assert len(starts) == 100 and len(set(starts.tolist())) == 100
    assert (np.diff(starts) > 0).all() and starts.max() < 960
    np.testing.assert_array_equal(starts, window_starts(1000, 40, max_windows=100, seed=3))
    assert not np.array_equal(starts, window_starts(1000, 40, max_windows=100, seed=4))
    np.testing.assert_array_equal(window_starts(100, 40, max_windows=500), np.arange(60))  # more than there are: all
    inputs, targets = gather_windows(np.arange(1000), starts, 40)
    np.testing.assert_array_equal(inputs[:, 0], starts)
    np.testing.assert_array_equal(targets, starts + 40)


def test_count_windows_is_reference_sequences():
    # The reference: Chopin 59,854 tokens -> 59,814 sequences; Mozart 57,247 -> 57,207.
    assert count_windows(59_854, 40) == 59_814
    assert count_windows(57_247, 40) == 57_207
    assert count_windows(40, 40) == 0
    assert count_windows(3, 40) == 0


def test_window_starts_corpus_too_short():
    with pytest.raises(SeqgenError, match=r"window \(40 tokens\) is not shorter than the corpus \(40 tokens after filtering\)"):
        window_starts(40, 40)
    with pytest.raises(SeqgenError, match=r"window must be at least 1 token \(got 0\)"):
        window_starts(40, 0)


@pytest.mark.parametrize("num_windows", [2, 5, 10, 11, 41, 99, 100, 1000, 57_207, 59_814])
def test_reference_split_equals_sklearn_train_test_split(num_windows):
    expected_train, expected_seed = train_test_split(np.arange(num_windows), test_size=0.2, random_state=42)
    train, seed = reference_split(num_windows)
    np.testing.assert_array_equal(train, expected_train)  # same indices in the same order
    np.testing.assert_array_equal(seed, expected_seed)


@pytest.mark.parametrize(("test_size", "random_state"), [(0.1, 0), (0.5, 1), (0.33, 123)])
def test_reference_split_other_fractions_and_seeds(test_size, random_state):
    expected_train, expected_seed = train_test_split(np.arange(503), test_size=test_size, random_state=random_state)
    train, seed = reference_split(503, test_size, random_state)
    np.testing.assert_array_equal(train, expected_train)
    np.testing.assert_array_equal(seed, expected_seed)


def test_reference_split_bad_input():
    with pytest.raises(SeqgenError, match=r"fraction between 0 and 1 \(got 1.5\)"):
        reference_split(100, 1.5)
    with pytest.raises(SeqgenError, match="1 windows are too few"):
        reference_split(1)


@pytest.mark.parametrize(("num_windows", "validation_fraction"), [(1000, 0.1), (57_207, 0.1), (50, 0.25), (30, 0.0)])
def test_split_windows_disjoint_and_covering(num_windows, validation_fraction):
    splits = split_windows(num_windows, validation_fraction=validation_fraction)
    parts = [splits.train, splits.validation, splits.seed]
    joined = np.concatenate(parts)
    assert len(joined) == num_windows  # disjoint ...
    np.testing.assert_array_equal(np.sort(joined), np.arange(num_windows))  # ... and covering
    # The seed set is the reference's 20 % split.
    np.testing.assert_array_equal(splits.seed, reference_split(num_windows)[1])
    if validation_fraction == 0:
        assert len(splits.validation) == 0
    else:
        assert len(splits.validation) == max(1, round(validation_fraction * (num_windows - len(splits.seed))))


def test_split_windows_is_deterministic_and_seeded():
    first = split_windows(500, random_state=1)
    again = split_windows(500, random_state=1)
    other = split_windows(500, random_state=2)
    np.testing.assert_array_equal(first.validation, again.validation)
    np.testing.assert_array_equal(first.train, again.train)
    assert not np.array_equal(first.seed, other.seed)


def test_split_windows_bad_input():
    with pytest.raises(SeqgenError, match=r"validation split must be a fraction below 1 \(got 1.0\)"):
        split_windows(100, validation_fraction=1.0)
    with pytest.raises(SeqgenError, match="too few for training, validation and seed splits"):
        split_windows(2, validation_fraction=0.1)


def covered_positions(starts: np.ndarray, window: int) -> set[int]:
    """Every token position the windows at ``starts`` read or predict."""
    return {position for start in starts.tolist() for position in range(start, start + window + 1)}


@pytest.mark.parametrize(("num_tokens", "window", "max_windows"), [(5000, 40, None), (3000, 8, None), (20_000, 40, 3000), (700, 8, None)])
def test_block_split_shares_no_token_position_between_splits(num_tokens, window, max_windows):
    starts = window_starts(num_tokens, window, max_windows, seed=1)
    splits = block_split(starts, num_tokens, window)
    covered = [covered_positions(starts[part], window) for part in (splits.train, splits.validation, splits.seed)]
    assert all(covered) and not covered[0] & covered[1] and not covered[0] & covered[2] and not covered[1] & covered[2]
    everything = np.concatenate([splits.train, splits.validation, splits.seed])
    assert len(set(everything.tolist())) == len(everything)  # disjoint indices into starts
    # Only the windows straddling two splits' blocks are lost: at most one window per boundary and position.
    assert len(everything) >= len(starts) - 19 * window
    # The random split on the same windows shares nearly every position.
    random = split_windows(len(starts))
    assert len(covered_positions(starts[random.train], window) & covered_positions(starts[random.validation], window)) > 0


def test_block_split_is_seeded_and_holds_out_whole_blocks():
    starts = window_starts(10_000, 40)
    splits = block_split(starts, 10_000, 40, random_state=3)
    again = block_split(starts, 10_000, 40, random_state=3)
    assert all(np.array_equal(getattr(splits, name), getattr(again, name)) for name in ("train", "validation", "seed"))
    other = block_split(starts, 10_000, 40, random_state=4)
    assert not np.array_equal(np.sort(splits.validation), np.sort(other.validation))
    # 20 blocks of 500 positions: 4 seed blocks, 2 validation blocks (10 % of 16); with this seed no two of a split touch,
    # so each block is one run of consecutive windows.
    for part, count in ((splits.seed, 4), (splits.validation, 2)):
        positions = np.sort(starts[part])
        assert np.count_nonzero(np.diff(positions) > 1) == count - 1
    assert make_splits("blocks", starts, 10_000, 40, random_state=3).validation.tolist() == splits.validation.tolist()
    assert make_splits("random", starts, 10_000, 40).seed.tolist() == split_windows(len(starts)).seed.tolist()


def test_block_split_bad_input():
    with pytest.raises(SeqgenError, match="too few for a held-out split.*--split random"):
        block_split(window_starts(200, 40), 200, 40)
    with pytest.raises(SeqgenError, match="Unknown split 'halves'; choose one of: random, blocks"):
        make_splits("halves", window_starts(200, 40), 200, 40)


def test_a_stride_tiles_the_corpus_with_fewer_windows():
    from seqgen.windows import window_starts

    starts = window_starts(100, 10, stride=10)
    assert starts.tolist() == list(range(0, 90, 10))  # every token is in exactly one window (but the tail's last)
    subset = window_starts(1000, 10, max_windows=5, seed=1, stride=7)
    assert len(subset) == 5 and all(start % 7 == 0 for start in subset)
    with pytest.raises(SeqgenError, match="stride must be at least 1"):
        window_starts(100, 10, stride=0)
