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
