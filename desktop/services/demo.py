"""The bundled demo project and where the app keeps projects (no Qt).

A first start should show real traces at once, so the app opens a demo project built from
`bondscope.resources/demo/demo.jsonl` (three Thought Anchors traces, MIT; see its LICENSE.md).
Paths follow the XDG base directories, so tests redirect everything by setting XDG_* variables.
"""

from __future__ import annotations

import os
from importlib.resources import as_file, files
from pathlib import Path

from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.services.settings import APP, load_settings
from bondscope.store import Store

DEMO_ANNOTATOR = "thought-anchors-gpt4o"  # the LLM whose labels the demo traces carry


def data_dir() -> Path:
    """Where projects live by default: $XDG_DATA_HOME/bondscope (~/.local/share/bondscope)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / APP


def demo_project_path() -> Path:
    return data_dir() / "demo.bondscope"


def ensure_demo_project(path: Path | None = None) -> Path:
    """Build the demo project at `path` (default: the data dir) unless it already exists."""
    path = path or demo_project_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and moved into place, so a failed build is retried next time.
    staging = path.with_name(path.name + ".building")
    staging.unlink(missing_ok=True)
    demo = files("bondscope.resources") / "demo" / "demo.jsonl"
    with as_file(demo) as source, Store(staging) as store, store.transaction():
        import_paths(store, Plugins(), [source], format="bondscope-jsonl")
        # bondscope-jsonl does not say which annotators are models; the demo's one is.
        store.conn.execute("UPDATE annotators SET kind = 'model' WHERE name = ?", (DEMO_ANNOTATOR,))
    staging.replace(path)
    return path


def default_project() -> Path:
    """The last opened project if it still exists, else the demo project (built if needed)."""
    last = load_settings().last_project
    if isinstance(last, str) and Path(last).is_file():
        return Path(last)
    return ensure_demo_project()
