"""Rebindable labeling keys: which key does what, the Settings > Shortcuts dialog, the `?` help.

Keys are kept as Qt PortableText strings ("N", "Ctrl+Z", "}") and a key event is matched by the
same text, so what the dialog records is exactly what the trace view compares against. Label keys
stay in the settings' `key_bindings` (key -> behavior, the format the legend reads); every other
action is in `shortcuts` (action -> keys). Both are fields of `services.settings.Settings`.
"""

from __future__ import annotations

from html import escape

from bondscope.domain import BEHAVIORS
from bondscope.services.settings import Settings
from PySide6.QtCore import QEvent, QKeyCombination, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QKeySequenceEdit,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

PORTABLE = QKeySequence.SequenceFormat.PortableText
NATIVE = QKeySequence.SequenceFormat.NativeText
LOW_CONFIDENCE = 0.6  # `}` stops at the next hint below this confidence (see TraceView)
SLOTS = 2  # keys per action in the dialog: a primary and an alternate

# Every action that can be bound, in the order the dialog and the help list them.
ACTIONS: dict[str, str] = {
    **{f"label:{b}": f"label {b} and go to the next step" for b in BEHAVIORS},
    "accept": "accept the model's suggestion (hatched band) and go on",
    "clear": "clear your label (and an R step's target)",
    "down": "next step",
    "up": "previous step",
    "unlabeled": "next step without your label",
    "low_confidence": (
        f"next unlabeled step whose suggestion has confidence < {LOW_CONFIDENCE} "
        "(else the least confident one after this step)"
    ),
    "undo": "undo (also after a restart)",
    "redo": "redo",
    "help": "this help",
}


def normalize(key: str) -> str:
    """A key as PortableText ("n" -> "N"); "" when Qt cannot read it."""
    sequence = QKeySequence(key)
    return sequence.toString(PORTABLE) if sequence.count() == 1 else ""


def event_keys(event: QKeyEvent) -> list[str]:
    """The key texts an event can match: the key with its modifiers, and for a shifted printable
    key also the character alone ("}" arrives as Shift+} on most layouts, as "}" in tests)."""
    modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    key = event.key()
    if key in (Qt.Key.Key_Shift, Qt.Key.Key_Control, Qt.Key.Key_Alt, Qt.Key.Key_Meta, 0):
        return []
    keys = [QKeySequence(QKeyCombination(modifiers, Qt.Key(key))).toString(PORTABLE)]
    text = event.text()
    if modifiers == Qt.KeyboardModifier.ShiftModifier and len(text) == 1 and text.isprintable():
        keys.append(normalize(text))
    return keys


def action_keys(settings: Settings) -> dict[str, list[str]]:
    """Action -> its keys (normalized), from the settings' two tables."""
    keys: dict[str, list[str]] = {action: [] for action in ACTIONS}
    for key, behavior in settings.key_bindings.items():
        if f"label:{behavior}" in keys and normalize(key):
            keys[f"label:{behavior}"].append(normalize(key))
    for action in ACTIONS:
        if not action.startswith("label:"):
            keys[action] = [k for k in map(normalize, settings.shortcuts.get(action, [])) if k]
    return keys


def key_map(settings: Settings) -> dict[str, str]:
    """Key -> action, what the trace view looks a key event up in."""
    return {key: action for action, keys in action_keys(settings).items() for key in keys}


def store_keys(settings: Settings, keys: dict[str, list[str]]) -> None:
    """Write action -> keys back into the settings' `key_bindings` and `shortcuts`.

    Single-character label keys are kept lower-case, as the file always stored them.
    """
    bindings = {}
    for behavior in BEHAVIORS:
        for key in keys.get(f"label:{behavior}", []):
            bindings[key.lower() if len(key) == 1 else key] = behavior
    settings.key_bindings = bindings
    settings.shortcuts = {
        action: list(keys.get(action, [])) for action in ACTIONS if not action.startswith("label:")
    }


