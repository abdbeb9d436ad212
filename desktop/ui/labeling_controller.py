"""The labeling flow of the shown trace: label, accept a suggestion, clear, pick an R step's
target, undo and redo, each one call into `bondscope.services.labeling` (one transaction).

The controller updates the trace view's row itself (a keystroke waits for nothing else) and
reports the rest through signals: the bond gutter, progress, structure panel and status bar
belong to the window, which also says what the actions apply to (`Session`).
"""

from __future__ import annotations

import time

from bondscope.services import labeling
from bondscope.store import Store, StoreBusy
from bondscope.ui.embeddings import StepEmbeddings
from bondscope.ui.session import Session
from bondscope.ui.target_picker import TargetPicker
from bondscope.ui.trace_view import TraceView
from PySide6.QtCore import QModelIndex, QObject, QRect, Signal


class LabelingController(QObject):
    """Turns the trace view's and the target picker's requests into stored labels and bonds."""

    step_saved = Signal(int)  # the row as stored now, already shown in the trace view
    bonds_changed = Signal()  # my bonds of the shown trace changed: the gutter re-reads them
    history_moved = Signal(int)  # an undo/redo changed a step of this trace (maybe not shown)
    notice = Signal(str, int)  # a status-bar message and how long it stays (ms)

    def __init__(
        self,
        session: Session,
        view: TraceView,
        picker: TargetPicker,
        embeddings: StepEmbeddings,
    ) -> None:
        super().__init__(view)
        self.session = session
        self.view = view
        self.picker = picker
        self.embeddings = embeddings
        self.step_entered = time.monotonic()  # when the current step was reached
        self.pending_target: int | None = None  # the R row whose target the picker asks for
        view.selectionModel().currentChanged.connect(self._step_changed)
        view.label_requested.connect(self.label_step)
        view.accept_requested.connect(self.accept_suggestion)
        view.clear_requested.connect(self.clear_step)
        view.undo_requested.connect(self.undo)
        view.redo_requested.connect(self.redo)
        picker.picked.connect(self._target_picked)
        picker.removed.connect(lambda: self._target_picked(None))
        picker.finished.connect(self._picker_closed)

    @property
    def store(self) -> Store:
        return self.session.require_store()

    def _step_changed(self, current: QModelIndex, _: QModelIndex) -> None:
        self.step_entered = time.monotonic()

    def label_step(self, row: int, behavior: str) -> None:
        """Store the label with the time spent on the step; R asks for a target, others go on."""
        seconds = time.monotonic() - self.step_entered
        step_id = self.view.step_model.steps[row].step_id
        try:
            labeling.set_label(self.store, step_id, self.session.annotator, behavior, seconds)
        except StoreBusy as error:
            self._store_busy(error)
            return
        self.refresh_step(row)
        if behavior == "R" and row >= 2:
            self.ask_target(row)
        else:
            self.view.go_to(row + 1)

    def accept_suggestion(self, row: int) -> None:
        suggestion = self.view.step_model.steps[row].suggestion
        if suggestion is None:
            self.notice.emit(f"step {row} has no suggestion", 3000)
            return
        self.label_step(row, suggestion)

    def clear_step(self, row: int) -> None:
        """Remove my label (and an R step's target) from the step; undo brings both back."""
        step_id = self.view.step_model.steps[row].step_id
        try:
            labeling.set_label(self.store, step_id, self.session.annotator, None)
        except StoreBusy as error:
            self._store_busy(error)
            return
        self.refresh_step(row)

    def ask_target(self, row: int) -> None:
        """The picker, ranked by step embeddings when they are ready, else by shared words."""
        model = self.view.step_model
        texts = [model.step_text(i) for i in range(row + 1)]
        trace_id = self.session.trace_id
        embeddings = None if trace_id is None else self.embeddings.get(trace_id, model.rowCount())
        if embeddings is not None:  # ready: rank by meaning
            ranked, how = labeling.rank_targets_by_embedding(embeddings, row), "embedding"
        else:  # not yet (or no encoder): never wait for it, rank by shared words
            ranked, how = labeling.suggest_targets(texts, row), "TF-IDF"
        self.pending_target = row
        rect = self.view.visualRect(model.index(row))
        on_screen = QRect(self.view.viewport().mapToGlobal(rect.topLeft()), rect.size())
        self.picker.ask(row, [(j, texts[j], score) for j, score in ranked], how, on_screen)

    def _target_picked(self, target: int | None) -> None:
        """The step's target becomes the picked one (None: no target), replacing any other."""
        assert self.pending_target is not None
        steps = self.view.step_model.steps
        row = self.pending_target
        to_step = None if target is None else steps[target].step_id
        try:
            labeling.set_target(self.store, steps[row].step_id, to_step, self.session.annotator)
        except StoreBusy as error:
            self._store_busy(error)
            return
        self.refresh_step(row)

    def _picker_closed(self, _: int) -> None:
        if self.pending_target is not None:
            self.view.go_to(self.pending_target + 1)
            self.pending_target = None
        self.view.setFocus()

    def refresh_step(self, row: int) -> None:
        """Re-read one step from the store, so the view shows exactly what was committed."""
        assert self.session.trace_id is not None
        model = self.view.step_model
        (state,) = labeling.load_steps(
            self.store, self.session.trace_id, self.session.annotator, model.steps[row].step_id
        )
        bonds_changed = state.targets != model.steps[row].targets
        model.update_step(row, state)
        self.view.repaint_row(row)
        if bonds_changed:  # a label alone never touches bonds: keep keystrokes cheap
            self.bonds_changed.emit()
        self.step_saved.emit(row)

    def undo(self) -> None:
        try:
            self._show_change(labeling.undo(self.store, self.session.annotator), "undo")
        except StoreBusy as error:
            self._store_busy(error)

    def redo(self) -> None:
        try:
            self._show_change(labeling.redo(self.store, self.session.annotator), "redo")
        except StoreBusy as error:
            self._store_busy(error)

    def _store_busy(self, error: StoreBusy) -> None:
        """Another process held the project past the busy timeout: say the change was not
        saved (the view still shows what is stored) instead of failing."""
        self.notice.emit(f"not saved: {error}", 15000)

    def _show_change(self, change: labeling.Change | None, what: str) -> None:
        """Go to the step an undo/redo touched, in whatever trace it is (the window shows
        another trace on `history_moved`)."""
        if change is None:
            self.notice.emit(f"nothing to {what}", 3000)
            return
        trace_id, row = labeling.step_location(self.store, change.step_id)
        shown = trace_id == self.session.trace_id
        self.history_moved.emit(trace_id)
        if shown:
            self.refresh_step(row)
        self.view.go_to(row)
        self.notice.emit(f"{what}: step {row}", 3000)
