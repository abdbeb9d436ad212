"""The app's settings (no Qt): one typed object, read from and written to one JSON file.

Every key the app writes is a field of `Settings`, so a restart gives back what was saved (a key
left out of the object would be dropped at the next start). A value of the wrong type falls back
to its default, a broken file to all defaults; keys this version does not know (a newer
version's) are kept and written back. The file lives in the XDG config directory, so tests
redirect it by setting XDG_CONFIG_HOME.
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

APP = "bondscope"
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


def config_dir() -> Path:
    """Where settings live: $XDG_CONFIG_HOME/bondscope (~/.config/bondscope)."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / APP


def settings_path() -> Path:
    return config_dir() / "settings.json"


def _default_shortcuts() -> dict[str, list[str]]:
    return {action: list(keys) for action, keys in DEFAULT_SHORTCUTS.items()}


@dataclass
class Settings:
    """What the app remembers between runs; the field names are the file's keys."""

    annotator: str | None = None  # who labels: asked at the first start
    last_project: str | None = None  # opened at the next start (resolved path)
    key_bindings: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_KEY_BINDINGS))
    shortcuts: dict[str, list[str]] = field(default_factory=_default_shortcuts)  # action -> keys
    window: dict[str, str] | None = None  # geometry and dock layout (base64), from the last close
    # The Synthesize dialog's last questions file, base_url, model and api_key_env (a name only).
    synthesis: dict[str, str] | None = None
    target_embeddings: bool = True  # rank R targets by step embeddings (False: TF-IDF only)
    unknown: dict[str, Any] = field(default_factory=dict)  # other keys of the file, kept as read

    def to_json(self) -> dict[str, Any]:
        data = {**self.unknown}
        data.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "unknown"})
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        """The stored values that have the field's type; `shortcuts` is merged per action, so a
        file written before an action existed still gets that action's default keys."""
        hints = typing.get_type_hints(cls)
        names = [f.name for f in fields(cls) if f.name != "unknown"]
        settings = cls(unknown={k: v for k, v in data.items() if k not in names})
        for name in names:
            value = data.get(name)
            if name == "shortcuts" and isinstance(value, dict):
                value = settings.shortcuts | {
                    k: v for k, v in value.items() if k in DEFAULT_SHORTCUTS and _fits(v, list[str])
                }
            if name in data and _fits(value, hints[name]):
                setattr(settings, name, value)
        return settings


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type `hint` (str, bool, None, dict and list of those)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is dict:
        return isinstance(value, dict) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()
        )
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)


def load_settings() -> Settings:
    """The saved settings; a missing or broken file gives the defaults."""
    try:
        stored = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    return Settings.from_json(stored) if isinstance(stored, dict) else Settings()


def save_settings(settings: Settings) -> None:
    """Write atomically, so a crash never leaves a half-written settings file."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(settings.to_json(), indent=2, sort_keys=True), encoding="utf-8")
    staging.replace(path)
