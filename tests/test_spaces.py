"""Deploying: the Space's front matter, persistent storage (``/data``) and the login for public links.

The auth test starts its own small studio (no models) with ``SEQGEN_AUTH``;
a temporary folder stands in for ``/data``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from packaging.requirements import Requirement

from conftest import REPO_ROOT
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


def test_auth_credentials_are_checked():
    from studio.options import credentials, parse_args

    assert credentials("teacher:s3cret:x") == ("teacher", "s3cret:x") and credentials(None) is None
    for bad in ("teacher", ":s3cret", "teacher:"):
        with pytest.raises(SystemExit, match="must be user:password"):
            credentials(bad)
    assert parse_args(["--auth", "a:b"]).auth == "a:b"


def test_with_auth_the_api_refuses_calls_without_the_login(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    port, log = free_port(), tmp_path / "server.log"
    env = dict(os.environ, SEQGEN_AUTH="teacher:s3cret", SEQGEN_CHECKPOINTS=str(tmp_path / "none"),
               SEQGEN_STUDIO_DIR=str(tmp_path / "studio"), GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONWARNINGS="ignore")
    env.pop("GRADIO_SERVER_NAME", None)
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO_ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                refused = httpx.post(f"{url}/gradio_api/call/models", json={"data": [None]}, timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert refused.status_code == 401
        assert httpx.get(f"{url}/gradio_api/info", timeout=5).status_code == 401
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("teacher", "wrong"), verbose=False)
        table, card, *_ = Client(url, auth=("teacher", "s3cret"), verbose=False).predict(api_name="/models")
        assert "No models yet" in card
    finally:
        process.terminate()
        process.wait(timeout=20)
