"""seqgen.card: what a model card and a model's dropdown label say, written from the model's own metrics."""

from __future__ import annotations

import re

import pytest

from seqgen.card import model_card, model_label, plain_summary, standing


def config(preset="embed", kind="music", tokenizer="timed", entropy=1.0, baseline=5.0, name="m"):
    return {"name": name, "kind": kind, "preset": preset, "tokenizer": tokenizer, "window": 40, "vocab_size": 10,
            "parameters": 1234, "corpus": {"name": "bach", "items": 1, "tokens": 100, "filter": "exact", "min_count": 1},
            "training": {"loss": "categorical_crossentropy", "optimizer": "adam", "learning_rate": 0.003, "batch_size": 64,
                         "train_windows": 10, "validation_windows": 2, "seed_windows": 3},
            "best": {"epoch": 2, "val_loss": entropy, "val_accuracy": 0.5, "val_cross_entropy": entropy,
                     "unigram_val_loss": baseline}}


@pytest.mark.parametrize(("entropy", "level"), [(5.0, 0), (4.95, 0), (4.8, 1), (4.0, 1), (3.9, 2), (1.0, 2)])
def test_standing_against_the_unigram_baseline(entropy, level):
    assert standing(config(entropy=entropy)) == level


def test_labels_say_what_each_model_is():
    assert model_label("bach-timed", config(), 5) == "bach-timed — recommended, with rhythm, 5 epochs, well below the unigram baseline"
    assert model_label("mozart-seed", config("seed", tokenizer="seed", entropy=3.54, baseline=3.54), 8) == (
        "mozart-seed — reference architecture, pitches only, 8 epochs, still at the unigram baseline (the report: 200 epochs)")
    assert model_label("poems", config("seed", kind="lyrics", entropy=2.8, baseline=3.04), 1) == (
        "poems — reference architecture, 1 epoch, a little below the unigram baseline (the report: about 50 % accuracy)")
    assert model_label("new", config("embed", entropy=4.9), 1).startswith("new — embed preset, with rhythm")  # not yet recommended
    unmeasured = config("debug")
    unmeasured["best"] = {}
    assert model_label("tiny", unmeasured, 0).endswith("0 epochs, not measured yet")


def test_reference_cards_say_what_the_report_reached_beside_this_bundle():
    card = model_card(config("seed", kind="lyrics", entropy=2.8, baseline=3.04), [{"epoch": 1, "seconds": 2.0}])
    assert ("Reference architecture: the report's run of this architecture reached about 50 % validation accuracy, with "
            "little gain after about 10 epochs; this bundle trained 1 epoch and reached 50.0 % validation accuracy.") in card
    assert "Reference architecture" not in model_card(config("embed"), [{"epoch": 1, "seconds": 2.0}])


def test_the_plain_sentence_comes_from_the_metrics():
    assert plain_summary(config("seed", entropy=3.54, baseline=3.54)) == (
        "In plain words: this model learned only how often each note occurs, not which note follows which (its next-note "
        "cross-entropy 3.54 against the unigram baseline 3.54), so expect notes drawn by their frequency, with no tune.")
    assert "expect letter soup" in plain_summary(config(kind="lyrics", entropy=3.0, baseline=3.0))
    assert "which character tends to follow which" in plain_summary(config(kind="lyrics", entropy=1.0, baseline=3.0))


def test_the_card_opens_with_the_sentence_and_ends_with_the_developers_section():
    card = model_card(config(name="bach-timed"), [{"epoch": 1, "seconds": 3.0}, {"epoch": 2, "seconds": 3.0}])
    lines = card.splitlines()
    assert lines[0] == "# bach-timed" and lines[2].startswith("In plain words:")
    developers = card.index("## For developers")
    assert "load_bundle" not in card[:developers] and "python -m seqgen" not in card[:developers]
    assert "python -m seqgen generate bach-timed" in card[developers:]


def test_the_developers_snippet_runs(music_bundle_dir):
    card = model_card(config(name="debug"), [])
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1).replace("path/to/this/folder", str(music_bundle_dir))
    printed = []
    exec(code, {"print": printed.append})  # noqa: S102 - the card's own snippet, on the session's debug bundle
    assert len(printed[0]) == 50


def test_the_play_tabs_default_melody_model_says_why():
    from seqgen.card import DEFAULT_REASONS, STUDIO_DEFAULTS

    card = model_card(config(name=STUDIO_DEFAULTS["music"]), [{"epoch": 1, "seconds": 3.0}])
    assert f"**The studio's Play tab opens with this model.** {DEFAULT_REASONS[STUDIO_DEFAULTS['music']]}" in card
    assert "Play tab opens with this model" not in model_card(config(name="bach-timed"), [{"epoch": 1, "seconds": 3.0}])
