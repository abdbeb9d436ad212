"""Active learning in the app: the review queue dock, the accept-suggestions dialog, and the
Tools menu's flows that write labels (accept, adjudicate).

Both are thin views over `bondscope.services.review`: the queue lists `uncertain_steps` as the
service orders them, the dialog shows `estimate_precision` for the chosen threshold and calls
`accept_suggestions`. The window decides whose suggestions (the newest model annotator) and whose
labels (the current annotator) they compare, and refreshes everything after an accept.
"""

from __future__ import annotations

import os
import queue
import sys
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from bondscope.services.labeling import newest_model_annotator
from bondscope.services.review import (
    PrecisionEstimate,
    QueuedStep,
    accept_suggestions,
    estimate_precision,
    uncertain_steps,
)
from bondscope.store import Store
from bondscope.ui.adjudicate import AdjudicateDialog
from bondscope.ui.jobs import Flow, inform
from PySide6.QtCore import QEvent, QObject, Qt, QThread, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

QUEUE_LIMIT = 200
READER_NICE = 10  # the queue reader's scheduling niceness (Linux), below the GUI thread
DEFAULT_THRESHOLD = 0.9


class StoreReader(QThread):
    """A long-lived thread with its own connection that runs read-only jobs, newest first.

    One connection for the thread's life: opening a Store per read takes the write lock for its
    schema check, which a label keystroke on the GUI thread would then wait for. Jobs that
    queued up while one ran are stale except the newest, which alone runs.
    """

    done = Signal(int, object)  # serial, result
    failed = Signal(int, str)  # serial, one-line message

    def __init__(self, project: Path) -> None:
        super().__init__()
        self.project = project
        self.jobs: queue.SimpleQueue[tuple[int, Callable[[Store], Any]] | None] = (
            queue.SimpleQueue()
        )
        self.answered = 0  # serial of the newest job run (read from the GUI thread)

    def submit(self, serial: int, job: Callable[[Store], Any]) -> None:
        self.jobs.put((serial, job))

    def stop(self) -> None:
        self.jobs.put(None)
        self.wait()

    def run(self) -> None:
        if sys.platform == "linux":  # nice is per thread there: keystrokes win the CPU
            os.nice(READER_NICE)
        try:
            store = Store(self.project)
        except Exception as error:  # noqa: BLE001 - reported, never a crash
            self.failed.emit(-1, str(error))
            return
        with store:
            while (item := self._newest()) is not None:
                serial, job = item
                try:
                    result = job(store)
                except Exception as error:  # noqa: BLE001 - reported, never a crash
                    self.failed.emit(serial, str(error))
                else:
                    self.done.emit(serial, result)
                self.answered = serial

    def _newest(self) -> tuple[int, Callable[[Store], Any]] | None:
        """Wait for a job; of several waiting, the newest (None, a stop, wins over all)."""
        item = self.jobs.get()
        while item is not None and not self.jobs.empty():
            item = self.jobs.get()
        return item


class ReviewQueue(QWidget):
    """The least confident suggestions I have not labeled, across traces, least confident first.

    Double-click or Enter on a row asks the window to show that step (`step_requested`).
    The queue is read in a StoreReader thread: on a large corpus the query must never hold up a
    keystroke. Requests made while one runs collapse into one more run.
    """

    step_requested = Signal(int, int)  # trace id, step index
    computed = Signal()  # the table shows the newest request's queue

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel("No model suggestions with a confidence yet.")
        self.caption.setWordWrap(True)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["trace", "step", "suggestion", "confidence"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.table.cellDoubleClicked.connect(lambda row, _: self.jump(row))
        self.table.installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.caption)
        layout.addWidget(self.table, 1)
        self.queue: list[QueuedStep] = []
        self.reader: StoreReader | None = None
        self.requested = 0  # serial of the newest request; older results are not shown

    def refresh(self, project: Path, person: str) -> None:
        """Re-read the queue of the newest model annotator for `person`, off the GUI thread."""
        if self.reader is None or self.reader.project != project:
            self.shutdown()
            self.reader = StoreReader(project)
            self.reader.done.connect(self._done)
            self.reader.failed.connect(self._failed)
            self.reader.start()
        if not self.queue:
            self.caption.setText("Reading the queue…")
        self.requested += 1

        def job(store: Store) -> tuple[str | None, list[QueuedStep], str]:
            model = newest_model_annotator(store)
            queue = uncertain_steps(store, model, person, QUEUE_LIMIT) if model else []
            return model, queue, person

        self.reader.submit(self.requested, job)

    def busy(self) -> bool:
        """Whether a requested read has not been shown yet."""
        return self.reader is not None and self.reader.answered < self.requested

    def _done(self, serial: int, result: tuple[str | None, list[QueuedStep], str]) -> None:
        if serial == self.requested:
            self._read(*result)

    def _failed(self, serial: int, message: str) -> None:
        if serial == self.requested:
            self.caption.setText(f"Cannot read the review queue: {message}")

    def shutdown(self) -> None:
        """Stop the reader thread (before the project closes or the window goes)."""
        if self.reader is not None:
            self.reader.stop()
            self.reader.deleteLater()
            self.reader = None

    def _read(self, model: str | None, queue: list[QueuedStep], person: str) -> None:
        """Show a finished read; keeps the selected row's place when it is still there."""
        current = self.table.currentRow()
        self.queue = queue
        self.table.setRowCount(len(self.queue))
        for row, queued in enumerate(self.queue):
            cells = (
                queued.trace,
                str(queued.step),
                queued.suggestion,
                f"{queued.confidence:.2f}",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)
        if model is None:
            self.caption.setText("No model suggestions in this project yet.")
        else:
            more = "+" if len(self.queue) == QUEUE_LIMIT else ""
            self.caption.setText(
                f"{len(self.queue)}{more} unchecked suggestions of <b>{model}</b> for "
                f"<b>{person}</b>, least confident first. Enter or double-click opens the step."
            )
        if self.queue:
            self.table.selectRow(min(max(current, 0), len(self.queue) - 1))
        self.computed.emit()

    def jump(self, row: int) -> None:
        if 0 <= row < len(self.queue):
            queued = self.queue[row]
            self.step_requested.emit(queued.trace_id, queued.step)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.table
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            self.jump(self.table.currentRow())
            return True
        return super().eventFilter(watched, event)


