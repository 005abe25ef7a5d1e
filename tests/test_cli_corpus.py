"""Tests for ``python -m seqgen corpora`` and ``python -m seqgen explore``, run as a user would."""

import json
import zipfile
from collections import Counter

import pytest
from conftest import simple_melody

from seqgen.cache import TokenCache, tokenize_files
from seqgen.sources import BUILTIN_CORPORA, resolve

REPORT_FIELDS = {
    "corpus", "kind", "tokenizer", "items", "tokens_total", "vocab_size", "min_count", "rare_tokens", "filter",
    "tokens_after_filter", "vocab_after_filter", "rare_left", "window", "sequences", "first_tokens", "top_tokens",
    "skipped", "warnings",
}


def explore_json(cli, *args):
    result = cli("explore", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cached_tokens(name, tokenizer="seed"):
    """The corpus's tokens from the session cache the CLI filled (no second parse)."""
    streams, skipped = tokenize_files(resolve(name).files, tokenizer, cache=TokenCache(), workers=1)
    assert skipped == []
    return [token for stream in streams for token in stream]


def assert_error(result, *fragments):
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


# --- explore on built-in corpora -------------------------------------------------------------------


def test_explore_chopin_json(cli, isolated_seqgen_env):
    report = explore_json(cli, "chopin", "--min-count", "5")
    assert REPORT_FIELDS <= set(report)
    assert (report["corpus"], report["kind"], report["tokenizer"], report["items"]) == ("chopin", "music", "seed", 1)
    assert report["window"] == 40 and report["min_count"] == 5 and report["filter"] == "exact"
    assert report["sequences"] == report["tokens_after_filter"] - 40
    # The CLI filled the session cache, not the user's.
    assert list(isolated_seqgen_env["cache"].rglob("*.json"))
    tokens = cached_tokens("chopin")
    counts = Counter(tokens)
    rare = {token for token, count in counts.items() if count < 5}
    assert report["tokens_total"] == len(tokens)
    assert report["vocab_size"] == len(counts)
    assert report["rare_tokens"] == len(rare) > 0
    assert report["tokens_after_filter"] == sum(1 for token in tokens if token not in rare)
    assert report["rare_left"] == 0
    assert report["first_tokens"] == tokens[:50]


def test_explore_chopin_reference_filter_and_window(cli):
    from seqgen.vocab import filter_reference

    report = explore_json(cli, "chopin", "--min-count", "10", "--filter", "reference", "--window", "8")
    tokens = cached_tokens("chopin")
    rare = {token for token, count in Counter(tokens).items() if count < 10}
    kept = filter_reference(tokens, rare)
    assert report["filter"] == "reference"
    assert report["tokens_after_filter"] == len(kept)
    assert report["rare_left"] == len(rare & set(kept))
    assert report["sequences"] == len(kept) - 8


def test_explore_chopin_text_and_plots(cli, tmp_path):
    plots = tmp_path / "figures"
    result = cli("explore", "chopin", "--tokenizer", "timed", "--min-count", "3", "--plots", plots)
    assert result.returncode == 0, result.stderr
    assert "corpus chopin (music, tokenizer timed): 1 items" in result.stdout
    assert "tokens occurring fewer than 3 times:" in result.stdout
    assert "sequences of 40:" in result.stdout
    assert sorted(path.name for path in plots.iterdir()) == ["counts.html", "frequency_kde.html", "rank_frequency.html", "top_tokens.html"]
    for path in plots.iterdir():
        html = path.read_text(encoding="utf-8")
        assert html.lstrip().lower().startswith(("<html", "<!doctype html")) and "plotly" in html.lower()


@pytest.mark.slow
def test_explore_mozart_json(cli):
    report = explore_json(cli, "mozart")
    tokens = cached_tokens("mozart")
    counts = Counter(tokens)
    assert report["items"] == len(resolve("mozart").files) == 16
    assert report["min_count"] == 100 and report["window"] == 40
    assert report["tokens_total"] == len(tokens)
    assert report["rare_tokens"] == sum(1 for count in counts.values() if count < 100)
    assert report["tokens_after_filter"] == sum(count for count in counts.values() if count >= 100)
    assert report["sequences"] == report["tokens_after_filter"] - 40


def test_corpus_commands_do_not_load_tensorflow(tmp_path):
    # Exploring must stay quick: TensorFlow takes seconds to import and is not needed here.
    import subprocess
    import sys

    from conftest import REPO_ROOT

    code = (
        "import sys; from seqgen.cli import main; "
        "assert main(['explore', 'chopin', '--min-count', '5', '--json']) == 0; "
        "assert main(['corpora', '--json']) == 0; "
        "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --- corpora ----------------------------------------------------------------------------------------


def test_corpora_json_lists_builtins_and_data_folders(cli, data_dir, midi_file):
    folder = data_dir / "my-tunes"
    folder.mkdir()
    midi_file("data/my-tunes/one.mid", simple_melody())
    midi_file("data/my-tunes/two.mid", simple_melody(4))
    (data_dir / "junk").mkdir()
    result = cli("corpora", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(BUILTIN_CORPORA) <= set(rows) and len(BUILTIN_CORPORA) == 11
    for name, corpus in BUILTIN_CORPORA.items():
        assert rows[name]["kind"] == corpus.kind and rows[name]["source"] == "built-in"
        assert rows[name]["items"] > 0, name
    assert rows["songs-poems"]["items"] > 500
    assert rows["my-tunes"]["kind"] == "music" and rows["my-tunes"]["items"] == 2
    assert rows["junk"]["kind"] == "?" and "holds no score" in rows["junk"]["description"]
    text = cli("corpora")
    assert text.returncode == 0 and "my-tunes" in text.stdout and "mozart" in text.stdout
    # The data folder is a corpus name for explore too.
    report = explore_json(cli, "my-tunes", "--min-count", "1", "--window", "4", "--workers", "1")
    assert (report["corpus"], report["items"]) == ("my-tunes", 2)


# --- lyrics ------------------------------------------------------------------------------------------


def test_explore_lyrics_csv(cli, tmp_path):
    path = tmp_path / "scraped.csv"
    path.write_text("title,lyrics\n\"One\",\"Caf\u00e9 \u201cnights\u201d \U0001F319\nDon\u2019t stop\"\n\"Two\",\"La la la, oh OH\"\n", encoding="utf-8")
    report = explore_json(cli, path)
    assert (report["kind"], report["tokenizer"], report["items"]) == ("lyrics", "char", 2)
    assert report["removed_chars"] == {"\U0001F319": 1}
    assert "\u201c" in report["charset_raw"] and "\u201c" not in report["charset_clean"]
    assert "O" not in report["charset_clean"]
    assert "O" in explore_json(cli, path, "--keep-case")["charset_clean"]
    plots = tmp_path / "plots"
    text = cli("explore", path, "--plots", plots)
    assert text.returncode == 0, text.stderr
    assert "characters:" in text.stdout and "removed: '\U0001F319'" in text.stdout
    assert (plots / "characters.html").is_file()


def test_explore_kaggle_csv_and_text_column(cli, tmp_path):
    path = tmp_path / "kaggle.csv"
    path.write_text("Artist Name,Song Name,Lyrics\nX,Hey Jude,\"na na na\nna\"\nY,Yesterday,all my troubles\n", encoding="utf-8")
    assert explore_json(cli, path, "--window", "5")["tokens_total"] == len("na na na\nna\n\nall my troubles")
    assert explore_json(cli, path, "--text-column", "song name", "--window", "5")["tokens_total"] == len("hey jude\n\nyesterday")


def test_explore_latin1_csv_warns_with_the_file_name(cli, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("Lyrics\n\"Ma ch\u00e8re, tr\u00e8s jolie m\u00e9lodie\"\n".encode("latin-1"))
    result = cli("explore", path, "--window", "5")
    assert result.returncode == 0, result.stderr
    assert "warning: latin.csv: not valid UTF-8; 3 undecodable" in result.stdout


# --- bad input ----------------------------------------------------------------------------------------


def test_unknown_corpus(cli):
    assert_error(cli("explore", "no-such-corpus"), "Unknown corpus 'no-such-corpus'", "mozart", "songs-poems")


def test_csv_without_the_text_column(cli, tmp_path):
    path = tmp_path / "songs.csv"
    path.write_text("artist,title,words\na,b,c\n", encoding="utf-8")
    assert_error(cli("explore", path), "songs.csv: no column named 'Lyrics'", "Columns found: 'artist', 'title', 'words'", "--text-column")
    assert_error(cli("explore", path, "--text-column", "verse"), "no column named 'verse'")


def test_min_count_that_removes_everything(cli):
    assert_error(cli("explore", "chopin", "--min-count", "100000"), "min-count 100000 removed every token of corpus 'chopin'", "Lower --min-count")


def test_zip_caps(cli, tmp_path):
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for index in range(4):
            bundle.writestr(f"t{index}.mid", b"\0" * 50_000)
    assert_error(cli("explore", archive, "--zip-max-files", "3"), "upload.zip: holds 4 files, more than the limit of 3")
    assert_error(cli("explore", archive, "--zip-max-bytes", "120000"), "upload.zip: uncompressed contents exceed the limit of 120,000 bytes")
    assert_error(cli("explore", archive, "--zip-max-files", "3", env={"SEQGEN_ZIP_MAX_FILES": "2"}), "limit of 3")
    assert_error(cli("explore", archive, env={"SEQGEN_ZIP_MAX_FILES": "2"}), "more than the limit of 2")


def test_folder_where_every_score_fails(cli, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "a.mid").write_bytes(b"")
    (folder / "b.mid").write_bytes(b"not midi")
    assert_error(cli("explore", folder, "--workers", "1"), "Corpus 'broken': none of its 2 score files could be read", "a.mid: the file is empty")


def test_bad_file_is_skipped_and_reported(cli, tmp_path, midi_file):
    midi_file("mixed/good.mid", simple_melody())
    (tmp_path / "mixed" / "empty.mid").write_bytes(b"")
    result = cli("explore", tmp_path / "mixed", "--min-count", "1", "--window", "4", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "empty.mid: empty.mid: the file is empty (0 bytes)." in result.stdout
    assert result.stdout.count("skipped ") == 1


def test_unsupported_file_type(cli, tmp_path):
    path = tmp_path / "song.mp3"
    path.write_bytes(b"ID3")
    assert_error(cli("explore", path), "song.mp3: unsupported file type .mp3")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["explore", "chopin", "--tokenizer", "words"], "invalid choice: 'words'"),
        (["explore", "chopin", "--min-count", "0"], "must be a positive integer, got 0"),
        (["explore", "chopin", "--window", "-3"], "must be a positive integer, got -3"),
        (["explore", "chopin", "--filter", "loose"], "invalid choice: 'loose'"),
        (["explore"], "the following arguments are required: corpus"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_arguments_exit_2(cli, args, fragment):
    result = cli(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
