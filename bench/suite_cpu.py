"""Where the test suite's CPU goes: every Python process it starts, by kind, with its CPU time.

    python bench/suite_cpu.py [--json] [-- PYTEST_ARGS …]

Runs ``python -m pytest -q`` (the README's command; extra arguments after
``--``) with a ``sitecustomize`` on ``PYTHONPATH`` that logs, as each Python
process exits, its CPU time and whether it imported TensorFlow or Gradio.
Processes that end with ``os._exit`` (a generation worker outliving its
server) are not logged.  Prints the wall time and one row per kind of
process: the pytest workers, studio servers, training jobs, CLI commands.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HOOK = '''
import atexit, os, resource, sys

def _log():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["SEQGEN_SUITE_CPU_LOG"], "a") as log:
        log.write("\\t".join([f"{usage.ru_utime + usage.ru_stime:.2f}", str(int("tensorflow" in sys.modules)),
                              str(int("gradio" in sys.modules)), " ".join(sys.argv)[:200].replace("\\t", " ")]) + "\\n")

atexit.register(_log)
'''


def kind(argv: str) -> str:
    """What a process was, from its command line."""
    if "seqgen/jobs.py" in argv:
        return "training job"
    if "app.py" in argv:
        return "studio server or its worker"
    if "seqgen/__main__.py" in argv:
        return f"cli {argv.split('__main__.py', 1)[1].split()[0]}"
    if "pytest" in argv:
        return "pytest, or a process it spawned (multiprocessing copies its argv)"
    if argv.strip() == "-c":
        return "xdist worker (python -c)"
    return argv.split()[0] if argv.split() else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest (default: the whole suite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
        log = Path(folder) / "cpu.tsv"
        env = dict(os.environ, SEQGEN_SUITE_CPU_LOG=str(log),
                   PYTHONPATH=os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")])))
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        rows = [line.split("\t") for line in log.read_text(encoding="utf-8").splitlines()] if log.exists() else []
    kinds: dict = collections.defaultdict(lambda: {"processes": 0, "cpu_s": 0.0, "with_tensorflow": 0, "with_gradio": 0})
    for cpu, tensorflow, gradio, argv in rows:
        row = kinds[kind(argv)]
        row["processes"] += 1
        row["cpu_s"] = round(row["cpu_s"] + float(cpu), 1)
        row["with_tensorflow"] += int(tensorflow)
        row["with_gradio"] += int(gradio)
    ordered = dict(sorted(kinds.items(), key=lambda item: -item[1]["cpu_s"]))
    summary = {"pytest_exit_code": result.returncode, "wall_s": round(wall, 1), "last_line": result.stdout.strip().splitlines()[-1:],
               "cpu_s": round(sum(row["cpu_s"] for row in ordered.values()), 1), "by_kind": ordered}
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"pytest exit {summary['pytest_exit_code']}, {summary['wall_s']} s wall, {summary['cpu_s']} s CPU logged")
        for name, row in ordered.items():
            print(f"{row['cpu_s']:8.1f} s  {row['processes']:4d} processes  tf {row['with_tensorflow']:3d}  gradio {row['with_gradio']:3d}  {name}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
