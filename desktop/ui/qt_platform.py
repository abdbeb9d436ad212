"""Will Qt's platform plugin load? Checked before the QApplication exists, without importing Qt.

When Qt cannot load its platform plugin it prints "Could not load the Qt platform plugin" and
aborts the process: nothing after that runs, not even an error handler. On a fresh Debian or
Ubuntu machine under X that is what happens, because the xcb plugin of PySide6 6.5+ needs
libxcb-cursor0 and a few other X libraries that a desktop install may lack. So the app loads the
plugin's library itself first (a failed load leaves nothing behind) and, when the dynamic loader
refuses it, says which system packages to install instead of letting Qt abort.
"""

from __future__ import annotations

import ctypes
import importlib.util
from collections.abc import Mapping
from pathlib import Path

# What the xcb platform plugin needs on Debian/Ubuntu (PySide6's libqxcb.so and the libraries it
# links), as the README's set-up section lists them.
XCB_PACKAGES = (
    "libxcb-cursor0",
    "libxkbcommon-x11-0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xfixes0",
    "libxcb-xinerama0",
    "libegl1",
    "libgl1",
    "libdbus-1-3",
)


def platform_name(environ: Mapping[str, str]) -> str:
    """The platform Qt tries first: QT_QPA_PLATFORM's first entry ("xcb:arg" -> "xcb"), else
    wayland in a Wayland session, else xcb (Qt's default on Linux)."""
    requested = environ.get("QT_QPA_PLATFORM", "")
    if requested:
        return requested.split(";")[0].split(":")[0]
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def xcb_plugin(environ: Mapping[str, str]) -> Path | None:
    """The xcb plugin Qt would load: from QT_QPA_PLATFORM_PLUGIN_PATH when set, else PySide6's
    own; None when PySide6 is not installed."""
    folder = environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if folder:
        return Path(folder) / "libqxcb.so"
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "Qt" / "plugins" / "platforms" / "libqxcb.so"


def load_error(library: Path) -> str | None:
    """Why the dynamic loader refuses `library` (e.g. "libxcb-cursor.so.0: cannot open shared
    object file"); None when it loads, or when there is no such file (nothing to say then)."""
    if not library.is_file():
        return None
    try:
        ctypes.CDLL(str(library))
    except OSError as error:
        return str(error)
    return None


def platform_hint(platform: str, error: str | None) -> str | None:
    """What to print instead of letting Qt abort: None unless the xcb plugin cannot load."""
    if platform != "xcb" or error is None:
        return None
    return (
        f"bondscope: Qt cannot load its xcb platform plugin ({error}).\n"
        "On Debian or Ubuntu, install the X11 libraries it needs:\n"
        f"  sudo apt-get install {' '.join(XCB_PACKAGES)}\n"
        "Without them the CLI still works (`bondscope --help`), and the app renders offscreen:\n"
        "`bondscope gui --screenshot out.png`."
    )


def platform_problem(environ: Mapping[str, str]) -> str | None:
    """The hint for this environment; the plugin is loaded only when xcb is the platform."""
    platform = platform_name(environ)
    if platform != "xcb":
        return None
    plugin = xcb_plugin(environ)
    return platform_hint(platform, None if plugin is None else load_error(plugin))
