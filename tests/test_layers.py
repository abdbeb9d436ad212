"""The layering rules of docs/architecture.md, checked on the source."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = {"PySide6", "pyqtgraph", "shiboken6"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_ui_package_imports_qt():
    offenders = []
    for folder in ("desktop", "plugins", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.is_relative_to(ROOT / "desktop" / "ui"):
                continue
            if {name.split(".")[0] for name in imported_modules(path)} & QT_MODULES:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_plugins_do_not_reach_into_services_or_ui():
    for path in (ROOT / "plugins").rglob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith(("bondscope.services", "bondscope.ui", "bondscope.cli")), (
                path,
                name,
            )


def test_every_code_folder_is_packaged():
    """An editable install finds any subfolder; a wheel only ships the packages listed."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    folders = {ROOT / folder: name for name, folder in config["package-dir"].items()}
    listed = set(config["packages"])
    for folder, package in folders.items():
        for init in folder.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(folder).parts
            name = ".".join((package, *relative)) if relative else package
            if name.startswith("bondscope.resources."):
                continue  # data folders travel as package data
            assert name in listed, f"{name} is missing from [tool.setuptools] packages"


def module_imports(path: Path, package: str) -> set[str]:
    """The modules of `package` that `path` imports anywhere, function-level imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith(package + ".")}


def test_no_import_cycle_among_the_models_modules():
    """A function-level import hid encoder <-> export; the shared names live in models/weights."""
    modules = {
        f"bondscope.models.{path.stem}": path
        for path in (ROOT / "models").glob("*.py")
        if path.stem != "__init__"
    }
    graph = {
        name: module_imports(path, "bondscope.models") & modules.keys()
        for name, path in modules.items()
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            if nxt == target or reaches(nxt, target, seen | {nxt}):
                return True
        return False

    cycles = sorted(name for name in graph if reaches(name, name, set()))
    assert cycles == []


@pytest.mark.parametrize("first", ["bondscope.models.export", "bondscope.models.encoder"])
def test_encoder_and_export_import_in_either_order(first):
    """Each side of the former cycle imports first in a fresh interpreter."""
    other = "bondscope.models.encoder" if first.endswith("export") else "bondscope.models.export"
    code = f"import sys, {first}, {other}; print(sorted(m for m in sys.modules if 'torch' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"  # the run time still never loads torch


def python_files(folder: str) -> list[Path]:
    return sorted(path for path in (ROOT / folder).rglob("*.py") if "__pycache__" not in path.parts)


def test_services_never_import_the_ui_or_the_cli():
    """The app and the CLI call the same services; a service reaching up would tie it to one."""
    offenders = [
        (str(path.relative_to(ROOT)), name)
        for path in python_files("desktop/services")
        for name in imported_modules(path)
        if name.startswith(("bondscope.ui", "bondscope.cli"))
    ]
    assert offenders == []


def test_the_ui_never_imports_the_models():
    """The classifier runs behind services (prelabeling, geometry, ...), never in a widget."""
    offenders = [
        (str(path.relative_to(ROOT)), name)
        for path in python_files("desktop/ui")
        for name in imported_modules(path)
        if name == "bondscope.models" or name.startswith("bondscope.models.")
    ]
    assert offenders == []


SQL_CALL = re.compile(r"\bexecute(many|script)?\(")


def test_no_sql_under_the_ui():
    """Services own every query: no `execute(`, no sqlite3, no store connection in a widget."""
    offenders = []
    for path in python_files("desktop/ui"):
        name = str(path.relative_to(ROOT))
        source = path.read_text("utf-8")
        offenders += [(name, "execute(") for _ in SQL_CALL.finditer(source)]
        offenders += [(name, "import sqlite3") for m in imported_modules(path) if m == "sqlite3"]
        offenders += [
            (name, ".conn")
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Attribute) and node.attr == "conn"
        ]
    assert offenders == []


def test_no_ui_module_is_over_500_lines():
    """A widget module that grows past this is doing a service's or another widget's job."""
    long = {
        str(path.relative_to(ROOT)): lines
        for path in python_files("desktop/ui")
        if (lines := len(path.read_text("utf-8").splitlines())) > 500
    }
    assert long == {}
