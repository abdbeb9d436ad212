"""Small builders for the main window: its first size, timers, docks, menus and toggles, so the
window's own module reads as what it holds and how that is wired."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget


def initial_size() -> QSize:
    """1440x860, shrunk to 95 % of a smaller screen so no dock starts off-screen.

    The offscreen platform reports an 800x600 screen; screenshots and tests keep the full size.
    """
    wanted = QSize(1440, 860)
    screen = QGuiApplication.primaryScreen()
    if screen is None or QGuiApplication.platformName() == "offscreen":
        return wanted
    available = screen.availableGeometry().size() * 0.95
    return wanted.boundedTo(available)


def timer(
    parent: QWidget, interval_ms: int, slot: Callable[[], Any], single_shot: bool = True
) -> QTimer:
    made = QTimer(parent)
    made.setSingleShot(single_shot)
    made.setInterval(interval_ms)
    made.timeout.connect(slot)
    return made


def dock(window: QMainWindow, title: str, name: str, widget: QWidget | None) -> QDockWidget:
    """A dock on the right; `name` keys its place in the saved layout."""
    made = QDockWidget(title, window)
    made.setObjectName(name)
    if widget is not None:
        made.setWidget(widget)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, made)
    return made


def add_menu(window: QMainWindow, title: str, items: tuple[tuple[Any, ...], ...]) -> list[QAction]:
    """A menu of (text, slot[, key]) actions, () for a separator; returns the actions."""
    menu = window.menuBar().addMenu(title)
    actions = []
    for item in items:
        if not item:
            menu.addSeparator()
            continue
        text, slot, *key = item
        action = QAction(text, window)
        if key:
            action.setShortcut(key[0])
        action.triggered.connect(slot)
        menu.addAction(action)
        actions.append(action)
    return actions


def add_toggle(menu: QMenu, text: str, checked: bool, slot: Callable[[bool], Any]) -> QAction:
    """A checkable action calling `slot(checked)` whenever it is toggled."""
    action = QAction(text, menu, checkable=True)
    action.setChecked(checked)
    action.toggled.connect(slot)
    menu.addAction(action)
    return action
