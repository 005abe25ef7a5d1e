"""Lyrics text: decoding, cleaning to a small character set, and charset reports.

Cleaning first maps look-alike characters to plain ASCII (curly quotes,
dashes, ellipsis, tabs, non-breaking spaces), then lowercases (unless
``keep_case``), then drops every character outside the kept set: lowercase
letters, digits, space, newline and basic punctuation.  The report lists
exactly which characters were removed and how often.
"""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

PUNCTUATION = ".,;:!?'\"-()&"
KEEP_LOWER = frozenset(string.ascii_lowercase + string.digits + " \n" + PUNCTUATION)
KEEP_CASED = KEEP_LOWER | frozenset(string.ascii_uppercase)

# Typographic and whitespace variants that carry the same meaning as ASCII.
LOOK_ALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2026": "...", "\t": " ", "\u00a0": " ", "\u2009": " ", "\u200b": "",
    "\r\n": "\n", "\r": "\n",
}


@dataclass
class CleanText:
    """A cleaned text and what cleaning did to it."""

    text: str
    charset_raw: list[str]
    charset_clean: list[str]
    removed_chars: dict[str, int] = field(default_factory=dict)  # character -> occurrences dropped
    mapped_chars: dict[str, str] = field(default_factory=dict)  # character -> ASCII replacement


def decode_bytes(data: bytes) -> tuple[str, int]:
    """Decode UTF-8 (with or without BOM); return the text and the number of replaced characters."""
    try:
        return data.decode("utf-8-sig"), 0
    except UnicodeDecodeError:
        text = data.decode("utf-8-sig", errors="replace")
        return text, text.count("\ufffd")


def clean_text(text: str, keep_case: bool = False) -> CleanText:
    """Reduce ``text`` to the kept character set and report what changed."""
    charset_raw = sorted(set(text))
    mapped: dict[str, str] = {}
    for look_alike, plain in LOOK_ALIKES.items():
        if look_alike in text:
            mapped[look_alike] = plain
            text = text.replace(look_alike, plain)
    # Accented letters become their base letter ("é" -> "e") rather than vanish.
    decomposed = []
    for char in set(text):
        if ord(char) > 127:
            base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
            if base and base.isalpha():
                decomposed.append((char, base))
    for char, base in decomposed:
        mapped[char] = base
        text = text.replace(char, base)
    if not keep_case:
        text = text.lower()
    keep = KEEP_CASED if keep_case else KEEP_LOWER
    removed = Counter(char for char in text if char not in keep)
    cleaned = "".join(char for char in text if char in keep)
    return CleanText(
        text=cleaned,
        charset_raw=charset_raw,
        charset_clean=sorted(set(cleaned)),
        removed_chars=dict(sorted(removed.items())),
        mapped_chars=mapped,
    )
