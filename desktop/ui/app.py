"""Entry point of the desktop app (`bondscope gui`, or `bondscope` without a command)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bondscope.ui.qt_platform import platform_problem

NO_DISPLAY = (
    "bondscope: the desktop app needs a display (no DISPLAY or WAYLAND_DISPLAY is set).\n"
    "Everything else works from the command line: see `bondscope --help`, or render the app\n"
    "to an image with `bondscope gui --screenshot out.png`."
)


def run(
    db: Path | None = None,
    trace: str | None = None,
    screenshot: Path | None = None,
    part: str = "window",
    new: bool = False,
) -> int:
    """Open the app on `db` (default: the last project, or the demo); returns the exit code.

    A `db` that does not exist is created only with `new` (a typo must not open an empty
    project). With `screenshot`, render the window offscreen to that PNG and return instead of
    running; `part="structure"` renders only the structure panel.
    """
    if db is not None and not new and not Path(db).exists():
        print(f"error: {db}: no such project file (pass --new to create it)", file=sys.stderr)
        return 1
    if screenshot is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif not (
        os.environ.get("QT_QPA_PLATFORM")
        or os.environ.get("DISPLAY")
        or os.environ.get("WAYLAND_DISPLAY")
    ):
        # Without a display Qt would abort() the process; say what to do instead.
        print(NO_DISPLAY, file=sys.stderr)
        return 1
    elif (problem := platform_problem(os.environ)) is not None:
        # The platform plugin cannot load: Qt would abort() too; say which packages are missing.
        print(problem, file=sys.stderr)
        return 1

    from bondscope.services.demo import default_project, ensure_demo_project
    from bondscope.services.settings import load_settings
    from bondscope.store import StoreError
    from bondscope.ui.annotator import first_start_annotator
    from bondscope.ui.main_window import MainWindow
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Bondscope")
    settings = load_settings()
    annotator = first_start_annotator(settings, prompt=screenshot is None)
    if annotator is None:
        return 1  # cancelled at first start: nothing to label under
    if db is None:
        db = ensure_demo_project() if screenshot is not None else default_project()
    try:
        window = MainWindow(Path(db), annotator, settings, remember_layout=screenshot is None)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if trace is not None and not window.select_trace_named(trace):
        print(f"error: no trace named {trace!r} in {db}", file=sys.stderr)
        window.close()
        return 1
    if screenshot is not None:
        window.show()
        app.processEvents()
        window.refresh_corpus()  # shown at once, not after the debounce
        window.settle()  # the list's and the corpus's figures, computed in the background
        app.processEvents()
        widget = window.structure if part == "structure" else window
        saved = widget.grab().save(str(screenshot))
        window.close()
        if not saved:
            print(f"error: could not write {screenshot}", file=sys.stderr)
            return 1
        return 0
    window.show()
    return int(app.exec())
