"""Corpus → token stream → exploration report: what the reference printed, as data.

``load_corpus`` resolves a name or path, tokenizes every item (scores through
the cache, lyrics as cleaned characters) and concatenates them in order, as
the reference did.  ``explore`` counts tokens, applies the rare-token filter
and counts the training windows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from seqgen.cache import TokenCache, tokenize_files
from seqgen.errors import SeqgenError
from seqgen.lyrics import CleanText, clean_text
from seqgen.music import check_tokenizer
from seqgen.sources import ZipLimits, resolve
from seqgen.vocab import apply_filter
from seqgen.windows import count_windows

LYRICS_TOKENIZER = "char"
ITEM_SEPARATOR = "\n\n"  # between lyrics items: a blank line ends a verse
DEFAULT_MIN_COUNT = {"music": 100, "lyrics": 1}  # the reference's 100 for music symbols; every character of lyrics
# An events token is a part of a note (its pitch, its length, where it starts): dropping one breaks the note, and
# the vocabulary is small by design (a few hundred), so no events token is rare.
EVENTS_MIN_COUNT = 1
MIN_COUNT_HELP = "rare-token threshold (default: 100 for seed and timed music, 1 for events and lyrics)"


def default_min_count(kind: str, tokenizer: str | None = None) -> int:
    """The rare-token threshold a corpus gets when none is given (see ``MIN_COUNT_HELP``)."""
    if kind == "music" and tokenizer == "events":
        return EVENTS_MIN_COUNT
    return DEFAULT_MIN_COUNT[kind]
FIRST_TOKENS = 50


@dataclass
class Corpus:
    """A tokenized corpus: one token stream, all items concatenated in order."""

    name: str
    kind: str  # "music" or "lyrics"
    tokenizer: str  # "seed", "timed", "events" or "char"
    items: int
    tokens: list[str]
    skipped: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    charset: CleanText | None = None  # lyrics only; its .text is the cleaned corpus


def load_corpus(
    corpus: str | Path,
    tokenizer: str = "seed",
    text_column: str | None = None,
    keep_case: bool = False,
    limits: ZipLimits = ZipLimits(),
    cache: TokenCache | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Corpus:
    """Resolve and tokenize a corpus.

    Args:
        corpus: a built-in or ``data/`` name, or a path (file, folder, zip, CSV, TXT).
        tokenizer: ``seed``, ``timed`` or ``events`` for music; ignored for lyrics (characters).
        text_column: lyrics CSV column, default ``Lyrics`` (any case).
        keep_case: keep upper-case letters in lyrics.
        limits: zip extraction caps.
        cache: token cache for scores.
        workers: processes for parsing scores that are not cached.
        progress: ``progress(done, total)`` callback while parsing.
    """
    with resolve(corpus, text_column=text_column, limits=limits) as source:
        if source.kind == "lyrics":
            cleaned = clean_text(ITEM_SEPARATOR.join(source.texts), keep_case=keep_case)
            if not cleaned.text:
                raise SeqgenError(f"Corpus {source.name!r}: no text is left after cleaning.")
            return Corpus(
                source.name, "lyrics", LYRICS_TOKENIZER, len(source.texts), list(cleaned.text),
                skipped=source.skipped, warnings=source.warnings, charset=cleaned,
            )
        check_tokenizer(tokenizer)
        if not source.files:
            raise SeqgenError(f"Corpus {source.name!r} holds no score files.")
        streams, skipped = tokenize_files(source.files, tokenizer, cache=cache, workers=workers, progress=progress)
        skipped = source.skipped + [
            {"file": str(Path(item["file"]).relative_to(source.temp_dir)) if source.temp_dir else item["file"], "reason": item["reason"]}
            for item in skipped
        ]
        if not streams:
            reasons = "; ".join(item["reason"] for item in skipped[:3])
            raise SeqgenError(f"Corpus {source.name!r}: none of its {len(source.files)} score files could be read ({reasons}).")
        tokens = [token for stream in streams for token in stream]
        return Corpus(source.name, "music", tokenizer, len(streams), tokens, skipped=skipped, warnings=source.warnings)


@dataclass
class Exploration:
    """The exploration report plus the counts the figures are drawn from."""

    report: dict
    counts: Counter  # before filtering
    kept_tokens: list[str]


def explore(corpus: Corpus, min_count: int | None = None, filter_mode: str = "exact", window: int = 40) -> Exploration:
    """Count tokens, drop rare ones and count windows, as the reference reported.

    Args:
        corpus: a loaded corpus.
        min_count: tokens seen fewer times are rare (default: :func:`default_min_count`).
        filter_mode: ``exact`` or ``reference`` (see :mod:`seqgen.vocab`).
        window: window length; ``sequences = tokens_after_filter - window``.
    """
    if window < 1:
        raise SeqgenError(f"The window must be at least 1 token (got {window}).")
    min_count = default_min_count(corpus.kind, corpus.tokenizer) if min_count is None else int(min_count)
    counts = Counter(corpus.tokens)
    kept, rare = apply_filter(corpus.tokens, min_count, filter_mode)
    if not kept:
        most, most_count = counts.most_common(1)[0]
        raise SeqgenError(
            f"{{--min-count}} {min_count} removed every token of corpus {corpus.name!r}: its most frequent token "
            f"{most!r} occurs only {most_count} times. Lower {{--min-count}} to {most_count} or less."
        )
    kept_counts = Counter(kept)
    warnings = list(corpus.warnings)
    sequences = count_windows(len(kept), window)
    if sequences == 0:
        warnings.append(f"The window ({window}) is not shorter than the filtered corpus ({len(kept)} tokens): no sequences.")
    report = {
        "corpus": corpus.name,
        "kind": corpus.kind,
        "tokenizer": corpus.tokenizer,
        "items": corpus.items,
        "tokens_total": len(corpus.tokens),
        "vocab_size": len(counts),
        "min_count": min_count,
        "rare_tokens": len(rare),
        "filter": filter_mode,
        "tokens_after_filter": len(kept),
        "vocab_after_filter": len(kept_counts),
        "rare_left": sum(1 for token in kept_counts if token in rare),
        "window": window,
        "sequences": sequences,
        "first_tokens": corpus.tokens[:FIRST_TOKENS],
        "top_tokens": [[token, count] for token, count in counts.most_common(20)],
        "skipped": corpus.skipped,
        "warnings": warnings,
    }
    if corpus.charset is not None:
        report.update(
            charset_raw=corpus.charset.charset_raw,
            charset_clean=corpus.charset.charset_clean,
            removed_chars=corpus.charset.removed_chars,
            mapped_chars=corpus.charset.mapped_chars,
        )
    return Exploration(report=report, counts=counts, kept_tokens=kept)
