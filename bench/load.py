"""A simulated class against the real studio: N students, each 3 melodies and 3 verses, idle and while a model trains.

    python bench/load.py --students 16 --json

Starts ``python app.py`` on 127.0.0.1 (a free port, a temporary studio
folder, the shipped models), then for each scenario runs one thread per
student with its own ``gradio_client.Client`` calling ``/generate_melody``
and ``/complete_lyrics`` with the studio's defaults, alternating.  Every
student opens the page before the clock starts (the client fetches the page's
config and runs its load event, ``/open_page``, as a browser does): the class
presses Generate together on pages already open.  In the
"training" scenario one more client runs ``/train`` (the ``embed`` preset on
``songs-poems``) for the whole scenario.  With ``--describe`` each melody is
followed by ``/describe_melody`` (sheet music, piano roll, quality report),
as the page chains it.  Prints one JSON line: per scenario
and endpoint the call count, p50 and p95 wall seconds and the errors, and the
share of CPU time the virtual machine's host took for others meanwhile
(``steal_share``: a run with much of it was slowed from outside).  With
``--gc`` the studio's processes also log their full garbage collections
(generation 2, with the GIL held: every thread of the process waits), and each
scenario reports those of the server and of the workers: count, total and
longest milliseconds.
Loopback only; every call has a timeout and the run a deadline.  The clients
pass ``ssl_verify=False`` (loopback HTTP has no TLS): otherwise httpx builds a
CA-bundle SSL context for every request, about 85 ms of the students' CPU per
call, taken from the same two cores the server runs on.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CALL_TIMEOUT_S = 120
MELODY = {"api_name": "/generate_melody"}  # every other input: the studio's defaults
LYRICS = {"api_name": "/complete_lyrics"}
DESCRIBE = {"api_name": "/describe_melody"}  # what the page runs after each melody: score, piano roll, report
OPEN_PAGE = {"api_name": "/open_page"}  # the page's load event (refreshes the model lists), as a browser runs it
TRAIN = dict(corpus="songs-poems", kind="lyrics", preset="embed", epochs=50, max_windows=20000, max_minutes=10,
             api_name="/train")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# With --gc: a sitecustomize module on the studio's PYTHONPATH (the server and its spawned workers import it at start).
GC_LOGGER = r'''import gc, os, time

_folder, _started = os.path.dirname(os.path.abspath(__file__)), {}


def _log(phase, info):  # each full collection: when it ended, and how long it took (ms), in gc-<pid>.log beside this file
    if info["generation"] == 2:
        if phase == "start":
            _started["at"] = time.perf_counter()
        else:
            with open(os.path.join(_folder, f"gc-{os.getpid()}.log"), "a") as log:
                log.write(f"{time.time()} {1000 * (time.perf_counter() - _started['at'])}\n")


gc.callbacks.append(_log)
'''


def start_studio(root: Path, log_gc: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, SEQGEN_STUDIO_DIR=str(root / "studio"), GRADIO_ANALYTICS_ENABLED="False")
    if log_gc:
        (root / "sitecustomize.py").write_text(GC_LOGGER)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    log = open(root / "studio.log", "w")
    process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the studio exited: {(root / 'studio.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/gradio_api/info", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("the studio did not start in 120 s")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))], 3)


def connect(url: str):
    """A student's client with the page open: it fetched the page's config and ran the page's load event."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False, ssl_verify=False)
    client.predict(api_name=OPEN_PAGE["api_name"])
    return client


def student(client, calls: int, results: dict, lock: threading.Lock, describe: bool) -> None:
    for number in range(calls):
        endpoints = [MELODY, DESCRIBE] if describe and number % 2 == 0 else [MELODY] if number % 2 == 0 else [LYRICS]
        for endpoint in endpoints:
            started = time.perf_counter()
            try:
                client.submit(**endpoint).result(timeout=CALL_TIMEOUT_S)
                outcome = None
            except Exception as error:  # noqa: BLE001 - counted, the class goes on
                outcome = f"{type(error).__name__}: {str(error)[:120]}"
            seconds = time.perf_counter() - started
            with lock:
                entry = results.setdefault(endpoint["api_name"], {"seconds": [], "errors": []})
                (entry["errors"].append(outcome) if outcome else entry["seconds"].append(seconds))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its finished children, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def worker_cpu_seconds(server_pid: int) -> dict[int, float]:
    """CPU seconds of each generation worker: the server's live child processes other than a training job."""
    children = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    seconds = {}
    for pid in children:
        try:
            if b"seqgen.jobs" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                seconds[pid] = cpu_seconds(pid)
        except FileNotFoundError:  # it just ended
            pass
    return seconds


def machine_times() -> list[int]:
    """The machine's CPU time counters (/proc/stat, Linux): user, nice, system, idle, iowait, irq, softirq, steal."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def steal_share(before: list[int], after: list[int]) -> float:
    """The share of the machine's CPU time its host gave to other machines between two readings (a virtual
    machine's "steal"): runs with a large share were slowed from outside and do not compare."""
    spent = [later - earlier for earlier, later in zip(before, after)]
    return round(spent[7] / max(sum(spent), 1), 3)