def estimate_text(estimate: PrecisionEstimate) -> str:
    """One line: what the person checked says about the suggestions at or above the threshold."""
    accepted = f"{estimate.to_accept:,} would be accepted"
    if estimate.precision is None:
        return f"no checked steps at or above {estimate.threshold:.2f} yet; {accepted}"
    steps = "step" if estimate.checked == 1 else "steps"
    return (
        f"precision {estimate.precision:.2f} (95% {estimate.low:.2f}-{estimate.high:.2f}) on "
        f"{estimate.checked:,} checked {steps}; {accepted}"
    )


class AcceptDialog(QDialog):
    """Pick a confidence threshold, see the precision estimate live, accept what is above it.

    `accepted_count` is emitted with how many labels were written, after the transaction.
    """

    accepted_count = Signal(int)

    def __init__(self, store: Store, model: str, person: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.store = store
        self.model = model
        self.person = person
        self.setWindowTitle("Accept suggestions")
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setValue(DEFAULT_THRESHOLD)
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.accept_button = QPushButton("Accept")
        self.buttons.addButton(self.accept_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.rejected.connect(self.reject)
        self.accept_button.clicked.connect(self.accept_above)
        form = QFormLayout()
        form.addRow("Suggestions of", QLabel(f"<b>{escape(model)}</b>"))
        form.addRow("Become labels of", QLabel(f"<b>{escape(person)}</b>"))
        form.addRow("Confidence at least", self.threshold)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.estimate)
        layout.addWidget(self.buttons)
        self.threshold.valueChanged.connect(self.update_estimate)
        self.update_estimate()

    def update_estimate(self) -> PrecisionEstimate:
        estimate = estimate_precision(self.store, self.model, self.person, self.threshold.value())
        self.estimate.setText(estimate_text(estimate))
        self.accept_button.setEnabled(estimate.to_accept > 0)
        return estimate

    def accept_above(self) -> int:
        """One transaction (an `accept` run); then the estimate shows what is left."""
        count = accept_suggestions(self.store, self.model, self.person, self.threshold.value())
        self.update_estimate()
        self.accepted_count.emit(count)
        return count


class ReviewFlow(Flow):
    """Tools > Accept Suggestions Above and Adjudicate: dialogs that write labels (I am the one
    who accepts or decides); the window re-reads them on `labels_added`."""

    def choose_accept(self) -> AcceptDialog | None:
        """The newest model's suggestions above a confidence become mine."""
        model = newest_model_annotator(self.store)
        if model is None:
            inform(self.window, "Accept suggestions", "No model suggestions yet.")
            return None
        dialog = AcceptDialog(self.store, model, self.session.annotator, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted_count.connect(self._accepted)
        dialog.open()
        return dialog

    def show_adjudicate(self) -> AdjudicateDialog | None:
        """Settle the shown trace's disputed steps."""
        if self.session.store is None or self.session.trace_id is None:
            return None
        store, trace_id = self.session.store, self.session.trace_id
        dialog = AdjudicateDialog(store, trace_id, self.session.annotator, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.decided.connect(lambda _: self.labels_added.emit())
        dialog.open()
        return dialog

    def _accepted(self, count: int) -> None:
        self.labels_added.emit()
        self.notice(f"accepted {count:,} suggestions as {self.session.annotator}")
