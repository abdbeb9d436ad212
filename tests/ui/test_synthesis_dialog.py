"""Tools > Synthesize, the fidelity report and Resume, against a real chat server on 127.0.0.1.

The server is tests/chat_server.py scripted with tests/test_synthesis.py's deterministic writer:
it names the behavior each prompt asks for and answers in \\boxed{} after a few steps.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from bondscope.domain import BEHAVIORS
from bondscope.ui.synthesis import matrix_texts, number
from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QPushButton

from tests.chat_server import ChatServer
from tests.test_synthesis import questions_file, write_step

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

KEY = "sk-ui-synth-7f3a-secret"
WAIT_MS = 60_000


def fill(dialog, questions: Path, url: str, concurrency: int = 3) -> None:
    """What a person types: a preset graph, the server, the key's variable name, a seed."""
    dialog.questions.setText(str(questions))
    dialog.choose_preset("qwq-32b")
    dialog.base_url.setText(url)
    dialog.llm_model.setText("writer")
    dialog.api_key_env.setText("UI_WRITER_KEY")
    dialog.seed.setValue(7)
    dialog.concurrency.setValue(concurrency)
    dialog.prelabeler.setCurrentIndex(dialog.prelabeler.findData("keywords"))


def ok(qtbot, dialog) -> None:
    qtbot.mouseClick(
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
    )


def synthesis_run(project: Path) -> tuple[int, str]:
    with sqlite3.connect(project) as conn:
        return conn.execute("SELECT id, status FROM runs WHERE kind = 'synthesize'").fetchone()


def synthesized(project: Path) -> list[tuple[int, str | None, int | None]]:
    with sqlite3.connect(project) as conn:
        return conn.execute(
            "SELECT i.item, t.source, (SELECT COUNT(*) FROM steps s WHERE s.trace_id = t.id)"
            " FROM synthesis_items i LEFT JOIN traces t ON t.id = i.trace_id ORDER BY i.item"
        ).fetchall()


def test_synthesize_then_fidelity_report(qtbot, project, open_window, tmp_path, monkeypatch):
    monkeypatch.setenv("UI_WRITER_KEY", KEY)
    window = open_window(project)
    traces_before = window.trace_model.rowCount()
    questions = questions_file(tmp_path, 3)
    with ChatServer(write_step) as server:
        dialog = window.synthesis.choose_synthesis()
        ok(qtbot, dialog)  # nothing filled in: the dialog says what is missing and stays
        assert dialog.isVisible() and "questions" in dialog.error.text()
        fill(dialog, questions, server.url)
        ok(qtbot, dialog)
        qtbot.waitUntil(lambda: window.synthesis.box is not None, timeout=WAIT_MS)
    assert {h.get("Authorization") for h in server.headers} == {f"Bearer {KEY}"}
    run_id, status = synthesis_run(project)
    rows = synthesized(project)
    assert status == "done"
    assert [(item, source) for item, source, _ in rows] == [
        (i, f"mole-syn:{run_id}") for i in range(3)
    ]
    assert all(steps >= 3 for *_, steps in rows)
    assert window.trace_model.rowCount() == traces_before + 3  # the list shows them at once
    assert f"Run {run_id}: 3 of 3 traces" in window.synthesis.box.text()
    assert KEY.encode() not in project.read_bytes()
    with sqlite3.connect(project) as conn:
        (params,) = conn.execute("SELECT params FROM runs WHERE kind = 'synthesize'").fetchone()
    params = json.loads(params)
    assert params["options"]["api_key_env"] == "UI_WRITER_KEY"
    assert params["settings"]["seed"] == 7 and params["graph"]["origin"] == "preset qwq-32b"

    button = next(b for b in window.synthesis.box.buttons() if b.text() == "Fidelity Report")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.synthesis.fidelity_dialog is not None, timeout=WAIT_MS)
    report = window.synthesis.fidelity_dialog
    with sqlite3.connect(project) as conn:  # the service stores its report in the fidelity run
        (summary,) = conn.execute("SELECT summary FROM runs WHERE kind = 'fidelity'").fetchone()
    stored = json.loads(summary)
    assert stored["prelabeler"] == "keywords" and stored["run_id"] == run_id
    text = report.summary.text()
    assert f"<b>{stored['accuracy']:.3f}</b>" in text
    assert f"Pearson r(target, measured): <b>{number(stored['pearson_r'])}</b>" in text
    assert ("<b>effective semantic isomer</b>" in text) == stored["effective_isomer"]
    for row, behavior in enumerate(BEHAVIORS):
        recall = report.table.item(row, 3).text()
        assert recall == f"{stored['per_behavior'][behavior]['recall']:.3f}"
        assert int(report.table.item(row, 0).text()) == stored["per_behavior"][behavior]["intended"]
    assert report.target_heat.texts() == matrix_texts(np.array(stored["target"]))
    assert report.measured_heat.texts() == matrix_texts(np.array(stored["measured"]))
    assert window.synthesis.box is None  # the report button closed it
    report.close()
    assert window.synthesis.fidelity_dialog is None


