"""The ``python -m seqgen`` command line: every studio action, scriptable.

Errors a user can fix are printed as ``error: ...`` with exit status 1;
bad arguments exit with status 2 (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from seqgen.errors import SeqgenError
from seqgen.vocab import FILTER_HELP, FILTERS


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def progress_bar(description: str):
    """A tqdm progress callback on stderr, and the bar itself (close it when done)."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=description, unit="file", file=sys.stderr, disable=None, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar


def zip_limits(args) -> "ZipLimits":
    """Zip caps from the command line, falling back to the environment defaults."""
    from seqgen.sources import ZipLimits

    given = {"max_files": args.zip_max_files, "max_bytes": args.zip_max_bytes}
    return ZipLimits(**{name: value for name, value in given.items() if value is not None})


def command_corpora(args) -> int:
    from seqgen.sources import BUILTIN_CORPORA, count_items, data_corpora, folder_kind

    rows = []
    for name, corpus in BUILTIN_CORPORA.items():
        rows.append({"name": name, "kind": corpus.kind, "source": "built-in", "items": count_items(name), "description": corpus.description})
    for name, folder in data_corpora().items():
        try:
            rows.append({"name": name, "kind": folder_kind(folder), "source": str(folder), "items": count_items(name), "description": ""})
        except SeqgenError as error:
            rows.append({"name": name, "kind": "?", "source": str(folder), "items": 0, "description": str(error)})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{row['name']:<15} {row['kind']:<7} {row['items']:>6} items  {row['description'] or row['source']}")
    return 0


def command_explore(args) -> int:
    from seqgen.corpus import explore, load_corpus

    update, bar = progress_bar(f"parsing {args.corpus}")
    try:
        corpus = load_corpus(
            args.corpus, tokenizer=args.tokenizer, text_column=args.text_column, keep_case=args.keep_case,
            limits=zip_limits(args),
            workers=args.workers, progress=update,
        )
    finally:
        bar.close()
    result = explore(corpus, min_count=args.min_count, filter_mode=args.filter, window=args.window)
    report = result.report
    if args.plots:
        write_plots(result, Path(args.plots))
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    print(f"corpus {report['corpus']} ({report['kind']}, tokenizer {report['tokenizer']}): {report['items']} items")
    print(f"first {len(report['first_tokens'])} tokens: {' '.join(repr(t) if corpus.kind == 'lyrics' else t for t in report['first_tokens'])}")
    print(f"tokens: {report['tokens_total']:,}, distinct: {report['vocab_size']:,}")
    print(f"tokens occurring fewer than {report['min_count']} times: {report['rare_tokens']:,}")
    print(f"filter {report['filter']}: {report['tokens_after_filter']:,} tokens, {report['vocab_after_filter']:,} distinct, {report['rare_left']} rare left")
    print(f"sequences of {report['window']}: {report['sequences']:,}")
    if corpus.kind == "lyrics":
        print(f"characters: {len(report['charset_raw'])} raw, {len(report['charset_clean'])} after cleaning")
        print(f"removed: {' '.join(repr(char) for char in report['removed_chars']) or 'none'}")
    for item in report["skipped"]:
        print(f"skipped {item['file']}: {item['reason']}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    return 0


def write_plots(result, folder: Path) -> None:
    """Write the exploration figures as standalone HTML files."""
    from seqgen import plots

    folder.mkdir(parents=True, exist_ok=True)
    figures = {
        "counts": plots.count_plot(result.counts),
        "frequency_kde": plots.frequency_kde(result.counts, result.report["min_count"]),
        "top_tokens": plots.top_tokens(result.counts),
    }
    if result.report["kind"] == "lyrics":
        figures["characters"] = plots.char_frequencies(result.counts)
    for name, figure in figures.items():
        figure.write_html(folder / f"{name}.html", include_plotlyjs="cdn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m seqgen", description="Recurrent sequence models for music and lyrics.")
    commands = parser.add_subparsers(dest="command", required=True)

    corpora = commands.add_parser("corpora", help="list the built-in and data/ corpora")
    corpora.add_argument("--json", action="store_true", help="print JSON")
    corpora.set_defaults(run=command_corpora)

    explore = commands.add_parser("explore", help="tokenize a corpus and report counts, rare tokens and sequences")
    explore.add_argument("corpus", help="a corpus name (see `corpora`) or a path: score file, folder, .zip, .csv, .txt")
    explore.add_argument("--tokenizer", choices=("seed", "timed"), default="seed", help="music tokenizer (default: seed)")
    explore.add_argument("--min-count", type=positive_int, help="rare-token threshold (default: 100 music, 1 lyrics)")
    explore.add_argument("--filter", choices=FILTERS, default="exact", help="; ".join(f"{k}: {v}" for k, v in FILTER_HELP.items()))
    explore.add_argument("--window", type=positive_int, default=40, help="window length (default: 40)")
    explore.add_argument("--text-column", help="lyrics CSV column (default: Lyrics, any case)")
    explore.add_argument("--keep-case", action="store_true", help="keep upper-case letters in lyrics")
    explore.add_argument("--zip-max-files", type=positive_int, help="zip cap: number of files (default: 5000 or SEQGEN_ZIP_MAX_FILES)")
    explore.add_argument("--zip-max-bytes", type=positive_int, help="zip cap: uncompressed bytes (default: 500 MiB or SEQGEN_ZIP_MAX_BYTES)")
    explore.add_argument("--workers", type=positive_int, help="processes for parsing (default: CPU count)")
    explore.add_argument("--plots", metavar="DIR", help="also write the figures as HTML into DIR")
    explore.add_argument("--json", action="store_true", help="print the report as JSON")
    explore.set_defaults(run=command_explore)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SeqgenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
