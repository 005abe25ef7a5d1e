"""Tests for seqgen.lyrics: decoding, cleaning to a small character set, charset reports."""

from seqgen.lyrics import KEEP_LOWER, clean_text, decode_bytes


def test_decode_utf8_with_and_without_bom():
    assert decode_bytes("Été ❤".encode("utf-8")) == ("Été ❤", 0)
    assert decode_bytes("\ufeffhello".encode("utf-8")) == ("hello", 0)


def test_decode_latin1_replaces_and_counts():
    text, replaced = decode_bytes("café crème".encode("latin-1"))
    assert text == "caf\ufffd cr\ufffdme"
    assert replaced == 2


def test_clean_maps_look_alikes_and_removes_the_rest():
    raw = "Don\u2019t \u201cstop\u201d \u2014 the music\u2026\tGo!\r\nCaf\u00e9 \U0001F3B5 na\u00efve \u00a9"
    cleaned = clean_text(raw)
    assert cleaned.text == "don't \"stop\" - the music... go!\ncafe  naive "
    assert cleaned.mapped_chars["\u2019"] == "'"
    assert cleaned.mapped_chars["\u201c"] == '"'
    assert cleaned.mapped_chars["\u2014"] == "-"
    assert cleaned.mapped_chars["\u2026"] == "..."
    assert cleaned.mapped_chars["\u00e9"] == "e"
    assert cleaned.removed_chars == {"\U0001F3B5": 1, "\u00a9": 1}
    # The report: every raw character, and the kept set after cleaning.
    assert cleaned.charset_raw == sorted(set(raw))
    assert "\U0001F3B5" in cleaned.charset_raw and "\u2019" in cleaned.charset_raw
    assert cleaned.charset_clean == sorted(set(cleaned.text))
    assert set(cleaned.charset_clean) <= KEEP_LOWER


def test_clean_counts_every_removed_occurrence():
    cleaned = clean_text("a\U0001F600b\U0001F600c#d")
    assert cleaned.text == "abcd"
    assert cleaned.removed_chars == {"#": 1, "\U0001F600": 2}


def test_clean_keep_case():
    assert clean_text("Hello WORLD \u00c9t\u00e9").text == "hello world ete"
    kept = clean_text("Hello WORLD \u00c9t\u00e9", keep_case=True)
    assert kept.text == "Hello WORLD Ete"
    assert {"H", "W", "E"} <= set(kept.charset_clean)


def test_clean_replacement_character_is_removed_and_reported():
    text, _ = decode_bytes("caf\xe9".encode("latin-1"))
    cleaned = clean_text(text)
    assert cleaned.text == "caf"
    assert cleaned.removed_chars == {"\ufffd": 1}


def test_clean_plain_text_is_unchanged():
    text = "let's dance for the rest of the night here\n(and then some, 2 more!)"
    cleaned = clean_text(text)
    assert cleaned.text == text
    assert cleaned.removed_chars == {}
    assert cleaned.mapped_chars == {}
