"""The architecture's promises, checked on the source: short modules, one owner of the bundle format, a UI-free backend."""

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT

BACKEND = sorted((REPO_ROOT / "seqgen").glob("*.py"))
UI = sorted((REPO_ROOT / "studio").glob("*.py")) + [REPO_ROOT / "app.py"]
BUNDLE_FILES = re.compile(r"(config|vocab|history|seeds|stats|quality|sampling)\.json|model\.keras|corpus\.npy")


@pytest.mark.parametrize("path", BACKEND, ids=lambda path: path.name)
def test_backend_modules_stay_short(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500


@pytest.mark.parametrize("path", BACKEND + UI, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_only_the_bundle_module_names_bundle_files(path):
    if path.name == "bundle.py" and path.parent.name == "seqgen":
        assert BUNDLE_FILES.search(path.read_text(encoding="utf-8"))
        return
    named = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if BUNDLE_FILES.search(line)]
    assert named == []


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", BACKEND, ids=lambda path: path.name)
def test_the_backend_never_imports_the_ui(path):
    assert not imported_modules(path) & {"gradio", "studio", "app"}


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names} | {
        node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}


@pytest.mark.parametrize("name", ["presets", "sampling", "numpy_lstm", "primers", "sample", "bundle", "card", "files",
                                  "windows", "train", "generate", "cli"])
def test_modules_that_need_no_tensorflow_import_it_only_where_used(name):
    assert not top_level_imports(REPO_ROOT / "seqgen" / f"{name}.py") & {"tensorflow", "keras"}
