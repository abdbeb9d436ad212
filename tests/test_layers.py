"""The layering rules of docs/architecture.md, checked on the source."""

import ast
from pathlib import Path

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