def wait_until_workers_rest(server_pid: int, timeout_s: float = 90) -> None:
    """Wait until the generation workers use under 5 % of a core (they have loaded their models), at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    before = sum(worker_cpu_seconds(server_pid).values())
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = sum(worker_cpu_seconds(server_pid).values())
        if now - before < 0.05:
            return
        before = now


def full_collections(folder: Path, pids: list[int], start: float, end: float) -> dict:
    """The full garbage collections that processes ``pids`` logged (``--gc``) between two ``time.time()`` readings."""
    pauses = []
    for pid in pids:
        log = folder / f"gc-{pid}.log"
        lines = log.read_text().split("\n") if log.exists() else []
        pauses += [float(ms) for at, ms in (line.split() for line in lines if line) if start <= float(at) <= end]
    return {"count": len(pauses), "total_ms": round(sum(pauses), 1), "longest_ms": round(max(pauses, default=0.0), 1)}


def scenario(url: str, students: int, calls: int, training: bool, server_pid: int, describe: bool = False,
             gc_folder: Path | None = None) -> dict:
    trainer = None
    if training:
        trainer = connect(url).submit(**TRAIN)
        time.sleep(15)  # let the run get past reading the corpus and into its epochs
    # The class has the page open before anyone presses Generate: connecting is not part of the timed calls.
    clients = [connect(url) for _ in range(students)]
    results, lock = {}, threading.Lock()
    cpu_before, client_cpu_before, machine_before = cpu_seconds(server_pid), time.process_time(), machine_times()
    workers_before = worker_cpu_seconds(server_pid)
    threads = [threading.Thread(target=student, args=(client, calls, results, lock, describe)) for client in clients]
    started, started_at = time.perf_counter(), time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=CALL_TIMEOUT_S * calls)
    wall, ended_at = time.perf_counter() - started, time.time()
    server_cpu, client_cpu = cpu_seconds(server_pid) - cpu_before, time.process_time() - client_cpu_before
    stolen = steal_share(machine_before, machine_times())
    workers_cpu = sum(seconds - workers_before.get(pid, 0.0) for pid, seconds in worker_cpu_seconds(server_pid).items())
    training_status = None
    if trainer is not None:
        outputs = trainer.outputs()
        training_status = outputs[-1][0].splitlines()[0] if outputs else f"no output ({trainer.status().code})"
        trainer.cancel()
    done = sum(len(entry["seconds"]) for entry in results.values())
    # CPU per answered call of the server and of its generation workers (studio.pool); a training job is
    # another process and is not counted.
    summary = {"wall_s": round(wall, 2), "server_cpu_s": round(server_cpu, 2), "workers_cpu_s": round(workers_cpu, 2),
               "server_cpu_per_call_ms": round(1000 * server_cpu / max(done, 1), 1),
               "workers_cpu_per_call_ms": round(1000 * workers_cpu / max(done, 1), 1),
               # The students' gradio_client threads share the machine's cores with the server.
               "client_cpu_s": round(client_cpu, 2), "steal_share": stolen}
    if training_status is not None:
        summary["training_status"] = training_status  # the run's progress line when the class finished
    for name, entry in results.items():
        summary[name] = {"calls": len(entry["seconds"]) + len(entry["errors"]), "p50_s": percentile(entry["seconds"], 0.5),
                         "p95_s": percentile(entry["seconds"], 0.95), "errors": len(entry["errors"]),
                         "first_error": entry["errors"][0] if entry["errors"] else None,
                         "median_s": round(statistics.median(entry["seconds"]), 3) if entry["seconds"] else None}
    if gc_folder is not None:
        workers = list(worker_cpu_seconds(server_pid))
        summary["full_collections"] = {"server": full_collections(gc_folder, [server_pid], started_at, ended_at),
                                       "workers": full_collections(gc_folder, workers, started_at, ended_at)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=16)
    parser.add_argument("--calls", type=int, default=6, help="calls per student, alternating melody and verse")
    parser.add_argument("--skip-training", action="store_true", help="only the idle scenario")
    parser.add_argument("--describe", action="store_true",
                        help="after each melody also call /describe_melody, as the page does (melody latency still ends at the audio)")
    parser.add_argument("--gc", action="store_true", help="also report the server's and the workers' full garbage collections")
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default prints it indented)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seqgen-load-") as folder:
        process, url = start_studio(Path(folder), args.gc)
        gc_folder = Path(folder) if args.gc else None
        try:
            scenario(url, 1, 2, training=False, server_pid=process.pid)  # warm-up: the models load once
            wait_until_workers_rest(process.pid)  # every worker has loaded its models and SoundFont
            report = {"machine": f"{os.cpu_count()} CPU cores", "students": args.students, "calls_per_student": args.calls,
                      "describe": args.describe,
                      "idle": scenario(url, args.students, args.calls, False, process.pid, args.describe, gc_folder)}
            if not args.skip_training:
                report["training"] = scenario(url, args.students, args.calls, True, process.pid, args.describe, gc_folder)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps(report) if args.json else json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
