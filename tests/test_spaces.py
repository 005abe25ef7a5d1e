"""Deploying: the Space's front matter, persistent storage (``/data``) and the login for public links.

Two tests share a small studio started as a Space runs it (``SEQGEN_AUTH``,
two generation workers, no models): the login, then the console and a
SIGTERM stop.  A temporary folder stands in for ``/data``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from conftest import REPO_ROOT, heavy_modules_after
from test_app import free_port


def test_the_front_matter_matches_requirements_and_names_the_app():
    from huggingface_hub import SpaceHardware
    from huggingface_hub.repocard import metadata_load

    card = metadata_load(REPO_ROOT / "README.md")
    requirements = [Requirement(line.split("#")[0]) for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    gradio = next(requirement for requirement in requirements if requirement.name == "gradio")
    assert card["sdk"] == "gradio" and gradio.specifier.contains(card["sdk_version"])
    assert (REPO_ROOT / card["app_file"]).is_file()
    assert card["suggested_hardware"] in {hardware.value for hardware in SpaceHardware}
    assert str(card["python_version"]) == "3.11"


# --- persistent storage ---------------------------------------------------------------------


@pytest.fixture
def spaces_env(monkeypatch, tmp_path):
    """No studio folder or cache chosen by the environment, as on a Space; the working folder is tmp_path/app."""
    monkeypatch.delenv("SEQGEN_STUDIO_DIR", raising=False)
    monkeypatch.delenv("SEQGEN_CACHE", raising=False)  # restored after the test, also when set by the code under test
    (tmp_path / "app").mkdir()
    monkeypatch.chdir(tmp_path / "app")
    return monkeypatch


def test_with_persistent_storage_models_and_the_cache_live_there(spaces_env, tmp_path):
    from seqgen.cache import default_cache_dir
    from studio import common, models

    storage = tmp_path / "data"
    storage.mkdir()
    spaces_env.setenv(common.PERSISTENT_ENV, str(storage))
    assert common.use_persistent_storage() == storage
    assert common.studio_models_dir() == storage / "seqgen" / "studio" / "models"
    assert common.studio_studies_dir() == storage / "seqgen" / "studio" / "studies"
    assert default_cache_dir() == storage / "seqgen" / "cache"  # what the studio and its training jobs parse into
    note = models.storage_markdown()
    assert str(storage / "seqgen" / "studio" / "models") in note and "survive restarts" in note


def test_without_persistent_storage_nothing_moves(spaces_env, tmp_path):
    from studio import common, models

    (tmp_path / "not-a-folder").write_text("")
    for missing in (tmp_path / "absent", tmp_path / "not-a-folder"):
        spaces_env.setenv(common.PERSISTENT_ENV, str(missing))
        assert common.use_persistent_storage() is None and "SEQGEN_CACHE" not in os.environ
        assert common.studio_models_dir() == tmp_path / "app" / "runs" / "studio" / "models"
        assert "lost when the Space restarts" in models.storage_markdown()


def test_an_explicit_studio_folder_wins(spaces_env, tmp_path):
    from studio import common, models

    (tmp_path / "data").mkdir()
    spaces_env.setenv(common.PERSISTENT_ENV, str(tmp_path / "data"))
    spaces_env.setenv("SEQGEN_STUDIO_DIR", str(tmp_path / "mine"))
    spaces_env.setenv("SEQGEN_CACHE", str(tmp_path / "cache"))
    common.use_persistent_storage()
    assert common.studio_dir() == tmp_path / "mine" and os.environ["SEQGEN_CACHE"] == str(tmp_path / "cache")
    assert "survive restarts" not in models.storage_markdown()  # there is persistent storage, but the models are elsewhere


# --- login ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["app.py", "-m studio"])
def test_help_answers_before_gradio_is_imported(entry):
    """``seqgen studio --help`` (``python -m studio``) and ``python app.py --help`` print the options without
    importing Gradio or building the page (seconds)."""
    run = "runpy.run_path('app.py', run_name='__main__')" if entry == "app.py" else "runpy.run_module('studio', run_name='__main__')"
    result, heavy = heavy_modules_after(run, ["x", "--help"])
    assert "--max-file-size" in result.stdout and heavy == []


def test_auth_credentials_are_checked():
    from studio.options import credentials, parse_args

    assert credentials("teacher:s3cret:x") == ("teacher", "s3cret:x") and credentials(None) is None
    for bad in ("teacher", ":s3cret", "teacher:"):
        with pytest.raises(SystemExit, match="must be user:password"):
            credentials(bad)
    assert parse_args(["--auth", "a:b"]).auth == "a:b"


@dataclass
class Launched:
    url: str
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """``python app.py`` with a login and two generation workers (no models: they start quickly), as a Space runs it,
    with Python's warnings on; stopped with SIGTERM by the last test."""
    root = tmp_path_factory.mktemp("launched")
    port, log = free_port(), root / "server.log"
    env = dict(os.environ, SEQGEN_AUTH="teacher:s3cret", SEQGEN_CHECKPOINTS=str(root / "none"),
               SEQGEN_STUDIO_DIR=str(root / "studio"), GRADIO_TEMP_DIR=str(root / "gradio"),
               GRADIO_ANALYTICS_ENABLED="False", SEQGEN_GENERATION_WORKERS="2", PYTHONUNBUFFERED="1")
    for name in ("GRADIO_SERVER_NAME", "PYTHONWARNINGS"):
        env.pop(name, None)
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO_ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        yield Launched(f"http://127.0.0.1:{port}", process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def wait_for(condition, process: subprocess.Popen, log: Path, timeout_s: float = 120):
    """Poll ``condition()`` until it returns something other than None (the server must stay up meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while (value := condition()) is None:
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    return value


def test_with_auth_the_api_refuses_calls_without_the_login(launched):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    def post():
        try:
            return httpx.post(f"{launched.url}/gradio_api/call/models", json={"data": [None]}, timeout=5)
        except httpx.HTTPError:
            return None

    refused = wait_for(post, launched.process, launched.log)
    assert refused.status_code == 401
    assert httpx.get(f"{launched.url}/gradio_api/info", timeout=5).status_code == 401
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(launched.url, verbose=False)
    with pytest.raises(ValueError, match="Could not login"):
        Client(launched.url, auth=("teacher", "wrong"), verbose=False)
    table, card, *_ = Client(launched.url, auth=("teacher", "s3cret"), verbose=False).predict(api_name="/models")
    assert "No models yet" in card


def test_the_console_says_one_line_each_and_sigterm_stops_everything_cleanly(launched):
    """No TensorFlow chatter, the examples folder once, one line per generation worker; on SIGTERM the server and
    its workers end with status 0 and multiprocessing's resource tracker finds nothing leaked."""
    ready = lambda: (lines if len(lines := [line for line in launched.log.read_text().splitlines()  # noqa: E731
                                             if line.startswith("seqgen: generation worker ")]) == 2 else None)
    assert all("ready in" in line and "(no default models)" in line for line in wait_for(ready, launched.process, launched.log))
    launched.process.terminate()
    assert launched.process.wait(timeout=30) == 0
    time.sleep(1)  # the resource tracker, the last to go, reports leaks as it ends
    console = launched.log.read_text()
    assert console.count("Examples are cached at their first use in") == 1 and "Will cache examples" not in console
    for noise in ("leaked semaphore", "oneDNN", "absl", "cpu_feature_guard", "Traceback"):
        assert noise not in console, console
