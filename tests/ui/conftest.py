"""Qt tests run offscreen against real project files built from the bundled demo data."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any QApplication exists

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from bondscope.services.demo import ensure_demo_project
from bondscope.services.settings import load_settings
from bondscope.ui.main_window import MainWindow

ANNOTATOR = "tester"


@pytest.fixture(autouse=True)
def xdg_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings and default projects go to the test's folder, never the real home."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_project(tmp_path_factory.mktemp("demo") / "demo.bondscope")


@pytest.fixture
def project(demo_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the demo project (a real SQLite file) for each test."""
    path = tmp_path / "project.bondscope"
    shutil.copy(demo_template, path)
    return path


@pytest.fixture
def open_window(qtbot) -> Iterator:
    """Opens windows on a project like the app does; closes them (and their Store) at the end."""
    windows: list[MainWindow] = []

    def open_(path: Path, embeddings: bool = False) -> MainWindow:
        """`embeddings`: encode steps for the target picker (off by default: it costs a core)."""
        settings = load_settings()
        settings.target_embeddings = embeddings
        window = MainWindow(path, ANNOTATOR, settings)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        # The list's and the corpus's figures are computed in threads: start from them shown.
        qtbot.waitUntil(lambda: not window.background_busy(), timeout=30_000)
        return window

    yield open_
    for window in windows:
        window.close()