class CancelAfterSteps(QObject):
    """Clicks the progress dialog's Cancel once `after` steps were generated; the worker waits
    (blocking queued connection) until the click is done, so the cut point is exact."""

    def __init__(self, window, after: int) -> None:
        super().__init__()
        self.window = window
        self.after = after
        self.steps = 0

    @Slot(int, str)
    def on_advanced(self, amount: int, note: str) -> None:
        if "steps generated" in note:
            self.steps = int(note.split()[0])
            if self.steps >= self.after and not self.window.jobs.worker.cancel_event.is_set():
                dialog = self.window.jobs.progress_dialog
                dialog.show()
                dialog.findChild(QPushButton).click()


def test_cancel_keeps_steps_and_resume_finishes_the_run(
    qtbot, project, open_window, tmp_path, monkeypatch
):
    monkeypatch.setenv("UI_WRITER_KEY", KEY)
    window = open_window(project)
    questions = questions_file(tmp_path, 4)
    canceller = CancelAfterSteps(window, 4)

    def hook(worker) -> None:
        worker.advanced.connect(canceller.on_advanced, Qt.ConnectionType.BlockingQueuedConnection)
        window.jobs.worker_starting.disconnect(hook)

    window.jobs.worker_starting.connect(hook)
    with ChatServer(write_step) as server:
        dialog = window.synthesis.choose_synthesis()
        fill(dialog, questions, server.url, concurrency=2)
        ok(qtbot, dialog)
        worker = window.jobs.worker
        qtbot.waitUntil(lambda: worker.isFinished(), timeout=WAIT_MS)
        qtbot.wait(50)  # the queued `cancelled` signal
        run_id, status = synthesis_run(project)
        with sqlite3.connect(project) as conn:
            kept = conn.execute("SELECT COUNT(*) FROM synthesis_steps").fetchone()[0]
            # "resumed" counts the steps of traces still unfinished: one that finished before
            # the cancel landed is not resumed (with 2 at once that happens now and then)
            resumable = conn.execute(
                "SELECT COUNT(*) FROM synthesis_steps s JOIN synthesis_items i"
                " ON i.run_id = s.run_id AND i.item = s.item WHERE i.stop IS NULL"
            ).fetchone()[0]
        assert status == "cancelled" and kept >= 4
        assert window.synthesis.box is None
        assert "Resume" in window.statusBar().currentMessage()
        unfinished = [item for item, source, _ in synthesized(project) if source is None]
        assert unfinished

        resume = window.synthesis.choose_resume()
        assert resume is not None and resume.list.count() == 1
        assert resume.list.item(0).text().startswith(f"run {run_id} (cancelled)")
        assert resume.base_url.text() == server.url and resume.model.text() == "writer"
        assert resume.api_key_env.text() == "UI_WRITER_KEY"
        qtbot.mouseClick(
            resume.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton
        )
        qtbot.waitUntil(lambda: window.synthesis.box is not None, timeout=WAIT_MS)
    assert f"{resumable} resumed" in window.synthesis.box.text()
    assert [source for _, source, _ in synthesized(project)] == [f"mole-syn:{run_id}"] * 4
    assert synthesis_run(project) == (run_id, "done")
    with sqlite3.connect(project) as conn:
        steps = conn.execute("SELECT item, idx FROM synthesis_steps ORDER BY item, idx").fetchall()
    for item in range(4):  # no step asked twice, none lost: 0..n-1 per item
        indices = [idx for i, idx in steps if i == item]
        assert indices == list(range(len(indices)))
    assert window.synthesis.choose_resume() is None  # nothing left to resume: an information box
    box = next(w for w in window.findChildren(QMessageBox) if w.windowTitle() == "Resume")
    box.close()
    window.synthesis.box.close()


def test_the_dialog_remembers_its_server_after_a_restart(
    qtbot, project, open_window, tmp_path, monkeypatch
):
    """The last run's questions file, server, model and key variable come back in a new window
    (they are read from the settings file again: #14, they used to be dropped on load)."""
    monkeypatch.setenv("UI_WRITER_KEY", KEY)
    window = open_window(project)
    questions = questions_file(tmp_path, 1)
    with ChatServer(write_step) as server:
        dialog = window.synthesis.choose_synthesis()
        fill(dialog, questions, server.url)
        ok(qtbot, dialog)
        qtbot.waitUntil(lambda: window.synthesis.box is not None, timeout=WAIT_MS)
    window.synthesis.box.close()
    window.close()

    again = open_window(project)  # a new window on a freshly loaded settings file
    dialog = again.synthesis.choose_synthesis()
    assert dialog.questions.text() == str(questions)
    assert dialog.base_url.text() == server.url
    assert dialog.llm_model.text() == "writer"
    assert dialog.api_key_env.text() == "UI_WRITER_KEY"
    dialog.reject()
