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


def project_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports anywhere in it (at the top or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # from seqgen import cache
    return found & modules


def module_name(path: Path) -> str:
    return path.parent.name if path.stem == "__init__" else f"{path.parent.name}.{path.stem}"


def test_no_import_cycles():
    """Each module of seqgen/ and studio/ can be read without the ones that import it: no cycles, lazy imports included."""
    paths = {module_name(path): path for path in BACKEND + UI if path.parent != REPO_ROOT}
    graph = {name: project_imports(path, set(paths)) - {name} for name, path in paths.items()}
    cycles, done = [], set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycles.append(" -> ".join(trail[trail.index(name):] + [name]))
            return
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, trail + [name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_the_workers_import_every_module_whose_functions_they_run():
    """studio.app.WORKER_MODULES names every studio module that defines a ``*_in_worker`` function, so a worker has
    imported it (and Gradio) before it says ready, not while a class's first requests wait."""
    tree = ast.parse((REPO_ROOT / "studio" / "app.py").read_text(encoding="utf-8"))
    (listed,) = [ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "WORKER_MODULES"]
    defining = {f"studio.{path.stem}" for path in UI if path.parent.name == "studio"
                and re.search(r"^def [a-z]\w*_in_worker\(", path.read_text(encoding="utf-8"), flags=re.M)}
    assert defining == set(listed)
