"""Names and step text are shown as plain text, never rendered as Qt rich text (reliability issue,
finding 13: an HTML table in an annotator name took over the Structure panel)."""

from __future__ import annotations

from html import escape

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextDocument

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"),
]

HOSTILE = '<table border=9><tr><td><h1>BIG</h1></td></tr></table><img src="x.png"><a href="y">z</a>'


def rendered(html: str) -> str:
    """What a rich-text widget shows for this markup."""
    document = QTextDocument()
    document.setHtml(html)
    return document.toPlainText()


def test_a_markup_annotator_name_is_shown_literally(qtbot, project, open_window) -> None:
    window = open_window(project)
    window.settings_flow.set_annotator(HOSTILE)
    assert window.annotator_label.textFormat() == Qt.TextFormat.PlainText
    assert window.annotator_label.text() == f"annotator: {HOSTILE}"
    qtbot.keyClick(window.trace_view, "1")  # a label of this annotator: the panel names them
    title = window.structure.trace  # a pyqtgraph LabelItem: its text is always HTML
    qtbot.waitUntil(lambda: escape(HOSTILE) in title.title.text, timeout=3000)
    assert HOSTILE in rendered(title.title.text)
    # ...while the panel's own heading is markup: bold, never shown as "<b>" text
    assert rendered(title.title.text) == f"This trace ({HOSTILE}, 1 step)"
    assert title.title.text.startswith("<b>This trace</b> (")


def test_trace_name_tooltips_show_markup_literally(qtbot, project, open_window) -> None:
    window = open_window(project)
    model = window.trace_model
    model.rows[0].name = HOSTILE
    tooltip = window.trace_model.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)
    assert HOSTILE in rendered(tooltip)