def native(key: str) -> str:
    return QKeySequence(key).toString(NATIVE)


def help_html(settings: Settings) -> str:
    """The `?` dialog: every action with the keys currently bound to it."""
    rows = []
    for action, keys in action_keys(settings).items():
        shown = " / ".join(f"<b>{escape(native(k))}</b>" for k in keys) or "<i>unbound</i>"
        rows.append(f"<tr><td>{shown}</td><td>{escape(ACTIONS[action])}</td></tr>")
    return (
        "<table cellpadding=3>" + "".join(rows) + "</table>"
        "<p>Labeling a step R asks for its target: the earlier step it revisits"
        " (1-9, Enter, or click).</p>"
        "<p>Arcs left of the steps are bonds (yours bright, the model's faint; toggles in the View"
        " menu); click one to go to the step it bonds to. The strip on the right is the whole"
        " trace: click to jump. Rebind keys in Settings &gt; Shortcuts.</p>"
    )


class ShortcutsDialog(QDialog):
    """One QKeySequenceEdit per action and slot; OK refuses a key bound to two actions."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Shortcuts")
        self.edits: dict[str, list[QKeySequenceEdit]] = {}
        grid = QGridLayout()
        grid.addWidget(QLabel("<b>Action</b>"), 0, 0)
        grid.addWidget(QLabel("<b>Key</b>"), 0, 1)
        grid.addWidget(QLabel("<b>Alternate</b>"), 0, 2)
        current = action_keys(settings)
        for row, (action, text) in enumerate(ACTIONS.items(), start=1):
            grid.addWidget(QLabel(text), row, 0)
            self.edits[action] = []
            for slot in range(SLOTS):
                edit = QKeySequenceEdit()
                edit.setMaximumSequenceLength(1)  # one key per slot: finish on the first press
                edit.setClearButtonEnabled(True)
                edit.setObjectName(f"{action}/{slot}")
                edit.installEventFilter(self)
                if slot < len(current[action]):
                    edit.setKeySequence(QKeySequence(current[action][slot]))
                grid.addWidget(edit, row, 1 + slot)
                self.edits[action].append(edit)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c62828")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        defaults: QPushButton = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        defaults.clicked.connect(self.restore_defaults)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.problem)
        layout.addWidget(buttons)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in a key field closes the dialog (Cancel), as everywhere else: a QKeySequenceEdit
        would take it as a key and bind the next combination pressed to that field."""
        if (
            isinstance(event, QKeyEvent)
            and event.type() in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride)
            and event.key() == Qt.Key.Key_Escape
            and event.modifiers() == Qt.KeyboardModifier.NoModifier
        ):
            if event.type() == QEvent.Type.KeyPress:
                self.reject()
            event.accept()
            return True
        return super().eventFilter(watched, event)

    def keys(self) -> dict[str, list[str]]:
        """Action -> the keys now in its edits (empty slots left out)."""
        return {
            action: [
                text for edit in edits if (text := normalize(edit.keySequence().toString(PORTABLE)))
            ]
            for action, edits in self.edits.items()
        }

    def restore_defaults(self) -> None:
        defaults = action_keys(Settings())
        for action, edits in self.edits.items():
            for slot, edit in enumerate(edits):
                keys = defaults[action]
                edit.setKeySequence(QKeySequence(keys[slot] if slot < len(keys) else ""))

    def conflicts(self) -> list[str]:
        """Keys bound to more than one action, as readable lines."""
        owners: dict[str, list[str]] = {}
        for action, keys in self.keys().items():
            for key in dict.fromkeys(keys):
                owners.setdefault(key, []).append(action)
        return [
            f"{native(key)} is bound to {' and '.join(actions)}"
            for key, actions in owners.items()
            if len(actions) > 1
        ]

    def accept(self) -> None:
        problems = self.conflicts()
        if problems:
            self.problem.setText("; ".join(problems))
            return
        super().accept()
