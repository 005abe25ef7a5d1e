"""Checkpoint bundles: a self-describing folder that generation needs nothing else for.

A bundle holds ``model.keras`` (weights, no optimizer state), ``vocab.json``,
``config.json`` (kind, preset, tokenizer, window, hyper-parameters, corpus),
``history.json`` (one record per epoch), ``seeds.json`` (windows of the seed
split, to start generation), ``stats.json`` and ``corpus.npy`` (what quality
reports compare with), a ``README.md`` model card and, once measured with
``seqgen evaluate``, ``quality.json``.

Every file is written to a temporary sibling and renamed into place, so a
crash or ``kill -9`` leaves the previous complete file.  Loading checks
``config.json`` against a schema, rebuilds the model from seqgen's preset
registry and reads only the weights from the archive: the archive's own
layer config is never deserialized, because Keras' ``safe_mode`` has been
bypassed repeatedly (CVE-2025-1550, CVE-2025-8747, CVE-2025-9906) and HDF5
model files ignore it (CVE-2025-9905).  Legacy ``.h5`` full models are refused.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from seqgen.cache import write_atomic
from seqgen.errors import SeqgenError
from seqgen.vocab import Vocab

FORMAT = "seqgen-bundle"
FORMAT_VERSION = 1
FILES = ("config.json", "vocab.json", "model.keras", "history.json")

# config.json schema: key -> accepted types.
CONFIG_SCHEMA = {
    "format": str,
    "format_version": int,
    "kind": str,
    "preset": str,
    "tokenizer": str,
    "window": int,
    "vocab_size": int,
    "input_mode": str,
    "target_mode": str,
    "training": dict,
    "corpus": dict,
    "best": dict,
    "parameters": int,
}


def checkpoints_dir() -> Path:
    """The shipped bundles: ``$SEQGEN_CHECKPOINTS``, else the ``checkpoints/`` folder of this checkout."""
    return Path(os.environ.get("SEQGEN_CHECKPOINTS") or Path(__file__).resolve().parents[1] / "checkpoints")


def write_json(path: Path, data) -> None:
    write_atomic(Path(path), json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqgenError(f"Bundle {Path(path).parent}: {Path(path).name} is missing.") from None
    except (OSError, ValueError) as error:
        raise SeqgenError(f"Bundle {Path(path).parent}: {Path(path).name} is corrupt ({error}).") from None


def is_bundle(folder: Path) -> bool:
    return (Path(folder) / "config.json").is_file()


def check_config(config, folder: Path) -> dict:
    """Validate ``config.json`` against the schema and the preset registry."""
    from seqgen.models import get_preset

    if not isinstance(config, dict):
        raise SeqgenError(f"Bundle {folder}: config.json must hold a JSON object.")
    if config.get("format") != FORMAT:
        raise SeqgenError(f"Bundle {folder}: config.json is not a seqgen bundle config (format {config.get('format')!r}).")
    for key, kind in CONFIG_SCHEMA.items():
        if key not in config:
            raise SeqgenError(f"Bundle {folder}: config.json lacks {key!r}.")
        if not isinstance(config[key], kind) or (kind is int and isinstance(config[key], bool)):
            raise SeqgenError(f"Bundle {folder}: config.json {key!r} must be {kind.__name__}, got {type(config[key]).__name__}.")
    if config["format_version"] > FORMAT_VERSION:
        raise SeqgenError(f"Bundle {folder}: format version {config['format_version']} is newer than this seqgen ({FORMAT_VERSION}); upgrade seqgen.")
    preset = get_preset(config["kind"], config["preset"])
    if (preset.input_mode, preset.target_mode) != (config["input_mode"], config["target_mode"]):
        raise SeqgenError(f"Bundle {folder}: preset {preset.name!r} no longer matches the bundle's input/target modes.")
    if not 1 <= config["window"] <= 10_000 or not 2 <= config["vocab_size"] <= 1_000_000:
        raise SeqgenError(f"Bundle {folder}: window or vocab_size out of range in config.json.")
    return config


def _starts_with(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def check_archive(path: Path) -> None:
    """Refuse anything that is not a Keras 3 zip archive (legacy HDF5 included)."""
    if any(path.parent.glob("*.h5")) or (path.is_file() and _starts_with(path, b"\x89HDF")):
        raise SeqgenError(
            f"Bundle {path.parent}: legacy HDF5 (.h5) models are refused; they bypass Keras safe mode (CVE-2025-9905). "
            "Retrain with seqgen to get a .keras bundle."
        )
    if not path.is_file():
        raise SeqgenError(f"Bundle {path.parent}: model.keras is missing.")
    if not zipfile.is_zipfile(path):
        raise SeqgenError(f"Bundle {path.parent}: model.keras is corrupt (not a Keras zip archive).")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise SeqgenError(f"Bundle {path.parent}: model.keras is corrupt ({error}).") from None
    if bad is not None or "model.weights.h5" not in names:
        raise SeqgenError(f"Bundle {path.parent}: model.keras is corrupt (weights missing or damaged).")


@dataclass
class Bundle:
    """A loaded bundle: the rebuilt model and everything needed to use it."""

    folder: Path
    config: dict
    vocab: Vocab
    history: list[dict]
    model: object  # keras.Model, rebuilt from the registry
    seeds: list[list[str]]
    stats: dict  # corpus statistics for quality reports (may be empty)
    corpus_ids: object  # numpy int array of the encoded training stream, or None


def load_bundle(folder: Path) -> Bundle:
    """Load and validate a bundle folder; SeqgenError says what is wrong."""
    from seqgen.models import build_model

    folder = Path(folder)
    if not folder.is_dir():
        raise SeqgenError(f"Bundle {folder} not found (no such folder).")
    config = check_config(read_json(folder / "config.json"), folder)
    vocab = Vocab.from_json(read_json(folder / "vocab.json"))
    if len(vocab) != config["vocab_size"]:
        raise SeqgenError(
            f"Bundle {folder}: vocab.json holds {len(vocab)} tokens but the model was trained on {config['vocab_size']}."
        )
    history = read_json(folder / "history.json")
    if not isinstance(history, list):
        raise SeqgenError(f"Bundle {folder}: history.json must hold a list of epochs.")
    seeds_path = folder / "seeds.json"
    seeds = read_json(seeds_path) if seeds_path.exists() else []
    stats = read_json(folder / "stats.json") if (folder / "stats.json").exists() else {}
    corpus_ids = None
    if (folder / "corpus.npy").exists():
        import numpy as np

        try:
            corpus_ids = np.load(folder / "corpus.npy", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SeqgenError(f"Bundle {folder}: corpus.npy is corrupt ({error}).") from None
    archive = folder / "model.keras"
    check_archive(archive)
    model = build_model(config["kind"], config["preset"], config["vocab_size"], config["window"])
    try:
        model.load_weights(str(archive))
    except Exception as error:  # Keras raises ValueError/KeyError on shape or layer mismatches
        raise SeqgenError(f"Bundle {folder}: the weights in model.keras do not fit preset {config['preset']!r} ({error}).") from None
    return Bundle(folder, config, vocab, history, model, seeds, stats, corpus_ids)


def save_weights(model, folder: Path) -> None:
    """Write ``model`` (weights and architecture, no optimizer) as ``model.keras``, atomically."""
    folder = Path(folder)
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".model.", suffix=".keras")
    os.close(handle)
    try:
        model.save(temp_name, overwrite=True)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, folder / "model.keras")
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


QUALITY_ROWS = {  # quality.json summary key → model-card label
    "music": {
        "repetition_rate": "repetition rate (same token twice in a row)",
        "distinct_ratio": "distinct tokens / tokens",
        "pitch_class_distance": "pitch-class distance to the corpus (0 = same, 1 = disjoint)",
        "primer_pitch_class_distance": "pitch-class distance to its primer (keeps the key: low)",
        "longest_copied_ngram": "longest n-gram copied from the corpus (mean)",
        "longest_copied_ngram_max": "longest n-gram copied from the corpus (max)",
        "copied_under_limit_share": "share with no copied n-gram of 16 or more",
    },
    "lyrics": {
        "words": "words",
        "known_word_share": "share of words found in the corpus",
        "distinct_2": "distinct word bigrams / bigrams",
        "repeated_lines": "repeated lines",
        "max_line_repeats": "most times one line appears",
        "within_line_repeat_limit_share": "share where no line appears more than twice",
    },
}


def _number(value, digits=4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def quality_section(config: dict, quality: dict) -> list[str]:
    """The model card's quality lines: generations beside corpus windows and a unigram sampler."""
    summaries = quality["summaries"]
    unit = "tokens" if quality["kind"] == "music" else "characters"
    lines = [
        "",
        "## Quality",
        "",
        f"{quality['generations']} generations of {quality['length']} {unit} with the default settings "
        + ("(each primed with a random window of the seed split)" if quality["kind"] == "music" else "(from the default seed line)")
        + f", beside {quality['generations']} random windows of the training corpus and {quality['generations']} draws "
        "of a unigram sampler (tokens drawn independently with the corpus frequencies). Means unless stated; "
        f"measured with `python -m seqgen evaluate {config.get('name')}` in {quality['seconds']:.0f} s.",
        "",
    ]
    if quality["kind"] == "music":
        lines += [
            f"A corpus window's primer is the {config['window']} tokens before it; a unigram draw is compared with the same "
            f"primers. Over {quality['length']} tokens the unigram sampler, which draws from exactly the corpus's pitch-class mix, is hard "
            "to beat on distance to the corpus; real corpus windows stay in one key, so they usually score worse there. "
            "The distance to the primer shows whether a melody keeps its primer's key.",
            "",
        ]
    lines += [
        "| | generated | corpus windows | unigram sampler |",
        "|---|---|---|---|",
    ]
    for key, label in QUALITY_ROWS[quality["kind"]].items():
        if key in summaries["generated"]:
            lines.append(f"| {label} | " + " | ".join(_number(summaries[source].get(key), 3) for source in ("generated", "corpus", "unigram")) + " |")
    lines += ["", "Quality bar:", ""]
    for check in quality["checks"]:
        mark = "✅ met" if check["passed"] else "❌ not met"
        lines.append(f"- {check['name']}: {_number(check['value'], 3)} (target {check['target']}) {mark}")
    return lines


