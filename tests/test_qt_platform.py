"""The hint for a machine where Qt's xcb platform plugin cannot load (no display needed).

Qt aborts the process when its platform plugin fails to load, so the app checks the plugin's
library first and names the Debian/Ubuntu packages to install instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bondscope.ui.qt_platform import (
    XCB_PACKAGES,
    load_error,
    platform_hint,
    platform_name,
    platform_problem,
    xcb_plugin,
)

README = Path(__file__).resolve().parents[1] / "README.md"
MISSING = "libxcb-cursor.so.0: cannot open shared object file: No such file or directory"


def test_the_platform_qt_tries_first() -> None:
    assert platform_name({}) == "xcb"
    assert platform_name({"DISPLAY": ":0"}) == "xcb"
    assert platform_name({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert platform_name({"QT_QPA_PLATFORM": "xcb:nograb"}) == "xcb"
    assert platform_name({"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}
    assert platform_name(wayland) == "wayland"


def test_the_hint_names_the_error_and_the_packages() -> None:
    hint = platform_hint("xcb", MISSING)
    assert hint is not None
    assert MISSING in hint
    assert "sudo apt-get install " + " ".join(XCB_PACKAGES) in hint
    assert "libxcb-cursor0" in XCB_PACKAGES and "libxkbcommon-x11-0" in XCB_PACKAGES
    assert "--screenshot" in hint  # what works without the packages
    assert platform_hint("xcb", None) is None  # the plugin loads: nothing to say
    assert platform_hint("offscreen", MISSING) is None  # another platform: not our business
    assert platform_hint("wayland", MISSING) is None


def test_only_the_xcb_platform_is_checked(tmp_path: Path) -> None:
    """The same broken plugin: offscreen (tests, --screenshot) and Wayland go on, xcb stops."""
    (tmp_path / "libqxcb.so").write_bytes(b"not a shared object")
    plugins = {"QT_QPA_PLATFORM_PLUGIN_PATH": str(tmp_path)}
    assert platform_problem({**plugins, "QT_QPA_PLATFORM": "offscreen"}) is None
    assert platform_problem({**plugins, "QT_QPA_PLATFORM": "wayland"}) is None
    hint = platform_problem({**plugins, "DISPLAY": ":0"})
    assert hint is not None and str(tmp_path / "libqxcb.so") in hint


def test_the_loader_is_asked_for_real(tmp_path: Path) -> None:
    broken = tmp_path / "libqxcb.so"
    broken.write_bytes(b"not a shared object")
    assert load_error(broken)  # the loader's own words
    assert load_error(tmp_path / "absent.so") is None  # no plugin there: nothing to say
    plugin = xcb_plugin({})
    assert plugin is not None and plugin.name == "libqxcb.so" and plugin.is_file()
    offscreen = plugin.with_name("libqoffscreen.so")  # needs no X library: loads everywhere
    assert load_error(offscreen) is None


def test_the_app_prints_the_hint_instead_of_aborting(tmp_path: Path) -> None:
    """A display is set but the xcb plugin cannot load: the app exits with the hint, before
    Qt would abort() the process (exit status 1, not SIGABRT)."""
    plugins = tmp_path / "platforms"
    plugins.mkdir()
    (plugins / "libqxcb.so").write_bytes(b"not a shared object")
    environ = {
        k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")
    }
    environ.update(
        DISPLAY=":99",
        QT_QPA_PLATFORM_PLUGIN_PATH=str(plugins),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        BONDSCOPE_NO_PROMPT="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from bondscope.ui.app import run; raise SystemExit(run())"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "cannot load its xcb platform plugin" in done.stderr
    assert "libxcb-cursor0" in done.stderr
    assert "Could not load the Qt platform plugin" not in done.stderr  # Qt never started
    assert not (tmp_path / "data").exists()  # nothing was built or opened


def test_the_readme_set_up_names_the_same_packages() -> None:
    text = README.read_text(encoding="utf-8")
    set_up = text[text.index("## Set up") : text.index("\n## ", text.index("## Set up") + 1)]
    command = set_up[set_up.index("sudo apt-get install") :].split("```")[0].replace("\\\n", " ")
    assert command.split()[3:] == list(XCB_PACKAGES)
