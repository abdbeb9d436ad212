"""Plain text files: one trace per file, segmented on import.

Auto-detection claims only `.txt` files, so a README or LICENSE in a data folder is not taken for a
trace; `--format text` reads any file as text, except one that parses as JSON or JSON Lines (that
would become one trace of JSON syntax). Stratos tags and gpt-oss harmony channels are rewritten to
`<think>` like in the other importers (`-o think=...`, see bondscope.thinking).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from bondscope import hookimpl
from bondscope.domain import InputError, Trace
from bondscope.thinking import normalized, parse_style

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
        if parses_as_json(text):
            raise InputError(
                "parses as JSON / JSON Lines, not plain text; leave out --format to detect "
                "its importer (or pass --format r1-json, chat, ...)",
                path,
            )
        try:
            style = parse_style(options.get("think"))
        except ValueError as error:
            raise InputError(str(error), path, field="think") from None
        yield Trace(
            id=path.stem,
            text=normalized(text, style),
            model=options.get("model", ""),
            source=options.get("source", "") or "text",
            meta={"file": path.name},
        )


def parses_as_json(text: str) -> bool:
    """A JSON object or array, or JSON Lines whose first line is one."""
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return False
    first_line = stripped.split("\n", 1)[0]
    for candidate in (stripped, first_line):
        try:
            if isinstance(json.loads(candidate), dict | list):
                return True
        except (ValueError, RecursionError):
            continue
    return False


@hookimpl
def register_importers(register):
    register(PlainTextImporter())
