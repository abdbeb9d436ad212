"""The app's shared colors: one per behavior and per bond type, and the legend that names them.

The trace view, minimap, bond gutter, structure panel and metrics plots all draw with these, so a
behavior looks the same everywhere.
"""

from __future__ import annotations

from PySide6.QtGui import QColor

BEHAVIOR_COLORS = {
    "N": QColor("#9e9e9e"),
    "D": QColor("#1e88e5"),
    "R": QColor("#fb8c00"),
    "E": QColor("#8e24aa"),
}
# Hydrogen bonds are what an R step forms, vdw bonds what an E step forms: same colors.
BOND_COLORS = {
    "hydrogen": BEHAVIOR_COLORS["R"],
    "vdw": BEHAVIOR_COLORS["E"],
    "covalent": QColor("#607d8b"),
}
LEGEND_NAMES = {"N": "normal", "D": "deep", "R": "reflection", "E": "exploration"}


def legend_html(key_bindings: dict[str, str]) -> str:
    """The four behavior colors with the keys that set them, and the two bond colors."""
    parts = []
    for behavior, name in LEGEND_NAMES.items():
        keys = "/".join(key for key, value in key_bindings.items() if value == behavior)
        color = BEHAVIOR_COLORS[behavior].name()
        parts.append(
            f"<span style='color:{color}'>&#9632;</span>&nbsp;<b>{behavior}</b>&nbsp;{name}"
            + (f"&nbsp;<code>[{keys}]</code>" if keys else "")
        )
    for type_ in ("hydrogen", "vdw"):
        color = BOND_COLORS[type_].name()
        parts.append(f"<span style='color:{color}'>&#8630;</span>&nbsp;{type_}")
    return "&nbsp;&nbsp;&nbsp;".join(parts)
