"""The studio's API through gradio_client: no-argument calls, the typed /melody and /lyrics, the example in docs/api.md.

Uses the session's studio server (tests/test_app.py): the shipped models are
the defaults, ``debug-music`` and ``debug-lyrics`` keep the other calls quick.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_app import REPO_ROOT, app_error, client, studio  # noqa: F401 - the shared server fixtures

SAMPLING = ["temperature", "top_k", "top_p", "repetition_penalty"]
# Each typed endpoint, its tab's event, and the parameters both have with the same meaning.
TWINS = {"/melody": ("/generate_melody", ["length", "variations", "tempo", "instrument", *SAMPLING]),
         "/lyrics": ("/complete_lyrics", ["seed_line", "length", "stop_at_verse_end", *SAMPLING])}


def test_no_endpoint_needs_an_argument(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/melody", "/lyrics"} <= set(endpoints)
    for name, endpoint in endpoints.items():
        required = [parameter["parameter_name"] for parameter in endpoint["parameters"] if not parameter["parameter_has_default"]]
        assert required == [], f"{name} needs {required}"


def test_the_typed_endpoints_default_to_the_tabs_values(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for typed, (event, names) in TWINS.items():
        defaults = [{parameter["parameter_name"]: parameter["parameter_default"] for parameter in endpoints[name]["parameters"]}
                    for name in (typed, event)]
        assert [defaults[0][name] for name in names] == [defaults[1][name] for name in names], typed


def test_the_tabs_events_with_no_arguments_give_a_melody_and_a_verse(studio):
    from seqgen.generate import DEFAULT_SEED_LINE
    from seqgen.music import display_token

    client = studio.client()
    audio, *_, files, tokens, summary = client.predict(api_name="/generate_melody")
    params = json.loads(Path(next(path for path in files if path.endswith(".json"))).read_text(encoding="utf-8"))
    # The default model writes a whole chorale, from its start until it ends it (at most its cap).
    assert params["bundle"] == "bach-chorales" and params["until_end"] and params["primer"] == ["BOS_None"]
    assert isinstance(params["ended"], bool) and tokens.endswith(" ".join(map(display_token, params["tokens"])))
    assert isinstance(params["rng_seed"], int) and f"RNG seed `{params['rng_seed']}`" in summary
    completion, plain, quality, dropped = client.predict(api_name="/complete_lyrics")
    assert plain.startswith(DEFAULT_SEED_LINE) and len(plain) == len(DEFAULT_SEED_LINE) + 400
    assert re.search(r"RNG seed `\d+`", dropped) and quality["words"] > 0


def test_melody_endpoint_returns_tokens_files_settings_and_quality(client):
    result = client.predict(model="debug-music", length=24, variations=2, sheet_music=True, api_name="/melody")
    assert result["model"] == "debug-music" and len(result["melodies"]) == 2
    settings = result["settings"]
    assert isinstance(settings["rng_seed"], int) and settings["length"] == 24 and settings["primer"] == result["primer"]
    for number, melody in enumerate(result["melodies"], start=1):
        files = melody["files"]
        assert [Path(files[key]).name for key in ("midi", "wav", "params", "musicxml")] == [
            f"melody-{number}.mid", f"melody-{number}.wav", f"melody-{number}.json", f"melody-{number}.musicxml"]
        assert all(Path(path).is_file() for path in files.values())  # downloaded by the client
        params = json.loads(Path(files["params"]).read_text(encoding="utf-8"))
        assert params["tokens"] == melody["tokens"] and params["rng_seed"] == settings["rng_seed"]
        assert melody["quality"] == params["quality"] and melody["quality"]["tokens"] == 24
    again = client.predict(model="debug-music", length=24, variations=2, rng_seed=settings["rng_seed"], api_name="/melody")
    assert [melody["tokens"] for melody in again["melodies"]] == [melody["tokens"] for melody in result["melodies"]]
    assert again["melodies"][0]["files"]["musicxml"] is None  # only when asked for


def test_lyrics_endpoint_returns_text_settings_and_quality(client, lyrics_bundle):
    from seqgen.quality import lyrics_report

    result = client.predict(model="debug-lyrics", seed_line="Let's dance \u266a", length=60, rng_seed=5, api_name="/lyrics")
    assert result["model"] == "debug-lyrics" and result["seed"] == "lets dance "
    assert len(result["text"]) == 60 and result["dropped"] == {"'": 1, "\u266a": 1}
    assert result["settings"]["rng_seed"] == 5 and result["settings"]["temperature"] == 0.8
    assert result["quality"] == lyrics_report(result["text"], set(lyrics_bundle.stats["words"]))


def test_typed_endpoints_report_bad_input(client):
    assert "'debug-lyrics' not found; music models available" in app_error(client.predict, model="debug-lyrics", api_name="/melody")
    assert "At most 4 variations" in app_error(client.predict, model="debug-music", variations=9, api_name="/melody")
    assert "Unknown generation mode 'fast'" in app_error(client.predict, model="debug-music", mode="fast", api_name="/melody")
    assert "Bundle '../x' not found" in app_error(client.predict, model="../x", api_name="/lyrics")
    assert "The seed line is empty" in app_error(client.predict, model="debug-lyrics", seed_line=" ", api_name="/lyrics")


def test_the_docs_api_example_runs(studio, capsys):
    docs = (REPO_ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = docs.split("\n## The studio's API through gradio_client\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert 'Client("http://127.0.0.1:7860/")' in code
    namespace: dict = {}
    exec(compile(code.replace("http://127.0.0.1:7860/", studio.url), "docs/api.md", "exec"), namespace)  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"bach-chorales {namespace['melody']['settings']['rng_seed']} ") for line in printed)
    assert Path(namespace["first"]["files"]["midi"]).is_file() and Path(namespace["first"]["files"]["wav"]).is_file()
    assert namespace["verse"]["model"] == "songs-poems-embed" and len(namespace["verse"]["text"]) == 400
