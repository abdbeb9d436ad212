"""How long-running services report progress and learn that the user cancelled.

The CLI shows a terminal bar, the app a progress dialog; services only see this protocol.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Cancelled(Exception):
    """The user cancelled; the service's transaction has been rolled back."""


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, amount: int = 1, note: str = "") -> None: ...

    def cancelled(self) -> bool: ...


class NullProgress:
    """Progress that shows nothing and never cancels."""

    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, amount: int = 1, note: str = "") -> None:
        pass

    def cancelled(self) -> bool:
        return False


def check_cancelled(progress: Progress) -> None:
    if progress.cancelled():
        raise Cancelled()


class Yielding:
    """Progress that pauses after each advance, so a background thread working for a GUI leaves
    it the GIL and the CPU between steps (the app's figure and embedding workers)."""

    def __init__(self, progress: Progress, pause_s: float) -> None:
        self.progress = progress
        self.pause_s = pause_s

    def start(self, label: str, total: int | None) -> None:
        self.progress.start(label, total)

    def advance(self, amount: int = 1, note: str = "") -> None:
        self.progress.advance(amount, note)
        time.sleep(self.pause_s)

    def cancelled(self) -> bool:
        return self.progress.cancelled()


class StopProgress(NullProgress):
    """Shows nothing; cancelled once `stop` is set (a thread stopped from another one)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def cancelled(self) -> bool:
        return self.stop.is_set()
