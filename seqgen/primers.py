"""Primers: what a generation starts from, turned into tokens the model knows.

A primer is a random window of the bundle's seed split (the reference's way),
a score file tokenized like the corpus, typed text (characters for lyrics,
whitespace-separated tokens for music) or a token list.  Tokens outside the
vocabulary are dropped and reported, never silently kept.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from seqgen.errors import SeqgenError

SCORE_SUFFIXES = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".krn", ".abc")


def random_seed_window(bundle, rng: np.random.Generator | int | None = None) -> list[str]:
    """Picks one of the bundle's seed-split windows, as the reference did.

    Args:
        bundle: A loaded bundle (uses `bundle.seeds`, a list of token windows).
        rng: A generator, or a seed for a new one (None: unpredictable).

    Returns:
        A copy of one seed window, a list of `window` tokens.

    Raises:
        SeqgenError: If the bundle holds no seed windows.
    """
    seeds = getattr(bundle, "seeds", None) or []
    if not seeds:
        folder = getattr(bundle, "folder", None)
        where = f"Bundle {folder}" if folder else "This bundle"
        raise SeqgenError(f"{where} holds no seed windows; type a primer instead.")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return list(seeds[int(rng.integers(len(seeds)))])


def text_primer(bundle, text: str) -> tuple[list[str], dict[str, int]]:
    """Turns typed text into primer tokens for a bundle.

    Lyrics bundles are character level: the text is cleaned like the
    training corpus (typographic look-alikes → ASCII, accents folded,
    lower-cased when `config["lowercase"]` is true), then every character
    the vocabulary lacks is dropped and reported.  Music bundles split the
    text on whitespace ("C4 E4 G4 4.7.11").

    Args:
        bundle: A loaded bundle (uses `config` and `vocab`).
        text: What the user typed.

    Returns:
        `(tokens, dropped)`: the in-vocabulary tokens in order, and the
        dropped characters (or tokens) with their counts, in order of first
        appearance.
    """
    if not isinstance(text, str):
        raise SeqgenError(f"The primer text must be a string, got {type(text).__name__}.")
    vocab = bundle.vocab
    dropped: Counter[str] = Counter()
    if bundle.config.get("kind") == "lyrics":
        from seqgen.lyrics import clean_text

        lowercase = bool(bundle.config.get("lowercase", False))
        cleaned = clean_text(text, keep_case=not lowercase)
        # Characters cleaning removed, in the order they appear in the text.
        removed = cleaned.removed_chars
        for char in (text.lower() if lowercase else text):
            if char in removed and char not in dropped:
                dropped[char] = removed[char]
        candidates: Sequence[str] = cleaned.text
    else:
        candidates = text.split()
    tokens = []
    for token in candidates:
        if token in vocab:
            tokens.append(token)
        else:
            dropped[token] += 1
    return tokens, dict(dropped)


def melody_primer(bundle, primer, rng_seed: int | None) -> list[str]:
    """Primer tokens for a melody from None (a random seed window), a score file, or a token list/string."""
    if primer is None:
        return random_seed_window(bundle, rng_seed)
    if isinstance(primer, Path) or (isinstance(primer, str) and Path(primer).suffix.lower() in SCORE_SUFFIXES):
        from seqgen.events import BAR, END
        from seqgen.music import tokenize_file

        path = Path(primer)
        if not path.is_file():
            raise SeqgenError(f"Primer {path} not found.")
        tokens = tokenize_file(path, bundle.config["tokenizer"])
        if tokens[-2:] == [BAR, END]:  # events: the piece goes on from its last note instead of ending
            tokens = tokens[:-2]
        if not tokens:
            raise SeqgenError(f"Primer {path.name}: no notes found in it.")
        return tokens
    if isinstance(primer, str):
        return primer.split()
    return list(primer)


def encode_primer(bundle, primer) -> tuple[list[int], list[str], dict[str, int]]:
    """Maps a primer to vocabulary ids, dropping (and reporting) unknown tokens.

    Args:
        bundle: A loaded bundle (uses `config` and `vocab`).
        primer: A list of tokens, or a string: characters for lyrics
            (cleaned and lower-cased like the corpus, see
            :func:`text_primer`), whitespace-separated tokens for music.

    Returns:
        `(ids, tokens, dropped)`: ids and tokens of the in-vocabulary
        primer, and the dropped tokens with counts.
    """
    if isinstance(primer, str):
        tokens, dropped = text_primer(bundle, primer)
        return bundle.vocab.encode(tokens), tokens, dropped
    lowercase = bundle.config.get("kind") == "lyrics" and bool(bundle.config.get("lowercase", False))
    tokens, counts = [], Counter()
    for item in primer or []:
        token = item if isinstance(item, str) else str(item)
        if lowercase and token not in bundle.vocab:
            token = token.lower()
        if token in bundle.vocab:
            tokens.append(token)
        else:
            counts[item if isinstance(item, str) else token] += 1  # reported as given
    return bundle.vocab.encode(tokens), tokens, dict(counts)
