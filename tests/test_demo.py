"""The bundled demo project and the XDG locations of projects and settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from bondscope.services import demo
from bondscope.services.settings import load_settings, save_settings, settings_path
from bondscope.store import Store


@pytest.fixture(autouse=True)
def xdg_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_demo_project_is_built_once_in_the_data_dir(tmp_path: Path) -> None:
    path = demo.ensure_demo_project()
    assert path == tmp_path / "data" / "bondscope" / "demo.bondscope"
    with Store(path) as store:
        assert store.count("SELECT COUNT(*) FROM traces") == 3
        assert {r[0] for r in store.conn.execute("SELECT model FROM traces")} == {
            "deepseek-r1-distill-llama-8b",
            "deepseek-r1-distill-qwen-14b",
            "deepseek-r1",
        }
        kind = store.conn.execute(
            "SELECT kind FROM annotators WHERE name = ?", (demo.DEMO_ANNOTATOR,)
        ).fetchone()[0]
        assert kind == "model"
        store.conn.execute("INSERT INTO runs (kind, started_at) VALUES ('marker', 'now')")
    assert demo.ensure_demo_project() == path  # not rebuilt: the marker survives
    with Store(path) as store:
        assert store.count("SELECT COUNT(*) FROM runs WHERE kind = 'marker'") == 1
    assert not list(path.parent.glob("*.building"))


def test_settings_round_trip_and_defaults(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.annotator is None
    assert settings.key_bindings["3"] == "R"
    settings.annotator = "alice"
    settings.last_project = str(tmp_path / "p.bondscope")
    save_settings(settings)
    assert (tmp_path / "config" / "bondscope" / "settings.json").is_file()
    assert load_settings().annotator == "alice"


def test_broken_settings_file_gives_defaults() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    assert load_settings().annotator is None


def test_default_project_is_the_last_one_if_it_still_exists(tmp_path: Path) -> None:
    assert demo.default_project() == demo.demo_project_path()
    last = tmp_path / "mine.bondscope"
    Store(last).close()
    settings = load_settings()
    settings.last_project = str(last)
    save_settings(settings)
    assert demo.default_project() == last
    last.unlink()
    assert demo.default_project() == demo.demo_project_path()
