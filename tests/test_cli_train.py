"""Tests for ``python -m seqgen summary | train | study``, run as a user would.

Each command starts a fresh Python, and those that reach TensorFlow import it
(seconds), so the subprocess runs are the ones that need a real process (exit
statuses, argparse errors, one training run) and run side by side in a module
fixture; the resume and the other messages use the same entry point in this
process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import run_seqgen

TRAIN = ("train", "chopin", "--preset", "debug", "--min-count", "2", "--max-windows", "200", "--epochs", "1")


def run_all(commands: dict, cwd: Path, workers: int = 3) -> dict:
    """Run several independent commands side by side; results by name."""
    with ThreadPoolExecutor(workers) as pool:
        futures = {name: pool.submit(run_seqgen, *args, cwd=cwd) for name, args in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def output(result: subprocess.CompletedProcess) -> str:
    return f"rc={result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


# --- subprocess runs -------------------------------------------------------------------------
#
# Commands that load TensorFlow take seconds each just to import it, so the subprocess commands
# are the few that need a process of their own, run once, side by side, in the ``runs`` fixture.

COMMANDS = {
    "train": (*TRAIN, "--out", "bundle"),  # the longest first
    "epochs_zero": (*TRAIN[:-2], "--epochs", "0", "--out", "never"),
    "epochs_negative": (*TRAIN[:-2], "--epochs", "-2", "--out", "never"),
    "missing_out": TRAIN,
    "bad_corpus": ("train", "no-such-corpus", "--preset", "debug", "--out", "never"),
    "resume_nothing": (*TRAIN[:4], "--resume", "nowhere"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    results = run_all(COMMANDS, cwd)
    results["cwd"] = cwd
    return results


@pytest.mark.parametrize(("case", "value"), [("epochs_zero", "0"), ("epochs_negative", "-2")])
def test_train_refuses_non_positive_epochs(runs, case, value):
    result = runs[case]
    assert result.returncode == 2, output(result)
    assert f"--epochs must be a positive integer, got {value}" in result.stderr


def test_train_needs_an_output_folder(runs):
    result = runs["missing_out"]
    assert result.returncode == 2, output(result)
    assert "train needs --out DIR (or --resume DIR)" in result.stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad_corpus", "error: Unknown corpus 'no-such-corpus'"),
        ("resume_nothing", "error: --resume nowhere: no bundle there."),
    ],
)
def test_bad_arguments_exit_1_with_a_message(runs, case, message):
    result = runs[case]
    assert result.returncode == 1, output(result)
    assert message in result.stderr
    assert result.stderr.count("error: ") == 1 and "Traceback" not in result.stderr
    assert not (runs["cwd"] / "never").exists()  # nothing was written


def test_train_prints_final_metrics_and_writes_a_bundle(runs):
    from seqgen.bundle import load_bundle

    result = runs["train"]
    assert result.returncode == 0, output(result)
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert lines["bundle"] == "bundle" and lines["epochs"] == "1" and lines["stopped"] == "False"
    assert lines["best_epoch"] == "1"
    for key in ("val_loss", "val_accuracy", "val_perplexity", "unigram_val_loss"):
        float(lines[key])
    assert int(lines["parameters"]) > 0
    # progress on stderr: the run's sizes and the epoch line
    assert "training windows" in result.stderr and "unigram baseline" in result.stderr
    assert "epoch 1/1: loss" in result.stderr and "(best, saved)" in result.stderr

    bundle = load_bundle(runs["cwd"] / "bundle")
    assert bundle.config["preset"] == "debug" and bundle.config["corpus"]["name"] == "chopin"
    assert bundle.config["corpus"]["min_count"] == 2
    training = bundle.config["training"]
    assert training["train_windows"] + training["validation_windows"] + training["seed_windows"] == 200
    assert bundle.config["parameters"] == int(lines["parameters"])
    assert len(bundle.history) == 1


@pytest.fixture(scope="module")
def trained(runs):
    """The CLI-trained bundle (read-only: tests that change it copy it first)."""
    if runs["train"].returncode != 0:
        pytest.skip("the training run failed")
    return runs["cwd"] / "bundle"


# --- the same entry point in-process, for the remaining messages ------------------------------


@pytest.fixture
def main(monkeypatch, tmp_path):
    """``seqgen.cli.main(argv)`` in this process, from a temp folder; SIGINT handling restored after."""
    import signal

    from seqgen.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    previous = signal.getsignal(signal.SIGINT)
    yield cli_main
    signal.signal(signal.SIGINT, previous)


def test_summary_prints_the_reference_parameter_count(main, capsys):
    assert main(["summary", "--preset", "seed", "--kind", "music", "--vocab-size", "228"]) == 0
    out = capsys.readouterr().out
    assert "1,964,516" in out
    assert "music preset 'seed'" in out and "lstm_1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("train", "chopin", "--preset", "colossal", "--min-count", "2", "--out", "never"),
         "error: Unknown music preset 'colossal'; valid presets: 'seed', 'seed-dropout', 'embed', 'debug', 'debug-last'"),
        ((*TRAIN, "--optimizer", "rmsprop", "--out", "never"), "error: Unknown optimizer 'rmsprop'; valid optimizers: adam, sgd, adadelta, adamax"),
        (("study", "chopin", "--preset", "debug-last", "--min-count", "2", "--epochs", "1",
          "--losses", "categorical_crossentropy", "hinge", "--optimizers", "adam", "--out", "never"),
         "error: Unknown loss 'hinge'; valid losses: categorical_crossentropy, mse, mae"),
        ((*TRAIN, "--loss", "hinge", "--out", "never"), "error: Unknown loss 'hinge'; valid losses: categorical_crossentropy, mse, mae"),
        ((*TRAIN[:4], "--min-count", "100000", "--out", "never"), "error: --min-count 100000 removed every token"),
        ((*TRAIN, "--window", "5000", "--out", "never"), "error: The window (5000 tokens) is not shorter than the corpus"),
        (("study", "chopin", "--preset", "debug-last", "--min-count", "2", "--losses", "mse", "--optimizers", "nadam", "--out", "never"),
         "error: Unknown optimizer 'nadam'; valid optimizers: adam, sgd, adadelta, adamax"),
        (("summary", "--preset", "colossal", "--vocab-size", "228"), "error: Unknown music preset 'colossal'; valid presets:"),
        (("train", "chopin", "--kind", "lyrics", "--preset", "debug", "--out", "never"), "error: Corpus 'chopin' is music, not lyrics (--kind)."),
    ],
)
def test_more_bad_arguments_exit_1_with_a_message(main, capsys, tmp_path, argv, message):
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("error: ") == 1 and "Traceback" not in err
    assert not (tmp_path / "never").exists()


def test_resume_continues_the_bundle(main, capsys, trained, tmp_path):
    from seqgen.bundle import load_bundle

    shutil.copytree(trained, tmp_path / "bundle")
    assert main(["train", "chopin", "--resume", "bundle", "--epochs", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 2 and summary["bundle"] == "bundle"
    bundle = load_bundle(tmp_path / "bundle")
    assert [record["epoch"] for record in bundle.history] == [1, 2]
    assert bundle.history[0] == load_bundle(trained).history[0]
    # the saved settings are kept: --min-count and --max-windows were not repeated
    assert bundle.config["corpus"]["min_count"] == 2
    assert bundle.config["training"]["max_windows"] == 200


def test_split_flag_holds_out_blocks_and_resume_keeps_the_split(main, capsys, tmp_path):
    from seqgen.bundle import load_bundle

    assert main([*TRAIN, "--split", "blocks", "--out", "held"]) == 0
    first = load_bundle(tmp_path / "held").config["training"]
    assert first["split"] == "blocks" and first["train_windows"] + first["validation_windows"] + first["seed_windows"] <= 200
    assert main(["train", "chopin", "--resume", "held", "--split", "random", "--epochs", "1"]) == 0  # the saved split wins
    resumed = load_bundle(tmp_path / "held").config["training"]
    assert resumed["split"] == "blocks" and resumed["validation_windows"] == first["validation_windows"]
    # A bundle from before the setting was trained on the reference's random split, and resumes on it.
    config = json.loads((tmp_path / "held" / "config.json").read_text())
    del config["training"]["split"]
    (tmp_path / "held" / "config.json").write_text(json.dumps(config))
    assert main(["train", "chopin", "--resume", "held", "--epochs", "1"]) == 0
    assert load_bundle(tmp_path / "held").config["training"]["split"] == "random"
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        main([*TRAIN, "--split", "halves", "--out", "never"])
    assert refused.value.code == 2 and "invalid choice: 'halves' (choose from 'random', 'blocks')" in capsys.readouterr().err


def test_train_over_an_existing_bundle_is_refused_and_leaves_it_untouched(main, capsys, trained, tmp_path):
    folder = Path(shutil.copytree(trained, tmp_path / "copy"))
    before = {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()}
    assert main([*TRAIN, "--out", "copy"]) == 1
    err = capsys.readouterr().err
    assert "already holds a model (preset 'debug' on corpus 'chopin')" in err and "--overwrite" in err
    assert {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()} == before


def test_resume_on_another_corpus_is_refused(main, capsys, trained, tmp_path):
    shutil.copytree(trained, tmp_path / "copy")
    assert main(["train", "joplin", "--resume", "copy", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "error: Cannot resume: the corpus gives a different vocabulary" in err
    assert "Use the same corpus, tokenizer and min-count." in err


def test_max_minutes_caps_the_run_and_keeps_its_best_epoch(main, capsys, tmp_path):
    from seqgen.bundle import load_bundle

    assert main([*TRAIN, "--epochs", "50", "--max-minutes", "0.0001", "--out", "capped", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stopped"] is True and summary["epochs"] == 1 and summary["best_epoch"] == 1
    bundle = load_bundle(tmp_path / "capped")
    assert bundle.config["training"]["max_minutes"] == 0.0001
    assert bundle.history[-1]["stop_reason"] == "the time cap of 0.0001 minutes"
