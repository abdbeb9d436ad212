"""The small picker that asks which earlier step a reflection (R) revisits."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

PREVIEW_CHARS = 110


class TargetPicker(QDialog):
    """Ranked candidates, best first and pre-selected: a digit, Enter or a click picks one.

    Shown with open() (window-modal, not exec()), so the event loop and tests keep running.
    """

    picked = Signal(int)  # the chosen target's step index
    removed = Signal()  # 0, Delete or Backspace: the step has no target (any old one goes)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reflection target")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.caption = QLabel()
        self.list = QListWidget()
        self.how = ""
        self.list.installEventFilter(self)
        self.list.itemClicked.connect(self._pick_item)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.list)
        self.resize(640, 320)

    def ask(
        self,
        step: int,
        candidates: list[tuple[int, str, float]],
        how: str = "",
        avoid: QRect | None = None,
    ) -> None:
        """Show (target index, text, score) candidates for the R step `step`; `how` names the
        ranking (embedding cosine, or TF-IDF while the embeddings are not ready). `avoid` is the
        step's row on screen (global coordinates): the picker opens below it, or above it when
        there is no room, so the step it asks about stays readable."""
        ranking = f"  (ranked by {how})" if how else ""
        self.caption.setText(
            f"Step {step} reflects on which earlier step?  1-9 or Enter picks, 0 or Delete"
            f" removes its target, Esc keeps it.{ranking}"
        )
        self.how = how
        self.list.clear()
        for number, (target, text, score) in enumerate(candidates, start=1):
            preview = " ".join(text.split())[:PREVIEW_CHARS]
            prefix = f"{number}  " if number <= 9 else "   "
            item = QListWidgetItem(f"{prefix}step {target}  ({score:.2f})  {preview}")
            item.setData(Qt.ItemDataRole.UserRole, target)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.open()
        if avoid is not None:
            self.move(self._beside(avoid))
        self.list.setFocus()

    def _beside(self, avoid: QRect) -> QPoint:
        frame = self.frameGeometry()
        screen = self.screen().availableGeometry()
        x = min(max(screen.left(), avoid.left() + 40), screen.right() - frame.width())
        below = avoid.bottom() + 8
        if below + frame.height() <= screen.bottom():
            return QPoint(x, below)
        return QPoint(x, max(screen.top(), avoid.top() - 8 - frame.height()))

    def _pick_item(self, item: QListWidgetItem) -> None:
        self.picked.emit(int(item.data(Qt.ItemDataRole.UserRole)))  # before `finished`
        self.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.list and event.type() == QEvent.Type.KeyPress:
            return self._key(event)  # type: ignore[arg-type]
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self._key(event):
            super().keyPressEvent(event)

    def _key(self, event: QKeyEvent) -> bool:
        text = event.text()
        if text == "0" or event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.removed.emit()  # before `finished`
            self.accept()
            return True
        if text.isdigit() and text != "0":
            item = self.list.item(int(text) - 1)
            if item is not None:
                self._pick_item(item)
            return True
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            item = self.list.currentItem()
            if item is not None:
                self._pick_item(item)
            return True
        return False
