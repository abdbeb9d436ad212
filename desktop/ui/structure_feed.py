"""Keeps the structure panel current without a project-wide count per keystroke.

The trace side is counted from the labels the trace view holds. The corpus side shows my labels
over the project, or the newest model's while I have none (`structure.corpus_snapshot` picks):
a snapshot counted in a worker thread (in a child Python for a large project), plus the shown
trace's label changes since (`CorpusTally`). A new snapshot is counted only when there is none,
or when it shows the model's labels and I have labeled.
"""

from __future__ import annotations

from collections.abc import Callable

from bondscope.services import labeling
from bondscope.services.structure import CorpusSnapshot, corpus_snapshot
from bondscope.store import Store
from bondscope.ui.session import Session
from bondscope.ui.structure_panel import CorpusTally, StructurePanel, Tally
from bondscope.ui.trace_view import StepModel
from bondscope.ui.workers import CallWorker, call_in_child
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QDockWidget


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


class StructureFeed(QObject):
    """Feeds the panel's two sides, only while its dock is shown (the window catches up when
    it is shown again)."""

    def __init__(
        self,
        session: Session,
        panel: StructurePanel,
        dock: QDockWidget,
        steps: StepModel,
        large: Callable[[], bool],
    ) -> None:
        """`large`: whether the project's scans go to a child Python (see call_in_child)."""
        super().__init__(panel)
        self.session = session
        self.panel = panel
        self.dock = dock
        self.steps = steps
        self.large = large
        self.worker: CallWorker | None = None  # the corpus snapshot, off the GUI thread
        self.again = False  # asked again while it ran: count once more
        self.tally: CorpusTally | None = None  # the snapshot plus the labels since

    def refresh_trace(self) -> None:
        """The trace side, from the labels in memory (skipped while the dock is hidden)."""
        if not self.dock.isVisible():
            return
        labels, mine = self.steps.shown_labels()
        behaviors, transitions = labeling.label_counts(labels)
        who = self.session.annotator if mine else "model suggestions"
        self.panel.trace.set_counts(
            behaviors, transitions, "This trace", f"{who}, {counted(behaviors.sum(), 'step')}"
        )

    def _my_counts(self) -> Tally:
        """My labels of the shown trace, counted as the corpus counts them."""
        return labeling.label_counts([step.label for step in self.steps.steps])

    def leave_trace(self) -> None:
        """Before the view shows another trace: the shown one's changes join the corpus base."""
        tally = self.tally
        if tally is not None and tally.annotator == self.session.annotator:
            tally.leave(self._my_counts())
        elif tally is not None and self._my_counts()[0].sum():
            self.tally = None  # I labeled while the model's labels stood for the corpus

    def enter_trace(self, trace_id: int) -> None:
        """After the view shows `trace_id`: its counts now are where its changes start."""
        if self.tally is not None:
            self.tally.enter(trace_id, self._my_counts())

    def recount(self) -> None:
        """Traces or labels changed outside the keyboard path: the next refresh counts anew."""
        self.tally = None

    def refresh_corpus(self) -> None:
        """The corpus side: from the tally when it still holds, else a snapshot in a worker."""
        store = self.session.store
        if store is None or not self.dock.isVisible():
            return
        tally = self.tally
        if tally is not None and (
            tally.annotator == self.session.annotator or not self._my_counts()[0].sum()
        ):
            self._show_tally()
            return
        if self.worker is not None:
            self.again = True
            return
        kwargs = {"annotator": self.session.annotator, "trace_id": self.session.trace_id}
        large = self.large()

        def job(store: Store) -> CorpusSnapshot:
            if large:  # one scan of millions of labels: in a child, off this process's GIL
                return call_in_child(store.path, corpus_snapshot, kwargs, CorpusSnapshot)
            return corpus_snapshot(store, **kwargs)

        worker = CallWorker(store.path, job)
        worker.succeeded.connect(self._counted)
        worker.finished.connect(lambda: self._done(worker))
        self.worker = worker
        worker.start()

    def busy(self) -> bool:
        return self.worker is not None

    def wait(self) -> None:
        """Block until a running count is shown (screenshots)."""
        while self.worker is not None:
            self.worker.wait()
            QApplication.processEvents()

    def shutdown(self) -> None:
        """Let a running count end: no thread outlives the window."""
        if self.worker is not None:
            self.worker.wait()

    def _done(self, worker: CallWorker) -> None:
        worker.wait()  # `finished` comes just before the thread ends
        worker.deleteLater()
        if self.worker is worker:
            self.worker = None
            if self.again:
                self.again = False
                self.refresh_corpus()

    def _counted(self, snapshot: CorpusSnapshot) -> None:
        if snapshot.trace_id != self.session.trace_id or self.again:
            self.again = True  # another trace is shown by now, or labels moved on
            return
        self.tally = CorpusTally(snapshot)
        self._show_tally()

    def _show_tally(self) -> None:
        tally = self.tally
        assert tally is not None
        behaviors, transitions, traces = tally.shown(self._my_counts())
        if tally.annotator != self.session.annotator:  # the model's: mine do not change them
            behaviors, transitions, traces = tally.behaviors, tally.transitions, tally.traces
        self.panel.corpus.set_counts(
            behaviors,
            transitions,
            "Corpus",
            f"{tally.annotator}, {counted(traces, 'trace')}, {counted(behaviors.sum(), 'step')}",
        )
