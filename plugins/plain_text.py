"""Plain text files: one trace per file, segmented on import.

Auto-detection claims only `.txt` files, so a README or LICENSE in a data folder is not taken for a
trace; `--format text` reads any file as text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bondscope import hookimpl
from bondscope.domain import InputError, Trace

SUFFIXES = {".txt", ".text"}


class PlainTextImporter:
    name = "text"
    description = "plain text files (.txt), one trace each"

    def detect(self, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() in SUFFIXES

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            raise InputError("invalid UTF-8", path, line) from None
        if not text.strip():
            raise InputError("file is empty", path)
        yield Trace(
            id=path.stem,
            text=text,
            model=options.get("model", ""),
            source=options.get("source", "") or "text",
            meta={"file": path.name},
        )


@hookimpl
def register_importers(register):
    register(PlainTextImporter())
