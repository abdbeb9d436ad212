"""The Settings menu: Shortcuts and Annotator. OK saves to the settings file at once; the window
applies what changed when told."""

from __future__ import annotations

from bondscope.services.settings import Settings, save_settings
from bondscope.ui.annotator import AnnotatorDialog
from bondscope.ui.jobs import Flow
from bondscope.ui.session import Session
from bondscope.ui.shortcuts import ShortcutsDialog, store_keys
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QMainWindow


class SettingsFlow(Flow):
    """Settings > Shortcuts and Annotator: the dialogs, then the settings file."""

    shortcuts_changed = Signal()  # the key bindings in `settings` changed: apply them
    annotator_changed = Signal(str)  # labels from now on are stored under this name

    def __init__(self, window: QMainWindow, session: Session, settings: Settings) -> None:
        super().__init__(window, session)
        self.settings = settings

    def edit_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.settings, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.set_shortcuts(dialog.keys()))
        dialog.open()
        return dialog

    def set_shortcuts(self, keys: dict[str, list[str]]) -> None:
        store_keys(self.settings, keys)
        save_settings(self.settings)
        self.shortcuts_changed.emit()

    def edit_annotator(self) -> AnnotatorDialog:
        dialog = AnnotatorDialog(self.session.annotator, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.set_annotator(dialog.name()))
        dialog.open()
        return dialog

    def set_annotator(self, name: str) -> None:
        """A new name is saved as the default annotator and announced; the same one is not."""
        if not name or name == self.session.annotator:
            return
        self.settings.annotator = name
        save_settings(self.settings)
        self.annotator_changed.emit(name)
