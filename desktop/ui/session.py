"""What the window shows, shared with the controllers and flows that act on it."""

from __future__ import annotations

from dataclasses import dataclass

from bondscope.store import Store


@dataclass
class Session:
    """The open project, whose labels are shown and written, which trace is shown. The window
    writes it; the controllers and flows read it at each action, so none keeps a stale copy."""

    store: Store | None = None
    annotator: str = ""
    trace_id: int | None = None

    def require_store(self) -> Store:
        """The open project (an action only runs while one is open)."""
        assert self.store is not None
        return self.store
