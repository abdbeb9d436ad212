"""Streaming readers for JSON Lines and for large top-level JSON arrays, and `json_safe`.

Importers use the readers so a file of hundreds of MB is read record by record, never loaded
whole, and every error names the file and the line where the bad record starts. `json_safe` is
the one conversion of what Bondscope itself writes as JSON (the CLI's `--json`, run summaries).
"""

from __future__ import annotations

import codecs
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bondscope.domain import InputError
from bondscope.parquetio import is_parquet, iter_parquet

CHUNK_SIZE = 1 << 20
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


class StrictJSONError(ValueError):
    """Valid for Python's parser, wrong for data: a repeated key or NaN/Infinity."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: Python keeps only the last of repeated keys,
    which silently drops data (e.g. a second `labels`)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise StrictJSONError(f"invalid JSON: the key {repeated!r} appears twice in one object")
    return obj


def _no_constant(name: str) -> Any:
    raise StrictJSONError(f"invalid JSON: {name} is not a JSON number")


# What every record is parsed with: standard JSON only.
loads = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant).decode


def json_safe(value: Any) -> Any:
    """`value` as strict JSON can hold it: NaN, Infinity and -Infinity become null, tuples
    become lists, numpy scalars and arrays plain Python values, at any depth.

    JSON has no NaN: `json.dumps` would write `NaN`, which Python reads back but `jq`,
    JavaScript and other JSON parsers refuse. Null is what the numbers mean here: an undefined
    correlation, a rate over nothing.
    """
    numpy = sys.modules.get("numpy")  # no numpy value exists before numpy is imported
    if numpy is not None and isinstance(value, numpy.generic | numpy.ndarray):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for each non-blank line."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(
                    f"invalid UTF-8 at byte {error.start} of the line", path, number
                ) from None
            del raw  # a record may be hundreds of MB: keep one copy of it, not three
            if not line or line.isspace():
                continue
            try:
                value = loads(line)
            except json.JSONDecodeError as error:
                raise InputError(
                    f"invalid JSON: {error.msg} (column {error.colno})", path, number
                ) from None
            except StrictJSONError as error:
                raise InputError(str(error), path, number) from None
            except (ValueError, RecursionError) as error:
                raise InputError(unparsable_message(error), path, number) from None
            del line
            yield number, value


class _TextStream:
    """Incrementally decoded text with a line counter for what has been consumed."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.buffer = ""
        self.position = 0
        self.line = 1  # line number at self.position
        self.eof = False

    def read_more(self) -> bool:
        if self.eof:
            return False
        data = self.handle.read(CHUNK_SIZE)
        final = not data
        try:
            text = self.decoder.decode(data, final=final)
        except UnicodeDecodeError as error:
            pending = self.buffer[self.position :]
            line = self.line + pending.count("\n") + data[: error.start].count(b"\n")
            raise InputError("invalid UTF-8", self.path, line) from None
        if self.position > CHUNK_SIZE:
            self.buffer = self.buffer[self.position :]
            self.position = 0
        self.buffer += text
        self.eof = final
        return True

    def advance(self, to: int) -> None:
        self.line += self.buffer.count("\n", self.position, to)
        self.position = to

    def skip_space(self) -> str:
        """The next non-whitespace character (consumed up to it), or '' at end of input."""
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position].isspace():
                if self.buffer[self.position] == "\n":
                    self.line += 1
                self.position += 1
            if self.position < len(self.buffer):
                return self.buffer[self.position]
            if not self.read_more():
                return ""


def iter_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each element of a top-level JSON array, read incrementally."""
    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    with open(path, "rb") as handle:
        stream = _TextStream(path, handle)
        if stream.skip_space() != "[":
            raise InputError("expected a JSON array", path, stream.line)
        stream.advance(stream.position + 1)
        first = True
        while True:
            char = stream.skip_space()
            if char == "]":
                stream.advance(stream.position + 1)
                break
            if not first:
                if char != ",":
                    raise InputError("invalid JSON: expected ',' or ']'", path, stream.line)
                stream.advance(stream.position + 1)
                char = stream.skip_space()
            if char == "":
                raise InputError("invalid JSON: the array is not closed", path, stream.line)
            first = False
            while True:
                try:
                    value, end = decoder.raw_decode(stream.buffer, stream.position)
                    break
                except StrictJSONError as error:
                    raise InputError(str(error), path, stream.line) from None
                except (RecursionError, ValueError) as error:
                    if not isinstance(error, json.JSONDecodeError):
                        raise InputError(unparsable_message(error), path, stream.line) from None
                    if not stream.read_more():
                        buffer_first_line = stream.line - stream.buffer.count(
                            "\n", 0, stream.position
                        )
                        line = buffer_first_line + error.lineno - 1
                        raise InputError(f"invalid JSON: {error.msg}", path, line) from None
            line = stream.line
            stream.advance(end)
            yield line, value
        if stream.skip_space() != "":
            raise InputError("invalid JSON: extra data after the array", path, stream.line)


def iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Records of a .jsonl file, of a top-level JSON array, a single JSON object, or the rows of
    a Parquet file (see parquetio)."""
    if is_parquet(path):
        yield from iter_parquet(path)
        return
    if path.suffix.lower() in JSONL_SUFFIXES:
        yield from iter_jsonl(path)
        return
    first = _first_char(path)
    if first == "[":
        yield from iter_json_array(path)
    elif first == "{":
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            yield 1, loads(text)
        except UnicodeDecodeError:
            yield from iter_jsonl(path)  # reports the line of the bad byte
        except json.JSONDecodeError as error:
            if error.msg != "Extra data":
                raise InputError(f"invalid JSON: {error.msg}", path, error.lineno) from None
            yield from iter_jsonl(path)  # several objects: JSON Lines under another suffix
        except StrictJSONError as error:
            raise InputError(str(error), path) from None
        except (ValueError, RecursionError) as error:
            raise InputError(unparsable_message(error), path) from None
    elif first == "":
        raise InputError("file is empty", path)
    else:
        raise InputError("expected JSON (an object, an array or JSON Lines)", path, 1)


def unparsable_message(error: ValueError | RecursionError) -> str:
    """Valid JSON syntax that Python will not parse: a too-deep nesting or a huge integer."""
    if isinstance(error, RecursionError):
        return "invalid JSON: nested too deeply"
    return f"invalid JSON: {str(error).split(':')[0]}"  # e.g. an integer of 5,000 digits


def first_record(path: Path) -> Any | None:
    """The first record, for format detection; None if the file is not JSON of that shape."""
    try:
        for _, record in iter_json_records(path):
            return record
    except (InputError, OSError):
        return None
    return None


def _first_char(path: Path) -> str:
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(4096)
            if not chunk:
                return ""
            stripped = chunk.lstrip()
            if stripped:
                return chr(stripped[0]) if stripped[0] < 128 else "?"
