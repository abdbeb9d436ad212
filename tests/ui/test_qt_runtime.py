"""Guards against a Qt binding that corrupts CPython's reference count of None.

PySide6 6.12.0 under CPython 3.11 drops a reference to None on every call of a void Qt method;
a few thousand calls into a session CPython aborts ("none_dealloc"). pyproject.toml excludes it.
"""

import sys

from PySide6.QtGui import QFont


def test_void_qt_calls_keep_none_alive():
    font = QFont()
    before = sys.getrefcount(None)
    for _ in range(1000):
        font.setBold(True)
    assert sys.getrefcount(None) - before > -10
