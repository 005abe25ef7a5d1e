"""Packaging: the wheel ``pip install .`` builds, the ``seqgen`` command, and the pinned requirements.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation`` with
the environment's setuptools, so nothing is downloaded) in a git repository
holding a copy of the sources, as ``pip install .`` builds in a clone: what
the build leaves behind (``build/``, ``*.egg-info``) must be ignored by git.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from packaging.requirements import Requirement

from conftest import REPO_ROOT, run_seqgen

SOURCES = ("pyproject.toml", "README.md", ".gitignore", "seqgen", "studio", "checkpoints")


def requirement_lines(path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """The built wheel (open) and what ``git status --porcelain`` said of the source clone after the build."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, source / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-C", str(source)]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "sources"]):
        subprocess.run(git + command, check=True, capture_output=True)
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "-q", "-w", str(dist), str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    status = subprocess.run(git + ["status", "--porcelain", "--ignored=no"], capture_output=True, text=True, check=True)
    (built,) = dist.glob("seqgen-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive, status.stdout


@pytest.fixture(scope="module")
def wheel(build) -> zipfile.ZipFile:
    return build[0]


def test_building_leaves_the_clone_clean(build):
    """``pip install .`` builds in the source folder: its build/ and egg-info are ignored, so git status stays clean."""
    assert build[1] == ""


def test_the_wheel_holds_both_packages_and_the_shipped_models(wheel):
    from seqgen import __version__

    names = set(wheel.namelist())
    assert {"seqgen/cli.py", "seqgen/__main__.py", "studio/app.py", "studio/__main__.py", "studio/api.py"} <= names
    assert {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "seqgen").glob("*.py")} <= names
    for bundle in ("bach-chorales", "songs-poems-embed"):  # the studio's default models: generation works after pip install
        assert {f"seqgen/checkpoints/{bundle}/{name}" for name in ("config.json", "model.keras", "vocab.json")} <= names
    assert not {name.split("/")[0] for name in names} - {"seqgen", "studio", f"seqgen-{__version__}.dist-info"}  # no tests/, bench/


def test_the_wheel_declares_the_command_and_the_dependencies(wheel):
    info = next(name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt"))
    assert "seqgen = seqgen.cli:main" in wheel.read(info).decode()
    metadata = email.message_from_bytes(wheel.read(info.replace("entry_points.txt", "METADATA")))
    required = {str(Requirement(line)) for line in metadata.get_all("Requires-Dist")}
    declared = {str(Requirement(line)) for line in requirement_lines(REPO_ROOT / "requirements.txt")}
    gradio = next(line for line in declared if line.startswith("gradio"))
    assert declared - {gradio} <= required  # every runtime dependency; gradio only with the extra
    assert f'{gradio}; extra == "studio"' in required and metadata["Provides-Extra"] == "studio"


def test_requirements_txt_and_pyproject_agree():
    project = pyproject()["project"]
    packaged = {str(Requirement(line)) for line in project["dependencies"] + project["optional-dependencies"]["studio"]}
    assert packaged == {str(Requirement(line)) for line in requirement_lines(REPO_ROOT / "requirements.txt")}


@pytest.mark.parametrize("path", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_has_an_upper_bound(path):
    for line in requirement_lines(REPO_ROOT / path):
        operators = {spec.operator for spec in Requirement(line).specifier}
        pinned = any(spec.operator == "==" and spec.version.endswith(".*") for spec in Requirement(line).specifier)
        assert pinned or {"<", "<=", "~="} & operators, f"{path}: {line} has no upper bound"


def test_the_command_prints_its_version_and_offers_the_studio(tmp_path):
    from seqgen import __version__

    version = run_seqgen("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"seqgen {__version__}"
    help_text = run_seqgen("--help", cwd=tmp_path).stdout
    for command in ("corpora", "explore", "presets", "summary", "train", "study", "generate", "evaluate", "studio"):
        assert command in help_text
    studio = run_seqgen("studio", "--help", cwd=tmp_path, env={"SEQGEN_CHECKPOINTS": str(tmp_path)})
    assert studio.returncode == 0 and "--auth USER:PASSWORD" in studio.stdout and "--max-file-size" in studio.stdout
    wrong = run_seqgen("corpora", "--port", "1", cwd=tmp_path)
    assert wrong.returncode == 2 and "unrecognized arguments: --port 1" in wrong.stderr
