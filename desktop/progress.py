"""How long-running services report progress and learn that the user cancelled.

The CLI shows a terminal bar, the app a progress dialog; services only see this protocol.
"""

from __future__ import annotations

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
