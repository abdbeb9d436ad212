"""The bundled demo project and where the app keeps projects and settings (no Qt).

A first start should show real traces at once, so the app opens a demo project built from
`bondscope.resources/demo/demo.jsonl` (three Thought Anchors traces, MIT; see its LICENSE.md).
Paths follow the XDG base directories, so tests redirect everything by setting XDG_* variables.
"""

from __future__ import annotations

import json
import os
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store

APP = "bondscope"
DEMO_ANNOTATOR = "thought-anchors-gpt4o"  # the LLM whose labels the demo traces carry
DEFAULT_KEY_BINDINGS: dict[str, str] = {
    "1": "N",
    "2": "D",
    "3": "R",
    "4": "E",
    "n": "N",
    "d": "D",
    "r": "R",
    "e": "E",
}
# Keys of the other labeling actions, by action: Qt key-sequence strings (PortableText), the
# first one shown in menus. Label keys stay in `key_bindings` (key -> behavior), as before.
DEFAULT_SHORTCUTS: dict[str, list[str]] = {
    "accept": ["Return", "Enter"],
    "clear": ["Delete", "Backspace"],
    "down": ["J", "Down"],
    "up": ["K", "Up"],
    "unlabeled": ["]"],
    "low_confidence": ["}"],
    "undo": ["Ctrl+Z"],
    "redo": ["Ctrl+Shift+Z"],
    "help": ["?"],
}


def data_dir() -> Path:
    """Where projects live by default: $XDG_DATA_HOME/bondscope (~/.local/share/bondscope)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / APP


def config_dir() -> Path:
    """Where settings live: $XDG_CONFIG_HOME/bondscope (~/.config/bondscope)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
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


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings() -> dict[str, Any]:
    """Annotator name, last project and key bindings; a missing or broken file gives defaults.

    `shortcuts` is merged per action, so a file written before an action existed still gets
    that action's default keys.
    """
    settings: dict[str, Any] = {
        "annotator": None,
        "last_project": None,
        "key_bindings": dict(DEFAULT_KEY_BINDINGS),
        "shortcuts": {action: list(keys) for action, keys in DEFAULT_SHORTCUTS.items()},
        "window": None,  # the main window's geometry and dock layout (base64), from its last close
    }
    try:
        stored = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return settings
    if isinstance(stored, dict):
        shortcuts = stored.pop("shortcuts", None)
        settings.update({k: v for k, v in stored.items() if k in settings})
        if isinstance(shortcuts, dict):
            settings["shortcuts"].update(
                {
                    k: v
                    for k, v in shortcuts.items()
                    if k in DEFAULT_SHORTCUTS and isinstance(v, list)
                }
            )
    return settings


def save_settings(settings: dict[str, Any]) -> None:
    """Write atomically, so a crash never leaves a half-written settings file."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(settings, indent=2, sort_keys=True), encoding="utf-8")
    staging.replace(path)


def default_project() -> Path:
    """The last opened project if it still exists, else the demo project (built if needed)."""
    last = load_settings().get("last_project")
    if isinstance(last, str) and Path(last).is_file():
        return Path(last)
    return ensure_demo_project()
