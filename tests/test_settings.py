"""The app's settings file: every key the app writes comes back after a restart (#14: the
Synthesize dialog's server and `target_embeddings` used to be dropped on load)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from bondscope.services.settings import (
    DEFAULT_SHORTCUTS,
    Settings,
    load_settings,
    save_settings,
    settings_path,
)

# A value unlike the default for every field: a new field without one here fails the test below.
CHANGED = {
    "annotator": "alice",
    "last_project": "/projects/mine.bondscope",
    "key_bindings": {"x": "D", "y": "E"},
    "shortcuts": {**DEFAULT_SHORTCUTS, "undo": ["Ctrl+U"], "help": []},
    "window": {"geometry": "AdnQyw==", "state": "AAAA/w=="},
    "synthesis": {
        "questions": "/data/q.jsonl",
        "base_url": "http://127.0.0.1:9000/v1",
        "model": "Qwen/Qwen2.5-7B-Instruct",
        "api_key_env": "MY_KEY",
    },
    "target_embeddings": False,
    "unknown": {"from_a_newer_version": {"kept": [1, 2]}},
}


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_every_key_survives_a_save_and_load() -> None:
    assert set(CHANGED) == {f.name for f in fields(Settings)}
    defaults = Settings()
    for name, value in CHANGED.items():
        assert getattr(defaults, name) != value, name
    save_settings(Settings(**CHANGED))
    assert load_settings() == Settings(**CHANGED)
    stored = json.loads(settings_path().read_text(encoding="utf-8"))
    assert stored["synthesis"]["base_url"] == "http://127.0.0.1:9000/v1"
    assert stored["target_embeddings"] is False
    assert stored["from_a_newer_version"] == {"kept": [1, 2]}  # written back as it was read
    assert "unknown" not in stored


def test_values_of_the_wrong_type_fall_back_to_their_defaults() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    stored = {
        "annotator": 7,
        "key_bindings": {"x": 1},
        "window": "not a dict",
        "synthesis": {"base_url": None},
        "target_embeddings": "yes",
        "last_project": "/p.bondscope",
    }
    path.write_text(json.dumps(stored), encoding="utf-8")
    loaded = load_settings()
    expected = Settings(last_project="/p.bondscope")
    for name in ("annotator", "key_bindings", "window", "synthesis", "target_embeddings"):
        assert getattr(loaded, name) == getattr(expected, name), name
    assert loaded.last_project == "/p.bondscope"


def test_shortcuts_merge_per_action() -> None:
    """A file from before an action existed still gets that action's keys; a broken or unknown
    action entry is dropped alone."""
    path = settings_path()
    path.parent.mkdir(parents=True)
    shortcuts = {"undo": ["Ctrl+U"], "redo": "Ctrl+Y", "teleport": ["T"]}
    path.write_text(json.dumps({"shortcuts": shortcuts}), encoding="utf-8")
    loaded = load_settings().shortcuts
    assert loaded == {**DEFAULT_SHORTCUTS, "undo": ["Ctrl+U"]}


def test_a_missing_or_broken_file_gives_the_defaults() -> None:
    assert load_settings() == Settings()
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2]", encoding="utf-8")
    assert load_settings() == Settings()
