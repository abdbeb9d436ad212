"""Import and export in worker threads: progress, Cancel from the dialog, and what cancel leaves.

To cancel at a known point, the test's Canceller receives the worker's first `advanced` signal
over a blocking queued connection: the worker waits while the GUI thread clicks the dialog's
Cancel button, then goes on and meets `cancelled()` at its next check.
"""

from __future__ import annotations

import json
import sqlite3
from importlib.resources import files
from pathlib import Path

import pytest
from bondscope.ui.main_window import MainWindow
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QPushButton

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

DEMO = Path(str(files("bondscope.resources") / "demo" / "demo.jsonl"))


class Canceller(QObject):
    """Lives in the GUI thread; clicks Cancel on the window's progress dialog when called."""

    def __init__(self, window: MainWindow, qtbot) -> None:
        super().__init__()
        self.window = window
        self.qtbot = qtbot
        self.calls = 0

    @Slot(int, str)
    def on_advanced(self, amount: int, note: str) -> None:
        self.calls += 1
        if self.calls == 1:
            dialog = self.window.jobs.progress_dialog
            dialog.show()
            button = dialog.findChild(QPushButton)
            assert button.isVisible() and button.isEnabled()
            button.click()  # the Cancel button, as a click emits it
            assert (
                self.window.jobs.worker is not None
                and self.window.jobs.worker.cancel_event.is_set()
            )


def cancel_on_first_advance(window: MainWindow, qtbot) -> Canceller:
    """Hooks the window's next worker before it starts (so no `advanced` can be missed)."""
    canceller = Canceller(window, qtbot)

    def hook(worker) -> None:
        worker.advanced.connect(canceller.on_advanced, Qt.ConnectionType.BlockingQueuedConnection)
        window.jobs.worker_starting.disconnect(hook)

    window.jobs.worker_starting.connect(hook)
    return canceller


def dump(project: Path) -> list[str]:
    with sqlite3.connect(project) as conn:
        return list(conn.iterdump())


