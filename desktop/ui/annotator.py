"""Who is labeling: every label is stored under this name, so the app asks once, at first start."""

from __future__ import annotations

import getpass
import os

from bondscope.services.settings import Settings
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

NO_PROMPT_ENV = "BONDSCOPE_NO_PROMPT"  # set by tests and scripts: never block on a dialog


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "annotator"


class AnnotatorDialog(QDialog):
    """A name field (prefilled) with OK/Cancel; OK is disabled while the name is blank."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Annotator")
        self.name_edit = QLineEdit(name)
        self.name_edit.selectAll()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.name_edit.textChanged.connect(self._check)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Your annotator name (stored with every label you make):"))
        layout.addWidget(self.name_edit)
        layout.addWidget(self.buttons)
        self._check(name)

    def _check(self, text: str) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(text.strip()))

    def name(self) -> str:
        return self.name_edit.text().strip()


def first_start_annotator(settings: Settings, *, prompt: bool) -> str | None:
    """The annotator from the settings; if there is none, ask (prefilled with the OS user) and
    store the answer in `settings`. Without `prompt` (screenshots, tests, BONDSCOPE_NO_PROMPT)
    the OS user is used and nothing is stored. None: the user cancelled the first start."""
    if settings.annotator:
        return settings.annotator
    if not prompt or os.environ.get(NO_PROMPT_ENV):
        return os_user()
    dialog = AnnotatorDialog(os_user())
    if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.name():
        return None
    settings.annotator = dialog.name()
    return dialog.name()
