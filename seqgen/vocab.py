"""Token counts, the rare-token filter, and the token ⇄ index vocabulary.

The ``reference`` filter reproduces the reference notebook's loop::

    for element in Corpus:
        if element in rare_note:
            Corpus.remove(element)

``list.remove`` deletes the *first* occurrence of the value and shifts the
list left under the running iterator, so the element right after each
removed one is never looked at.  Some rare tokens therefore survive: the
report's corpus length (59,854) and its 228 output classes come from this
loop, not from a true filter.  ``exact`` removes every rare occurrence.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from seqgen.errors import SeqgenError

FILTERS = ("exact", "reference")
FILTER_HELP = {
    "exact": "Remove every occurrence of a token seen fewer than min-count times.",
    "reference": (
        "The reference notebook's loop, which removed items from the list it was iterating over: "
        "each removal skips the next token, so some rare tokens survive (that is why its vocabulary was 228, not 28)."
    ),
}


def rare_tokens(counts: Counter, min_count: int) -> set[str]:
    """Distinct tokens that occur fewer than ``min_count`` times."""
    return {token for token, count in counts.items() if count < min_count}


def filter_exact(tokens: Sequence[str], rare: set[str]) -> list[str]:
    """``tokens`` without any occurrence of a rare token."""
    return [token for token in tokens if token not in rare]


def filter_reference(tokens: Sequence[str], rare: set[str]) -> list[str]:
    """What the reference's remove-while-iterating loop leaves, in O(n).

    While the loop runs, every removal happens at or before the iterator, so
    the element at list index ``k`` is original element ``k + removed``.  A
    rare element at the iterator removes the earliest still-present
    occurrence of its value (itself, or one skipped earlier), and the next
    original element is skipped.
    """
    removed = [False] * len(tokens)
    present_before: dict[str, deque[int]] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if token not in rare:
            position += 1
            continue
        occurrences = present_before.setdefault(token, deque())
        occurrences.append(position)
        removed[occurrences.popleft()] = True
        skipped = position + 1
        if skipped < len(tokens) and tokens[skipped] in rare:
            present_before.setdefault(tokens[skipped], deque()).append(skipped)
        position += 2
    return [token for token, gone in zip(tokens, removed) if not gone]


def apply_filter(tokens: Sequence[str], min_count: int, mode: str = "exact") -> tuple[list[str], set[str]]:
    """Filter rare tokens; return the kept tokens and the set of rare tokens."""
    if mode not in FILTERS:
        raise SeqgenError(f"Unknown filter {mode!r}; choose one of: {', '.join(FILTERS)}.")
    if min_count < 1:
        raise SeqgenError(f"min-count must be at least 1 (got {min_count}).")
    rare = rare_tokens(Counter(tokens), min_count)
    kept = filter_exact(tokens, rare) if mode == "exact" else filter_reference(tokens, rare)
    return kept, rare


@dataclass(frozen=True)
class Vocab:
    """An ordered list of tokens; a token's index is its position.

    Tokens are sorted, as the reference's ``sorted(set(Corpus))`` did, so a
    vocabulary is the same whatever order the corpus was read in.
    """

    tokens: tuple[str, ...]

    @classmethod
    def from_tokens(cls, tokens: Iterable[str]) -> "Vocab":
        return cls(tuple(sorted(set(tokens))))

    def __post_init__(self):
        if len(set(self.tokens)) != len(self.tokens):
            raise SeqgenError("A vocabulary cannot hold the same token twice.")
        object.__setattr__(self, "_index", {token: index for index, token in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of ``tokens``; SeqgenError names the first unknown token."""
        try:
            return [self._index[token] for token in tokens]
        except KeyError as error:
            raise SeqgenError(f"Token {error.args[0]!r} is not in the vocabulary ({len(self)} tokens).") from None

    def decode(self, indices: Iterable[int]) -> list[str]:
        """Tokens at ``indices``."""
        return [self.tokens[int(index)] for index in indices]

    def to_json(self) -> dict:
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict) -> "Vocab":
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise SeqgenError("A vocabulary must be stored as {'tokens': [list of strings]}.")
        return cls(tuple(tokens))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SeqgenError(f"{path}: vocabulary file not found.") from None
        except (OSError, ValueError) as error:
            raise SeqgenError(f"{path}: not a readable vocabulary JSON file ({error}).") from None
        return cls.from_json(data)
