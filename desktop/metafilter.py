"""Selecting traces by their metadata: `--where meta.KEY=VALUE` and `--by meta.KEY`.

Conditions are SQL over the JSON in `traces.meta` (SQLite's json_extract), so a selection of a
million traces is one query. The user's text only ever reaches SQL as bound parameters: the key
becomes a quoted JSON path parameter, the value a parameter too.

A value matches when it equals the stored JSON value read as JSON (`true`, `3`, `null`) or its
text as written (`True` also matches the string "True" that some datasets store). Traces without
the key match no value; `--by meta.KEY` shows them as their own group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bondscope.domain import InputError

PREFIX = "meta."
MISSING = "(missing)"


@dataclass(frozen=True)
class MetaFilter:
    """`meta.KEY=VALUE`; `value` None selects the traces that have no KEY (a `--by` group)."""

    key: str
    value: str | None

    def describe(self) -> str:
        return f"{PREFIX}{self.key}={MISSING if self.value is None else self.value}"


def meta_key(text: str, option: str) -> str:
    """KEY of `meta.KEY` (dots go into nested objects); InputError otherwise."""
    if not text.startswith(PREFIX) or len(text) == len(PREFIX):
        raise InputError(f"expected meta.KEY, got {text!r}", field=option)
    key = text[len(PREFIX) :]
    if any(not part for part in key.split(".")):
        raise InputError(f"empty key part in {text!r}", field=option)
    return key


def parse_where(text: str) -> MetaFilter:
    """`meta.KEY=VALUE` as typed on the command line."""
    left, sep, value = text.partition("=")
    if not sep:
        raise InputError(f"expected meta.KEY=VALUE, got {text!r}", field="--where")
    return MetaFilter(meta_key(left.strip(), "--where"), value.strip())


def json_path(key: str) -> str:
    """A JSON path with every part quoted, so no key character has a meaning to SQLite."""
    return "$" + "".join("." + json.dumps(part) for part in key.split("."))


def typed(value: str) -> Any:
    """The value read as JSON when it parses (true, 3, "x"), Python's True/False too; else the
    text. Booleans become 1/0, which is what json_extract returns for true/false."""
    lowered = value.lower()
    if lowered in ("true", "false"):
        return int(lowered == "true")
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    if isinstance(parsed, dict | list):
        return json.dumps(parsed, separators=(",", ":"))
    return parsed


def condition(column: str, where: MetaFilter) -> tuple[str, list[Any]]:
    """SQL (on the meta column `column`) true for the traces that `where` selects."""
    path = json_path(where.key)
    if where.value is None:
        return f"json_type({column}, ?) IS NULL", [path]
    value = typed(where.value)
    if value is None:
        return f"json_type({column}, ?) = 'null'", [path]
    return (
        f"(json_extract({column}, ?) = ? OR CAST(json_extract({column}, ?) AS TEXT) = ?)",
        [path, value, path, where.value],
    )


def conditions(column: str, filters: tuple[MetaFilter, ...]) -> tuple[list[str], list[Any]]:
    clauses, params = [], []
    for where in filters:
        clause, values = condition(column, where)
        clauses.append(clause)
        params.extend(values)
    return clauses, params


def group_value_sql(column: str) -> str:
    """The value of a key as `--by` shows it: true/false/null spelled as JSON, else the value as
    text; NULL when the key is missing. Two parameters, both the JSON path."""
    return (
        f"CASE json_type({column}, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"WHEN 'null' THEN 'null' ELSE CAST(json_extract({column}, ?) AS TEXT) END"
    )
