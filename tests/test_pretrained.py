"""The shipped bundles in checkpoints/: made by scripts/pretrain.sh, small, loadable, and honestly measured.

Every bundle the script builds must be shipped with the settings the script
gives; each one loads and generates; its model card is exactly what seqgen
writes from its config, history and ``quality.json``; and the first of the
card's generations comes out again token for token.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from seqgen.bundle import load_bundle, read_config, read_quality, read_sampling, scan_bundles
from seqgen.card import model_card
from seqgen.cli import build_parser
from seqgen.evaluate import COPY_LIMIT, MAX_LINE_REPEATS, evaluate_bundle, piece_checks, quality_checks
from seqgen.presets import get_preset

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO_ROOT / "checkpoints"
SCRIPT = (REPO_ROOT / "scripts" / "pretrain.sh").read_text()


def script_table(name: str) -> dict[str, str]:
    """The script's ``declare -A NAME=(…)`` table, by bundle: entries ``[bundle]="value"`` or ``[bundle]=value``."""
    block = re.search(rf"^declare -A {name}=\((.*?)\)$", SCRIPT, flags=re.M | re.S).group(1)
    return {key: quoted or plain for key, quoted, plain in re.findall(r'\[([\w-]+)\]=(?:"([^"]*)"|([^\s")]+))', block)}


SETTINGS = script_table("SETTINGS")
ORDER = re.search(r"^ORDER=\(([^)]*)\)", SCRIPT, flags=re.M).group(1).split()
RESUME = script_table("RESUME")  # bundles the script continues with --resume after their first run, and that run's settings
GENERATIONS = {name: int(count) for name, count in script_table("GENERATIONS").items()}
# What ships: every bundle in checkpoints/.
NAMES = [entry.label for entry in scan_bundles(CHECKPOINTS, "shipped")]
MAX_BUNDLE_BYTES = 25 * 1024 * 1024


def docs_models() -> dict[str, str]:
    """The rows of the table of pretrained models in docs/models.md, by model name."""
    lines = (REPO_ROOT / "docs" / "models.md").read_text(encoding="utf-8").splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("| model |"))
    rows = {}
    for line in lines[start + 2:]:  # after the header and its |---| line
        if not line.startswith("|"):
            break
        rows[re.match(r"^\| `([^`]+)` \|", line).group(1)] = line
    return rows


@pytest.fixture(scope="module", params=NAMES)
def shipped(request):
    return load_bundle(CHECKPOINTS / request.param)


def test_the_script_the_docs_and_checkpoints_name_the_same_models():
    assert NAMES, "no bundle in checkpoints/"
    assert sorted(ORDER) == sorted(set(ORDER)) == sorted(SETTINGS) == NAMES
    assert sorted(docs_models()) == NAMES
    # Nothing else in checkpoints/ (a half-written or stray folder would not be a bundle).
    assert sorted(path.name for path in CHECKPOINTS.iterdir()) == NAMES


def settings_differences(shipped) -> list[str]:
    """What in the bundle differs from the settings scripts/pretrain.sh gives it."""
    name = shipped.folder.name
    args = build_parser().parse_args(["train", *SETTINGS[name].split(), "--out", "x"])
    # A continued bundle's config.json holds its last run's epochs and time cap; its history holds every epoch.
    resumed = build_parser().parse_args(["train", args.corpus, "--resume", "x", *RESUME[name].split()]) if name in RESUME else None
    last = resumed or args
    config, training = shipped.config, shipped.config["training"]
    expected = {"corpus": (config["corpus"]["name"], args.corpus), "preset": (config["preset"], args.preset),
                "epochs": (training["epochs"], last.epochs), "max_windows": (training["max_windows"], args.max_windows),
                # early stopping may end a run before its last epoch
                "epochs trained": (len(shipped.history), len(shipped.history) if args.early_stopping and len(shipped.history) < args.epochs
                                   else args.epochs + (resumed.epochs if resumed else 0)),
                "early_stopping": (training["early_stopping"], args.early_stopping), "seed": (training["seed"], 42),
                "split": (training.get("split", "random"), args.split or get_preset(config["kind"], args.preset).split)}
    if config["kind"] == "music":
        expected["tokenizer"] = (config["tokenizer"], args.tokenizer)
    if args.min_count is not None:
        expected["min_count"] = (config["corpus"]["min_count"], args.min_count)
    if args.batch_size is not None:
        expected["batch_size"] = (training["batch_size"], args.batch_size)
    if args.optimizer is not None:
        expected["optimizer"] = (training["optimizer"], args.optimizer)
    if args.learning_rate is not None:
        expected["learning_rate"] = (training["learning_rate"], args.learning_rate)
    if last.max_minutes is not None:
        expected["max_minutes"] = (training.get("max_minutes"), last.max_minutes)
    return [f"{key}: {found!r}, script {wanted!r}" for key, (found, wanted) in expected.items() if found != wanted]


def test_bundles_hold_the_script_settings(shipped):
    assert settings_differences(shipped) == []


def test_bundles_are_small_and_hold_no_optimizer_state(shipped):
    size = sum(path.stat().st_size for path in shipped.folder.rglob("*") if path.is_file())
    assert size <= MAX_BUNDLE_BYTES
    with zipfile.ZipFile(shipped.folder / "model.keras") as archive, archive.open("model.weights.h5") as weights:
        with h5py.File(weights, "r") as h5:
            assert "optimizer" not in h5 and "layers" in h5


