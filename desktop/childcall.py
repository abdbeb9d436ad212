"""A service read run in a child Python, its result handed back without pickle.

The app runs the long whole-project reads of a large project and the geometry of a trace here
(`call_in_child`), so numpy, sqlite3 and t-SNE in the child never hold the GUI process's GIL. The
keyword arguments go in as JSON on stdin; the result, a dataclass of numbers, strings, None, numpy
arrays and dataclasses of those, comes back on stdout as an .npz loaded with `allow_pickle=False`:
nothing read can run code (docs/reliability.md). No Qt here: services start children too.

The child runs as `python -m bondscope.childcall MODULE FUNCTION PROJECT NICE`:
`FUNCTION(Store(PROJECT), **kwargs)` at the CPU priority NICE (empty: the parent's).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import numpy as np
from bondscope.progress import Cancelled

T = TypeVar("T")
NONE_KEY = "__none__"  # the fields that were None, as a JSON list (an .npz holds no None)
NICE = 19  # background work's nice value (Linux): the GUI thread comes first


def encode(result: Any) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    nones: list[str] = []

    def add(obj: Any, prefix: str) -> None:
        for f in fields(obj):
            value, key = getattr(obj, f.name), prefix + f.name
            if is_dataclass(value):
                add(value, key + ".")
            elif value is None:
                nones.append(key)
            else:
                arrays[key] = np.asarray(value)

    add(result, "")
    arrays[NONE_KEY] = np.asarray(json.dumps(nones))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode(data: bytes, result_type: type[T]) -> T:
    arrays = np.load(io.BytesIO(data), allow_pickle=False)
    nones = set(json.loads(arrays[NONE_KEY].item()))

    def build(kind: type, prefix: str) -> Any:
        hints = get_type_hints(kind)
        values = {}
        for f in fields(kind):
            key, hint = prefix + f.name, hints[f.name]
            if key in nones:
                values[f.name] = None
            elif isinstance(hint, type) and is_dataclass(hint):
                values[f.name] = build(hint, key + ".")
            else:
                array = arrays[key]
                values[f.name] = array.item() if array.ndim == 0 else array
        return kind(**values)

    return build(result_type, "")


def call_in_child(
    project: Path,
    function: Callable[..., T],
    kwargs: dict[str, Any],
    result_type: type[T],
    cancel: threading.Event | None = None,
    *,
    nice: int | None = NICE,
    env: dict[str, str] | None = None,
) -> T:
    """`function(Store(project), **kwargs)` run in a child Python at priority `nice` (None:
    this process's), with `env` added to this process's environment. A GUI thread that calls
    into Python for every cell it paints would otherwise queue behind numpy and sqlite3 holding
    the GIL. Raises Cancelled when `cancel` is set (the child is killed), RuntimeError with the
    child's last error line."""
    command = [sys.executable, "-m", "bondscope.childcall", function.__module__, function.__name__]
    process = subprocess.Popen(
        [*command, str(project), "" if nice is None else str(nice)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env} if env else None,
    )
    outputs: list[bytes] = []
    talker = threading.Thread(
        target=lambda: outputs.extend(process.communicate(json.dumps(kwargs).encode())),
        daemon=True,
    )
    talker.start()
    while talker.is_alive():
        talker.join(0.05)
        if cancel is not None and cancel.is_set():
            process.kill()
            talker.join()
            raise Cancelled()
    out, err = outputs
    if process.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {process.returncode}")
    return decode(out, result_type)


def main(argv: list[str]) -> None:
    module, function, project, nice = argv
    if nice and hasattr(os, "setpriority"):  # not permitted in some sandboxes: the default one
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    from bondscope.store import Store

    kwargs = json.loads(sys.stdin.buffer.read())
    with Store(project, create=False) as store:
        result = getattr(import_module(module), function)(store, **kwargs)
    sys.stdout.buffer.write(encode(result))


if __name__ == "__main__":
    main(sys.argv[1:])
