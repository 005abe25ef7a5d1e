"""Explore one corpus with an empty token cache (cold) and again with it filled (warm).

    python bench/corpus_cache.py [--corpus mozart] [--repeats 5] [--json]

Cold parses every score with music21 in a process pool; warm reads the
content-hashed cache.  Prints {"corpus", "cold_s", "warm_s", "speedup"}; warm_s
is the median of the repeats.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from seqgen.cache import TokenCache  # noqa: E402
from seqgen.corpus import explore, load_corpus  # noqa: E402


def timed_explore(corpus: str, tokenizer: str, cache: TokenCache) -> float:
    start = time.perf_counter()
    explore(load_corpus(corpus, tokenizer=tokenizer, cache=cache))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="mozart")
    parser.add_argument("--tokenizer", default="seed", choices=("seed", "timed"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqgen-bench-cache-") as folder:
        cache = TokenCache(Path(folder))
        cold = timed_explore(args.corpus, args.tokenizer, cache)
        warm = statistics.median(timed_explore(args.corpus, args.tokenizer, cache) for _ in range(args.repeats))
    result = {"corpus": args.corpus, "tokenizer": args.tokenizer, "cold_s": round(cold, 3), "warm_s": round(warm, 4), "speedup": round(cold / warm, 1)}
    print(json.dumps(result) if args.json else "\n".join(f"{key}: {value}" for key, value in result.items()))


if __name__ == "__main__":
    main()