def test_bundles_load_and_generate(shipped, tmp_path):
    import music21

    from seqgen.generate import DEFAULT_SEED_LINE, complete_lyrics, generate_melody

    if shipped.config["kind"] == "music":
        output = generate_melody(shipped, tmp_path, length=32, rng_seed=1, render_audio=False)
        melody = output.melodies[0]
        assert len(melody.tokens) == 32 and set(melody.tokens) <= set(shipped.vocab.tokens)
        assert len(music21.converter.parse(melody.midi).flatten().notes) > 0
    else:
        output = complete_lyrics(shipped, DEFAULT_SEED_LINE, length=120, rng_seed=1)
        assert len(output.texts[0]) == 120 and set(output.texts[0]) <= set(shipped.vocab.tokens)
        assert output.seed == DEFAULT_SEED_LINE and not output.dropped


def summary_of(reports: list[dict]) -> dict:
    """What quality.json's summaries must hold: each numeric metric's mean over the reports, and the extremes the bar needs."""
    summary = {}
    for key in reports[0]:
        values = [report[key] for report in reports if isinstance(report[key], (int, float))]
        if values:
            summary[key] = float(np.mean(values))
    copied = [report.get("longest_copied_ngram") for report in reports]
    if copied[0] is not None:
        summary["longest_copied_ngram_max"] = max(copied)
        summary["copied_under_limit_share"] = float(np.mean([length < COPY_LIMIT for length in copied]))
    if "max_line_repeats" in reports[0]:
        summary["within_line_repeat_limit_share"] = float(np.mean([report["max_line_repeats"] <= MAX_LINE_REPEATS for report in reports]))
    return summary


def test_model_cards_are_what_seqgen_writes_from_the_measurements(shipped):
    quality = read_quality(shipped.folder)
    assert quality["generations"] == GENERATIONS[shipped.folder.name]  # as scripts/pretrain.sh evaluates it
    for source, reports in quality["reports"].items():
        assert len(reports) == quality["generations"]
        assert quality["summaries"][source] == pytest.approx(summary_of(reports))
    pieces = piece_checks(quality["pieces"]) if "pieces" in quality else []  # events models: whole pieces too
    assert quality["checks"] == quality_checks(shipped.config["kind"], quality["summaries"], quality["closeness"]) + pieces
    card = (shipped.folder / "README.md").read_text(encoding="utf-8")
    assert card == model_card(shipped.config, shipped.history, quality, read_sampling(shipped.folder))
    for needed in ("corpus", "tokenizer", "parameters", "epochs", "training wall time", "validation loss",
                   "validation accuracy", "perplexity", "## Quality", "corpus windows", "unigram sampler",
                   "validation split", "Generalisation gap", "gap closed"):
        assert needed in card, needed
    if shipped.config["kind"] == "music":
        assert {"key_consistency", "pitch_range", "interval_overlap"} <= set(quality["closeness"])


def test_the_first_card_generation_comes_out_again(shipped):
    quality = read_quality(shipped.folder)
    again = evaluate_bundle(shipped, generations=1, rng_seed=quality["rng_seed"])["reports"]["generated"][0]
    stored = quality["reports"]["generated"][0]
    assert again.pop("invented_words", None) == stored.pop("invented_words", None)  # lyrics: a list, compared exactly
    assert again == pytest.approx(stored)


def test_the_cli_finds_shipped_models_by_name_from_any_folder(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("SEQGEN_CHECKPOINTS", None)
    command = [sys.executable, "-m", "seqgen", "generate"]
    name = next(name for name in NAMES if read_config(CHECKPOINTS / name)["kind"] == "lyrics")
    made = subprocess.run([*command, name, "--length", "30", "--rng-seed", "2", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    output = json.loads(made.stdout)
    recommended = read_sampling(CHECKPOINTS / name)  # the bundle's swept settings, else the lyrics default
    assert output["settings"]["bundle"] == name
    assert output["settings"]["temperature"] == (recommended["settings"]["temperature"] if recommended else 0.8)
    assert len(output["text"]) == 30
    unknown = subprocess.run([*command, "bach"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert unknown.returncode == 1 and ", ".join(NAMES) in unknown.stderr


def test_the_docs_list_every_model_with_its_headline_metrics(shipped):
    row = docs_models()[shipped.folder.name]
    quality = read_quality(shipped.folder)
    met = sum(check["passed"] for check in quality["checks"])
    assert f"{shipped.config['best']['val_perplexity']:.2f}" in row and f"{shipped.config['parameters']:,}" in row
    assert f"bar {met}/{len(quality['checks'])}" in row and f"{len(shipped.history)} epochs" in row
    # The closeness figures are the card's: generated (corpus windows, unigram): share of the gap closed.
    name, label = ("key_consistency", "key consistency") if shipped.config["kind"] == "music" else ("known_word_share", "known words")
    closeness = quality["closeness"][name]
    closed = "n/a" if closeness["gap_closed"] is None else f"{round(closeness['gap_closed'] * 100)} %"  # no gap to close
    assert f"{label} {closeness['generated']:.3f} ({closeness['corpus']:.3f}, {closeness['unigram']:.3f}): {closed}" in row
    sampling = "(swept)" if read_sampling(shipped.folder) else "(default)"
    assert f"temperature {quality['sampling']['temperature']:g}" in row and sampling in row
