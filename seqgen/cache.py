"""A content-hashed on-disk cache of tokenized scores, and parallel cold parsing.

An entry is keyed by the SHA-256 of the file's bytes, the tokenizer and its
version (and, for ``events``, a digest of its configuration), so renaming or moving a file keeps its entry and editing it does
not.  Entries are small JSON files written atomically; an unreadable entry
is ignored and rebuilt.  The folder is ``SEQGEN_CACHE`` or the user's cache
directory.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

from seqgen.errors import SeqgenError
from seqgen.files import write_atomic
from seqgen.music import cache_tag, check_tokenizer, tokenize_file


def default_cache_dir() -> Path:
    """``SEQGEN_CACHE`` if set, else the platform's user cache folder for seqgen."""
    if os.environ.get("SEQGEN_CACHE"):
        return Path(os.environ["SEQGEN_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("seqgen"))


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class TokenCache:
    """Token lists on disk, one JSON file per (content hash, tokenizer, version)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else default_cache_dir()

    def entry_path(self, digest: str, tokenizer: str) -> Path:
        return self.folder / "tokens" / cache_tag(tokenizer) / digest[:2] / f"{digest}.json"

    def get(self, digest: str, tokenizer: str) -> list[str] | None:
        """Cached tokens, or None when missing or unreadable."""
        try:
            data = json.loads(self.entry_path(digest, tokenizer).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            return None
        return tokens

    def put(self, digest: str, tokenizer: str, tokens: list[str]) -> None:
        try:
            write_atomic(self.entry_path(digest, tokenizer), json.dumps({"tokens": tokens}).encode("utf-8"))
        except OSError:
            pass  # a read-only or full cache must not stop the user's work


def _tokenize_one(job: tuple[str, str]) -> tuple[list[str] | None, str | None]:
    """Worker: tokens of one file, or the reason it failed."""
    path, tokenizer = job
    try:
        tokens = tokenize_file(Path(path), tokenizer)
        if not tokens:
            return None, f"{Path(path).name}: no pitched notes or chords found."
        return tokens, None
    except SeqgenError as error:
        return None, str(error)
    except Exception as error:  # a worker must report, never crash the pool
        return None, f"{Path(path).name}: {type(error).__name__}: {error}"


def tokenize_files(
    paths: list[Path],
    tokenizer: str,
    cache: TokenCache | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[list[str]], list[dict]]:
    """Tokenize score files, from the cache when possible.

    Args:
        paths: score files, in corpus order.
        tokenizer: ``seed`` or ``timed``.
        cache: where cached token lists live (default: :func:`default_cache_dir`).
        workers: processes for cold parsing (default: CPU count; 1 = in process).
        progress: called as ``progress(done, total)`` after each file.

    Returns:
        The token lists of the files that parsed, in order, and
        ``skipped``: ``{"file", "reason"}`` for each file that failed.
    """
    check_tokenizer(tokenizer)
    cache = cache or TokenCache()
    results: list[list[str] | None] = [None] * len(paths)
    reasons: dict[int, str] = {}
    digests: list[str | None] = []
    for path in paths:
        try:
            digests.append(file_digest(path))
        except OSError as error:
            digests.append(None)
            reasons[len(digests) - 1] = f"{Path(path).name}: cannot read the file ({error.strerror or error})."
    missing = []
    for index, digest in enumerate(digests):
        if digest is None:
            continue
        cached = cache.get(digest, tokenizer)
        if cached is None:
            missing.append(index)
        else:
            results[index] = cached
    done = len(paths) - len(missing)
    if progress:
        progress(done, len(paths))
    workers = workers or os.cpu_count() or 1
    jobs = [(str(paths[index]), tokenizer) for index in missing]
    # symusic reads a MIDI file in about a millisecond: starting a process costs more than the events of a MIDI folder.
    fast = tokenizer == "events" and all(Path(path).suffix.lower() in (".mid", ".midi") for path, _ in jobs)
    parallel = workers > 1 and len(jobs) > 1 and not fast
    # Spawned, not forked: a fork copies the locks other threads hold (a server's, TensorFlow's) and can hang.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=spawn) if parallel else nullcontext() as pool:
        outcomes = pool.map(_tokenize_one, jobs, chunksize=1) if parallel else map(_tokenize_one, jobs)
        for index, (tokens, reason) in zip(missing, outcomes):
            if tokens is None:
                reasons[index] = reason
            else:
                results[index] = tokens
                cache.put(digests[index], tokenizer, tokens)
            done += 1
            if progress:
                progress(done, len(paths))
    skipped = [{"file": str(paths[index]), "reason": reason} for index, reason in sorted(reasons.items())]
    return [tokens for tokens in results if tokens is not None], skipped