def model_card(config: dict, history: list[dict], quality: dict | None = None) -> str:
    """A short README.md describing the bundle, with its measured quality once evaluated."""
    best = config["best"]
    corpus = config["corpus"]
    training = config["training"]

    seconds = sum(record.get("seconds", 0.0) for record in history)
    lines = [
        f"# {config.get('name', Path('.').name)}",
        "",
        f"A seqgen {config['kind']} model: preset `{config['preset']}`, tokenizer `{config['tokenizer']}`, "
        f"window {config['window']}, vocabulary {config['vocab_size']}, {config['parameters']:,} parameters.",
        "",
        "| | |",
        "|---|---|",
        f"| corpus | {corpus.get('name')} ({corpus.get('items')} items, {corpus.get('tokens'):,} tokens after filtering) |",
        f"| filter | {corpus.get('filter')}, min-count {corpus.get('min_count')} |",
        f"| training | {training['loss']}, {training['optimizer']} at {training['learning_rate']}, batch {training['batch_size']} |",
        f"| windows | {training.get('train_windows'):,} train, {training.get('validation_windows'):,} validation, {training.get('seed_windows'):,} seed |",
        f"| epochs | {len(history)} |",
        f"| training wall time | {seconds:.0f} s |",
        f"| best epoch | {best.get('epoch')} |",
        f"| validation loss | {_number(best.get('val_loss'))} |",
        f"| validation accuracy | {_number(best.get('val_accuracy'))} |",
        f"| validation cross-entropy, next token after a full window | {_number(best.get('val_cross_entropy'))} |",
        f"| validation perplexity (same) | {_number(best.get('val_perplexity'), 2)} |",
        f"| unigram baseline cross-entropy | {_number(best.get('unigram_val_loss'))} |",
        "",
        "The unigram baseline is the cross-entropy of always predicting the training-set token frequencies: "
        "a model whose next-token cross-entropy is below it has learned more than token counts. "
        "(For presets trained on every position, the validation loss averages all positions, including "
        "those with little context, so compare the next-token cross-entropy.) Validation windows are a random "
        "share of all windows, as in the reference, so most overlap training windows: the validation loss measures "
        "fit more than generalisation"
        + (" (the longest copied n-gram shows whether generations replay the corpus)." if config["kind"] == "music" else "."),
        "",
        "Load it with `seqgen.bundle.load_bundle(folder)`; the architecture is rebuilt from seqgen's preset registry "
        "and only the weights are read from `model.keras`.",
    ]
    if quality is not None:
        lines += quality_section(config, quality)
    return "\n".join(lines) + "\n"
