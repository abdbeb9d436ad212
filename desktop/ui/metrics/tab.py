"""The base of every Metrics tab: controls, a figure, one worker at a time, PNG and CSV export."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from bondscope.services.metrics import write_csv
from bondscope.store import Store
from bondscope.ui.metrics.plots import export_png
from bondscope.ui.workers import CallWorker
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from bondscope.ui.metrics.panel import MetricsPanel

EXPORT_WIDTH = 1200


def make_table(columns: list[str]) -> QTableWidget:
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().hide()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the trace view
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    return table


def fill_table(table: QTableWidget, rows: list[list[str]]) -> None:
    table.setRowCount(len(rows))
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            table.setItem(i, j, QTableWidgetItem(text))


def table_texts(table: QTableWidget) -> list[list[str]]:
    """What the table shows, cell by cell (for tests and CSV of shown values)."""
    return [
        [table.item(i, j).text() for j in range(table.columnCount())]
        for i in range(table.rowCount())
    ]


class MetricsTab(QWidget):
    """One metric: controls, a pyqtgraph figure, its numbers, and PNG/CSV export.

    Subclasses say what to compute (`job`, a Qt-free function of a Store from services/metrics)
    and how to show it (`show_result`); the base runs one worker at a time and drops results
    that a newer request has made stale.
    """

    computed = Signal()  # a result (or an error) is on screen
    name = "metric"
    csv_header: tuple[str, ...] = ()

    def __init__(self, panel: MetricsPanel) -> None:
        super().__init__()
        self.panel = panel
        self.result: Any = None
        self.error: str | None = None
        self.worker: CallWorker | None = None
        self.pending = False  # a request came while the worker ran: run again when it ends
        self.dirty = True  # the result on screen is out of date
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.start)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.graphics.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.controls = QHBoxLayout()
        self.controls.setContentsMargins(0, 0, 0, 0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.export_png_action = QAction("Export PNG…", self)
        self.export_png_action.triggered.connect(self.choose_png)
        self.export_csv_action = QAction("Export CSV…", self)
        self.export_csv_action.triggered.connect(self.choose_csv)
        self.controls.addStretch(1)
        for action in (self.export_png_action, self.export_csv_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.controls.addWidget(button)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(4, 4, 4, 4)
        self.box.addLayout(self.controls)
        self.box.addWidget(self.status)

    def add_control(self, label: str, widget: QWidget) -> None:
        """A labeled control, left of the export buttons; it may not take the keyboard focus."""
        widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        position = self.controls.count() - 3  # before the stretch and the two buttons
        self.controls.insertWidget(position, QLabel(label))
        self.controls.insertWidget(position + 1, widget)

    # subclasses -----------------------------------------------------------------------------

    def job(self) -> Callable[[Store], Any] | None:
        """The computation for the current choices; None when there is nothing to compute."""
        raise NotImplementedError

    def show_result(self, result: Any) -> None:
        raise NotImplementedError

    def csv_rows(self) -> list[list[Any]]:
        raise NotImplementedError

    # scheduling -----------------------------------------------------------------------------

    def request(self, delay_ms: int = 0) -> None:
        """Mark out of date; compute after `delay_ms` if the tab is on screen, else when shown."""
        self.dirty = True
        if self.panel.is_live(self):
            self.timer.start(delay_ms)

    def catch_up(self) -> None:
        if self.dirty and not self.timer.isActive():
            self.timer.start(0)

    def busy(self) -> bool:
        return self.dirty or self.worker is not None or self.timer.isActive()

    def start(self) -> None:
        if self.worker is not None:
            self.pending = True
            return
        if self.panel.project is None:
            return
        job = self.job()
        self.dirty = False
        if job is None:
            self.computed.emit()
            return
        worker = CallWorker(self.panel.project, job)
        worker.succeeded.connect(self._succeeded)
        worker.failed.connect(self._failed)
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()

    def _succeeded(self, result: Any) -> None:
        if self.pending:  # stale: a newer computation follows at once
            return
        self.result, self.error = result, None
        self.status.setText("")
        self.show_result(result)
        self.computed.emit()

    def _failed(self, message: str) -> None:
        if self.pending:
            return
        self.error = message
        self.status.setText(f"<i>{escape(message)}</i>")
        self.computed.emit()

    def _finished(self) -> None:
        if self.worker is not None:
            self.worker.wait()  # `finished` comes just before the thread ends
            self.worker.deleteLater()
            self.worker = None
        if self.pending:
            self.pending = False
            self.start()

    def shutdown(self) -> None:
        self.timer.stop()
        self.pending = False
        if self.worker is not None:
            self.worker.wait()

    # export -------------------------------------------------------------------------------

    def export_png(self, path: Path, width: int = EXPORT_WIDTH) -> None:
        """The tab's figure, rendered by pyqtgraph's exporter (works offscreen too)."""
        export_png(self.graphics.ci, path, width)

    def export_csv(self, path: Path) -> None:
        """The tab's numbers at full precision; an undefined value is an empty cell."""
        write_csv(path, self.csv_header, self.csv_rows())

    def choose_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export figure", str(Path.home() / f"{self.name}.png"), "PNG (*.png)"
        )
        if path:
            self.export_png(Path(path))

    def choose_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export table", str(Path.home() / f"{self.name}.csv"), "CSV (*.csv)"
        )
        if path:
            self.export_csv(Path(path))
