"""seqgen.lockstep: concurrent generations of a process stepped together, each as it would be alone."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from seqgen import lockstep


@pytest.fixture
def together(monkeypatch):
    """A Lockstep for this test (the process's generations join it), and the batch sizes of its model calls."""
    monkeypatch.setattr(lockstep, "_LOCKSTEP", lockstep.Lockstep())
    return monkeypatch


def generate_at_once(requests: list[tuple]) -> list:
    """Run ``(sampler, kwargs)`` requests in threads started together; their results (or exceptions) in order."""
    results = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def one(index, sampler, kwargs):
        start.wait()
        try:
            results[index] = sampler.generate(**kwargs)
        except Exception as error:  # noqa: BLE001 - the test looks at it
            results[index] = error

    threads = [threading.Thread(target=one, args=(index, *request)) for index, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.parametrize("mode", ["stateful", "window"])
def test_requests_stepped_together_get_what_they_get_alone(music_bundle, lyrics_bundle, together, mode):
    music, lyrics = music_bundle.sampler, lyrics_bundle.sampler
    requests = [
        (music, dict(primer_tokens=music_bundle.seeds[0], length=30, rng_seed=1, mode=mode)),
        (music, dict(primer_tokens=music_bundle.seeds[1], length=12, rng_seed=2, variations=3, mode=mode)),
        (music, dict(primer_tokens=music_bundle.seeds[2], length=30, rng_seed=3, temperature=0.5, top_p=0.9,
                     repetition_penalty=1.3, mode=mode, explain=3)),
        (lyrics, dict(primer_tokens="let dance", length=40, rng_seed=4, mode=mode)),
    ]
    alone = []
    with together.context() as undo:
        undo.setattr(lockstep, "_LOCKSTEP", None)
        alone = [sampler.generate(**kwargs) for sampler, kwargs in requests]
    calls = []
    original = type(music).step

    def counting_step(self, state, ids):
        calls.append(len(ids))
        return original(self, state, ids)

    together.setattr(type(music), "step", counting_step)
    real_advance, loop = lockstep.advance, lockstep._LOCKSTEP

    boarded = threading.Event()

    def all_aboard(runs):  # no step until every request has joined (the threads start when they start)
        if not boarded.is_set() and len(runs) + len(loop._arrivals) < len(requests):
            time.sleep(0.005)
            return
        boarded.set()
        real_advance(runs)

    together.setattr(lockstep, "advance", all_aboard)
    at_once = generate_at_once(requests)
    for single, joint in zip(alone, at_once):
        assert joint.tokens == single.tokens
        if single.steps is not None:  # the same candidates; their probabilities to float32 rounding
            for single_row, joint_row in zip(single.steps, joint.steps):
                for one, other in zip(single_row, joint_row):
                    assert [name for name, _ in one["candidates"]] == [name for name, _ in other["candidates"]]
                    assert [p for _, p in one["candidates"]] == pytest.approx([p for _, p in other["candidates"]], abs=1e-5)
    if mode == "stateful":
        assert max(calls) == 5  # the music requests' five rows in one model call


def test_an_on_token_error_stops_its_own_request_only(music_bundle, together):
    sampler = music_bundle.sampler

    def stop(variation, step, token):
        if step == 5:
            raise RuntimeError("the page was closed")

    good = dict(primer_tokens=music_bundle.seeds[0], length=20, rng_seed=1)
    stopped, finished = generate_at_once([(sampler, {**good, "on_token": stop}), (sampler, good)])
    assert isinstance(stopped, RuntimeError) and "page was closed" in str(stopped)
    assert len(finished.tokens[0]) == 20


def test_on_token_runs_in_the_callers_context(music_bundle, together):
    """A studio worker's on_token emits to its own request through a context variable: it must see the caller's."""
    request = contextvars.ContextVar("request")
    seen = {}

    def generate(name):
        request.set(name)
        music_bundle.sampler.generate(music_bundle.seeds[0], 5, rng_seed=0,
                                      on_token=lambda variation, step, token: seen.setdefault(name, set()).add(request.get()))

    threads = [threading.Thread(target=generate, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen == {"a": {"a"}, "b": {"b"}, "c": {"c"}}


def test_alone_a_run_is_stepped_in_the_calling_thread(music_bundle, monkeypatch):
    monkeypatch.setattr(lockstep, "_LOCKSTEP", None)
    threads = set()
    music_bundle.sampler.generate(music_bundle.seeds[0], 5, rng_seed=0,
                                  on_token=lambda *args: threads.add(threading.current_thread().name))
    assert threads == {threading.current_thread().name}
