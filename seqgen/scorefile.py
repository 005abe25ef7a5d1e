"""Score files read with music21: the one place that parses MusicXML, kern, abc and MIDI into music21 streams."""

from __future__ import annotations

from pathlib import Path

from seqgen.errors import SeqgenError


def parse_score(path: Path):
    """Parse a score file with music21, raising SeqgenError naming the file."""
    from music21 import converter

    path = Path(path)
    if path.stat().st_size == 0:
        raise SeqgenError(f"{path.name}: the file is empty (0 bytes).")
    try:
        # forceSource: seqgen keeps its own token cache; music21 would otherwise
        # leave a pickle of every parsed upload in its temp folder.
        return converter.parse(str(path), forceSource=True)
    except Exception as error:  # music21 raises many unrelated types
        raise SeqgenError(f"{path.name}: music21 could not read it as a score ({type(error).__name__}: {error}).") from error


def scores_in(parsed):
    """An Opus (several tunes in one abc file) yields each score; a Score yields itself."""
    from music21 import stream

    if isinstance(parsed, stream.Opus):
        return list(parsed.scores)
    return [parsed]
