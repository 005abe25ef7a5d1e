"""Tests for seqgen.sources: built-in corpora, data/ folders, files, zips and lyrics CSVs."""

import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from conftest import primitive_midi_files

from seqgen import sources
from seqgen.errors import SeqgenError
from seqgen.sources import ATTRIBUTION, BUILTIN_CORPORA, ZipLimits, dedupe_formats, resolve, split_fortunes

MIDI_BYTES = primitive_midi_files()[0].read_bytes()


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """Make tempfile create its folders (zip extraction) under a folder the test can inspect."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def write_zip(path: Path, members: dict, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# --- built-in corpora ---------------------------------------------------------------


def test_unknown_corpus_lists_valid_names():
    with pytest.raises(SeqgenError) as error:
        resolve("no-such-corpus")
    message = str(error.value)
    assert "Unknown corpus 'no-such-corpus'" in message
    assert "mozart" in message
    for name in BUILTIN_CORPORA:
        assert name in message


def test_builtin_music_corpora_have_files():
    for name in ("chopin", "joplin", "mozart"):
        source = resolve(name)
        assert source.kind == "music"
        assert source.files and all(path.is_file() for path in source.files)
        assert source.files == sorted(source.files)  # sorted path order, not directory order
    assert [path.name for path in resolve("chopin").files] == ["mazurka06-2.krn"]


def test_dedupe_formats_prefers_musicxml_and_keeps_other_pieces():
    paths = [Path(p) for p in ["q/op18/movement1.krn", "q/op18/movement1.mxl", "q/op18/movement2.krn",
                               "q/op18/movement3.mid", "q/op18/movement3.abc", "q/other/movement1.mid", "q/op18/Movement1.MID"]]
    assert dedupe_formats(paths) == sorted(Path(p) for p in [
        "q/op18/movement1.mxl", "q/op18/movement2.krn", "q/op18/movement3.abc", "q/other/movement1.mid", "q/op18/Movement1.MID",
    ])


def test_beethoven_duplicate_formats_counted_once():
    files = resolve("beethoven").files
    keys = [(path.parent, path.stem) for path in files]
    assert len(keys) == len(set(keys))
    opus18no1 = [path.name for path in files if path.parent.name == "opus18no1"]
    assert opus18no1 == ["movement1.mxl", "movement2.mxl", "movement3.mxl", "movement4.mxl"]
    every_file = [p for p in sources.music21_corpus_dir().joinpath("beethoven").rglob("*") if p.suffix in sources.MUSIC_SUFFIXES]
    assert len(files) < len(every_file)  # the .krn twins really exist and were dropped


def test_songs_poems_entries():
    source = resolve("songs-poems")
    assert source.kind == "lyrics"
    entries = source.texts
    assert len(entries) > 500
    raw = sources.songs_poems_text()
    blocks = [block for block in re.split(r"^%\s*$", raw, flags=re.MULTILINE) if block.strip()]
    assert len(entries) == len(blocks)  # one entry per '%'-separated block
    for entry in entries:
        lines = entry.split("\n")
        assert lines[-1].strip(), entry  # no trailing blank line
        assert not ATTRIBUTION.match(lines[-1]), entry  # no trailing "-- Author" line
        assert not any(line.strip() == "%" for line in lines)
    # An attribution that wraps onto indented lines is dropped whole.
    collins = [entry for entry in entries if "I'm just the drummer" in entry]
    assert len(collins) == 1 and collins[0].endswith("Ask Peter.")
    assert not any("Electronic Mail" in entry for entry in entries)
    assert any(entry.startswith("A bit of talcum") and entry.endswith("Is always walcum") for entry in entries)


def test_split_fortunes_hand_made():
    text = (
        "First line\nsecond line\n\t\t-- Somebody\n%\n"
        "Only text, no author\n%\n"
        "Wrapped\n\t\t-- A. Writer, \"A Long\n\t\t   Title\"\n\n%\n"
        "-- this dash line is text\nand so is this\n%\n"
        "\n%\n"
        "Two\n\t\t-- One\n\t\t-- Other\n"
    )
    assert split_fortunes(text) == [
        "First line\nsecond line",
        "Only text, no author",
        "Wrapped",
        "-- this dash line is text\nand so is this",
        "Two",
    ]


# --- data/ folders --------------------------------------------------------------------


def test_data_folder_is_offered_by_name_and_resolves(data_dir):
    folder = data_dir / "my-tunes"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.mid").write_bytes(MIDI_BYTES)
    (folder / "b.mid").write_bytes(MIDI_BYTES)
    (data_dir / ".hidden").mkdir()
    (data_dir / "notes.txt").write_text("a file, not a corpus")
    assert list(sources.data_corpora()) == ["my-tunes"]
    assert "my-tunes" in sources.corpus_names()
    source = resolve("my-tunes")
    assert (source.name, source.kind) == ("my-tunes", "music")
    assert [path.relative_to(folder).as_posix() for path in source.files] == ["b.mid", "sub/a.mid"]
    assert sources.count_items("my-tunes") == 2


def test_data_folder_with_lyrics(data_dir):
    folder = data_dir / "poems"
    folder.mkdir()
    (folder / "one.txt").write_text("roses are red", encoding="utf-8")
    (folder / "two.csv").write_text('lyrics\n"violets are blue"\n"sugar is sweet"\n', encoding="utf-8")
    source = resolve("poems")
    assert source.kind == "lyrics"
    assert source.texts == ["roses are red", "violets are blue", "sugar is sweet"]


def test_folder_without_usable_files(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cover.png").write_bytes(b"\x89PNG")
    with pytest.raises(SeqgenError, match="holds no score .* and no lyrics"):
        resolve(folder)


def test_single_score_file_and_unsupported_type(tmp_path):
    score = tmp_path / "tune.mid"
    score.write_bytes(MIDI_BYTES)
    source = resolve(score)
    assert (source.name, source.kind, source.files) == ("tune", "music", [score])
    other = tmp_path / "song.mp3"
    other.write_bytes(b"ID3")
    with pytest.raises(SeqgenError, match=r"song.mp3: unsupported file type .mp3"):
        resolve(other)


# --- zips -----------------------------------------------------------------------------------


def test_zip_refuses_unsafe_members_and_extracts_the_rest(tmp_path, temp_root):
    archive = write_zip(tmp_path / "upload.zip", {
        "good/a.mid": MIDI_BYTES,
        "b.mid": MIDI_BYTES,
        "../evil.mid": MIDI_BYTES,
        "/abs.mid": MIDI_BYTES,
        "C:/windows.mid": MIDI_BYTES,
        "x\\..\\..\\backslash.mid": MIDI_BYTES,
    })
    source = resolve(archive)
    try:
        assert source.kind == "music" and source.name == "upload"
        assert sorted(path.relative_to(source.temp_dir).as_posix() for path in source.files) == ["b.mid", "good/a.mid"]
        refused = {item["file"] for item in source.skipped}
        assert refused == {"../evil.mid", "/abs.mid", "C:/windows.mid", "x\\..\\..\\backslash.mid"}
        assert all("absolute or contains '..'" in item["reason"] for item in source.skipped)
        # Nothing was written outside the extraction folder.
        assert not list(tmp_path.rglob("evil.mid")) and not list(tmp_path.rglob("backslash.mid"))
        assert not Path("/abs.mid").exists()
        temp_dir = source.temp_dir
        assert temp_dir.parent == temp_root
    finally:
        source.close()
    assert not temp_dir.exists()  # close() removes the extracted files


def test_zip_too_many_files(tmp_path, temp_root):
    archive = write_zip(tmp_path / "many.zip", {f"t{index}.mid": MIDI_BYTES for index in range(6)})
    with pytest.raises(SeqgenError, match=r"many.zip: holds 6 files, more than the limit of 5 \(set SEQGEN_ZIP_MAX_FILES"):
        resolve(archive, limits=ZipLimits(max_files=5))
    assert list(temp_root.iterdir()) == []  # the partial extraction was removed


def test_zip_too_many_bytes(tmp_path, temp_root):
    archive = write_zip(tmp_path / "bomb.zip", {"a.mid": MIDI_BYTES, "big.mid": b"\0" * 3_000_000})
    assert archive.stat().st_size < 20_000  # highly compressible
    with pytest.raises(SeqgenError, match=r"bomb.zip: uncompressed contents exceed the limit of 100,000 bytes"):
        resolve(archive, limits=ZipLimits(max_bytes=100_000))
    assert list(temp_root.iterdir()) == []
    # Within the caps the same zip opens.
    with resolve(archive, limits=ZipLimits(max_bytes=4_000_000)) as source:
        assert len(source.files) == 2


def _patch_central_directory(archive: Path, member_index: int, offset: int, value: bytes) -> None:
    data = bytearray(archive.read_bytes())
    starts = [match.start() for match in re.finditer(re.escape(b"PK\x01\x02"), bytes(data))]
    position = starts[member_index] + offset
    data[position:position + len(value)] = value
    archive.write_bytes(bytes(data))


def _patch_member_data(archive: Path, member_index: int) -> None:
    with zipfile.ZipFile(archive) as bundle:
        info = bundle.infolist()[member_index]
    data = bytearray(archive.read_bytes())
    name_length = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    for position in range(start + 2, start + min(40, info.compress_size)):
        data[position] ^= 0xA5
    archive.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["lying size header", "corrupt data", "encrypted"])
def test_zip_damaged_member_is_skipped_and_others_extracted(tmp_path, temp_root, damage):
    archive = write_zip(tmp_path / "damaged.zip", {"a.mid": MIDI_BYTES, "bad.mid": b"\1\2\3" * 20_000, "c.mid": MIDI_BYTES})
    if damage == "lying size header":
        _patch_central_directory(archive, 1, 24, (10).to_bytes(4, "little"))  # claims 10 bytes uncompressed
    elif damage == "corrupt data":
        _patch_member_data(archive, 1)
    else:
        _patch_central_directory(archive, 1, 8, (1).to_bytes(2, "little"))  # general purpose flag: encrypted
    with resolve(archive) as source:
        assert sorted(path.name for path in source.files) == ["a.mid", "c.mid"]
        assert [item["file"] for item in source.skipped] == ["bad.mid"]
        assert source.skipped[0]["reason"].startswith("unreadable zip member")
        assert not (source.temp_dir / "bad.mid").exists()


def test_not_a_zip(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"this is not a zip archive")
    with pytest.raises(SeqgenError, match="fake.zip: not a readable zip file"):
        resolve(fake)


def test_zip_limits_from_environment():
    # The defaults are read from the environment when seqgen starts (here: a fresh interpreter).
    import os
    import subprocess
    import sys

    from conftest import REPO_ROOT

    environment = dict(os.environ, SEQGEN_ZIP_MAX_FILES="7", SEQGEN_ZIP_MAX_BYTES="1234", PYTHONPATH=str(REPO_ROOT))
    code = "from seqgen.sources import ZipLimits; limits = ZipLimits(); print(limits.max_files, limits.max_bytes)"
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["7", "1234"], result.stderr


# --- lyrics CSV / TXT --------------------------------------------------------------------------


SCRAPED_CSV = (
    'title,lyrics,url\n'
    '"Caf\u00e9 Song","First line, with a comma\nSecond line \u2019quoted\u2019\n\u201cThird\u201d \U0001F3B6",http://x\n'
    '"Empty","  ",http://y\n'
    '"Na\u00efve","Just one line",http://z\n'
)


def test_scraped_csv_multiline_unicode_lowercase_column(tmp_path):
    path = tmp_path / "scraped.csv"
    path.write_text(SCRAPED_CSV, encoding="utf-8")
    source = resolve(path)
    assert source.kind == "lyrics"
    assert source.texts == ["First line, with a comma\nSecond line \u2019quoted\u2019\n\u201cThird\u201d \U0001F3B6", "Just one line"]
    assert source.warnings == []


def test_kaggle_layout_and_text_column(tmp_path):
    path = tmp_path / "kaggle.csv"
    path.write_text("Artist Name,Song Name,Lyrics\nABBA,Dancing Queen,\"You can dance\nYou can jive\"\nQueen,Bohemian,Is this the real life\n", encoding="utf-8")
    assert resolve(path).texts == ["You can dance\nYou can jive", "Is this the real life"]
    assert resolve(path, text_column="song name").texts == ["Dancing Queen", "Bohemian"]


def test_csv_without_the_column_names_the_columns_found(tmp_path):
    path = tmp_path / "songs.csv"
    path.write_text("artist,title,words\na,b,c\n", encoding="utf-8")
    with pytest.raises(SeqgenError) as error:
        resolve(path)
    message = str(error.value)
    assert "songs.csv: no column named 'Lyrics'" in message
    assert "Columns found: 'artist', 'title', 'words'" in message
    assert "--text-column" in message
    with pytest.raises(SeqgenError, match="no column named 'verse'"):
        resolve(path, text_column="verse")


def test_csv_with_an_empty_column(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("Lyrics,other\n,1\n  ,2\n", encoding="utf-8")
    with pytest.raises(SeqgenError, match="blank.csv: column 'Lyrics' is empty"):
        resolve(path)


def test_latin1_csv_is_decoded_with_replacement_and_a_warning(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("Lyrics\n\"Ma ch\u00e8re, tr\u00e8s jolie\"\n".encode("latin-1"))
    source = resolve(path)
    assert source.texts == ["Ma ch\ufffdre, tr\ufffds jolie"]
    assert len(source.warnings) == 1
    assert source.warnings[0].startswith("latin.csv: not valid UTF-8; 2 undecodable")


def test_txt_file(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("line one\nline two\n", encoding="utf-8")
    source = resolve(path)
    assert (source.name, source.kind, source.texts) == ("poem", "lyrics", ["line one\nline two\n"])