def split_demo(folder: Path) -> list[Path]:
    """One file per demo trace, so an import advances once per trace."""
    folder.mkdir()
    paths = []
    for i, line in enumerate(DEMO.read_text(encoding="utf-8").splitlines()):
        path = folder / f"trace{i}.jsonl"
        path.write_text(json.dumps(json.loads(line)) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_export_in_a_worker_writes_the_file(qtbot, project, open_window, tmp_path) -> None:
    window = open_window(project)
    out = tmp_path / "out" / "traces.jsonl"
    worker = window.project_jobs.start_export("bondscope-jsonl", out)
    with qtbot.waitSignal(worker.succeeded, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: not worker.isRunning())
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    assert "exported 3 traces" in window.statusBar().currentMessage()


def test_cancelled_export_leaves_no_file(qtbot, project, open_window, tmp_path) -> None:
    window = open_window(project)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "traces.jsonl"
    canceller = cancel_on_first_advance(window, qtbot)
    worker = window.project_jobs.start_export("bondscope-jsonl", out)
    with qtbot.waitSignal(worker.cancelled, timeout=30_000) as blocker:
        pass
    qtbot.waitUntil(lambda: not worker.isRunning())
    assert canceller.calls == 1  # cancelled after the first of three traces
    assert "no file was written" in blocker.args[0]
    assert list(folder.iterdir()) == []  # neither the file nor the staging folder
    assert "export cancelled" in window.statusBar().currentMessage()
    assert not window.jobs.progress_dialog.isVisible()


def test_cancelled_import_leaves_the_project_unchanged(
    qtbot, project, open_window, tmp_path
) -> None:
    paths = split_demo(tmp_path / "incoming")
    window = open_window(tmp_path / "empty.bondscope")
    window.close()  # the window's Store is closed: the dump sees what is committed
    before = dump(tmp_path / "empty.bondscope")
    window = open_window(tmp_path / "empty.bondscope")
    canceller = cancel_on_first_advance(window, qtbot)
    worker = window.project_jobs.start_import(paths)
    with qtbot.waitSignal(worker.cancelled, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: not worker.isRunning())
    assert canceller.calls == 1  # one of three files was read (and written) before the cancel
    assert window.trace_model.rowCount() == 0
    window.close()
    assert dump(tmp_path / "empty.bondscope") == before


def test_import_runs_in_a_worker_with_progress(qtbot, tmp_path, open_window) -> None:
    paths = split_demo(tmp_path / "incoming")
    window = open_window(tmp_path / "empty.bondscope")
    steps: list[int] = []
    worker = window.project_jobs.start_import(paths)
    worker.advanced.connect(lambda amount, note: steps.append(amount))
    with qtbot.waitSignal(worker.succeeded, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: not worker.isRunning())
    assert window.trace_model.rowCount() == 3
    qtbot.waitUntil(lambda: not window.background_busy())  # the figures are counted in a thread
    assert window.traces.progress.total == 95 + 87 + 51
    assert window.project_jobs.start_import(paths) is not None  # the next job may start
    qtbot.waitUntil(lambda: not window.jobs.worker.isRunning(), timeout=30_000)


def test_a_cancelled_export_does_not_disable_the_exporter(
    qtbot, project, open_window, tmp_path
) -> None:
    window = open_window(project)
    out = tmp_path / "traces.jsonl"
    canceller = cancel_on_first_advance(window, qtbot)  # kept: PySide holds no reference to it
    worker = window.project_jobs.start_export("bondscope-jsonl", out)
    with qtbot.waitSignal(worker.cancelled, timeout=30_000):
        pass
    assert canceller.calls >= 1
    qtbot.waitUntil(lambda: not worker.isRunning())
    worker = window.project_jobs.start_export("bondscope-jsonl", out)  # same plugin, right after
    with qtbot.waitSignal(worker.succeeded, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: not worker.isRunning())
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


def test_prelabel_this_trace_refreshes_hints_and_uncertainty(qtbot, project, open_window) -> None:
    window = open_window(project)
    window.trace_view.go_to(7)
    trace_id = window.trace_id
    worker = window.project_jobs.start_prelabel("keywords", [trace_id])
    with qtbot.waitSignal(worker.succeeded, timeout=60_000) as blocker:
        pass
    qtbot.waitUntil(lambda: not worker.isRunning())
    report = blocker.args[0]
    assert report.status == "done" and report.traces == 1
    assert window.trace_view.current_row() == 7  # the position is kept
    with sqlite3.connect(project) as conn:
        stored = dict(
            conn.execute(
                "SELECT step, confidence FROM current_labels WHERE trace_id = ? AND annotator = ?",
                (trace_id, report.annotator),
            ).fetchall()
        )
    steps = window.trace_view.step_model.steps
    assert len(stored) == len(steps)
    assert [s.confidence for s in steps] == [stored[i] for i in range(len(steps))]
    row = window.trace_model.rows[window.trace_model.row_of(trace_id)]
    assert row.uncertainty == pytest.approx(1 - sum(stored.values()) / len(stored))
    qtbot.waitUntil(lambda: not window.background_busy())  # the corpus is counted in a thread
    assert report.annotator in window.structure.corpus.title.text  # the newest model's labels
    assert "pre-labeling done" in window.statusBar().currentMessage()


def test_a_read_in_a_child_python_gives_what_the_service_gives(tmp_path: Path) -> None:
    """call_in_child hands JSON in and an .npz out (no pickle): the same figures as in-process."""
    import numpy as np
    from bondscope.plugin_manager import Plugins
    from bondscope.services.importing import import_paths
    from bondscope.services.trace_list import TraceColumns, trace_columns
    from bondscope.store import Store
    from bondscope.ui.workers import call_in_child

    project = tmp_path / "p.bondscope"
    with Store(project) as store:
        import_paths(store, Plugins(load_entry_points=False), [DEMO])
        here = trace_columns(store, "thought-anchors-gpt4o")
    there = call_in_child(
        project, trace_columns, {"annotator": "thought-anchors-gpt4o"}, TraceColumns
    )
    assert isinstance(there, TraceColumns) and len(there.ids) == 3
    for name in ("ids", "steps", "labeled", "uncertainty", "agreement"):
        np.testing.assert_array_equal(getattr(there, name), getattr(here, name))
    assert there.labeled.sum() > 0
