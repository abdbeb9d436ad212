"""Import a folder written by the `parquet` exporter (traces, steps, labels, bonds tables).

This is what takes `bondscope export --format parquet` and the shards of `bondscope batch
prelabel` back into a project. The four tables are streamed by record batch, side by side: the
exporter writes every table in trace order, so the steps, labels and bonds of a trace are one run
of consecutive rows, and a corpus never has to fit in memory. A folder whose tables are in another
order is refused with the row that breaks it rather than joined wrongly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from bondscope import hookimpl
from bondscope.domain import Bond, InputError, Label, Step, Trace
from bondscope.tables import COLUMNS

TABLES = tuple(COLUMNS)  # traces, steps, labels, bonds
READ_ROWS = 8192


class TableRows:
    """One table's rows in file order, grouped into runs of the same trace_id."""

    def __init__(self, path: Path, table: str) -> None:
        self.path = path
        handle = pq.ParquetFile(path)
        # a step's text is a slice of its trace's text: not read again
        self.columns = [c for c in COLUMNS[table] if c != "text" or table == "traces"]
        missing = [c for c in self.columns if c not in handle.schema_arrow.names]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}", path, field=missing[0])
        self.batches = handle.iter_batches(batch_size=READ_ROWS, columns=self.columns)
        self.rows: Iterator[tuple[int, dict[str, Any]]] = self._rows()
        self.pending = next(self.rows, None)

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        number = 0
        for batch in self.batches:
            for row in batch.to_pylist():
                number += 1
                yield number, row

    def take(self, trace_id: str) -> list[tuple[int, dict[str, Any]]]:
        """The run of rows for trace_id at the current position (empty if it has none here)."""
        run = []
        while self.pending is not None and self.pending[1]["trace_id"] == trace_id:
            run.append(self.pending)
            self.pending = next(self.rows, None)
        return run


class ParquetTablesImporter:
    name = "parquet"
    description = (
        "a folder of Parquet tables as `export --format parquet` writes (also batch shards)"
    )

    def detect(self, path: Path) -> bool:
        return path.is_dir() and all((path / f"{t}.parquet").is_file() for t in TABLES)

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        traces = TableRows(path / "traces.parquet", "traces")
        sides = {t: TableRows(path / f"{t}.parquet", t) for t in TABLES[1:]}
        empty = True
        while traces.pending is not None:
            number, row = traces.pending
            traces.pending = next(traces.rows, None)
            empty = False
            trace_id = _text(row, "trace_id", traces.path, number, required=True)
            trace = Trace(
                id=trace_id,
                text=_text(row, "text", traces.path, number, required=True),
                question=_text(row, "question", traces.path, number),
                model=_text(row, "model", traces.path, number),
                source=_text(row, "source", traces.path, number),
                answer=_text(row, "answer", traces.path, number),
                meta=_meta(row, traces.path, number),
                line=number,
            )
            steps = sides["steps"].take(trace_id)
            trace.steps = [
                Step(
                    _int(r, "start", sides["steps"].path, n), _int(r, "end", sides["steps"].path, n)
                )
                for n, r in steps
            ] or None
            if (row.get("n_steps") or 0) != len(steps):
                raise InputError(
                    f"n_steps is {row.get('n_steps')} but steps.parquet has {len(steps)} rows "
                    "for this trace (or they are not in the order of traces.parquet)",
                    traces.path,
                    number,
                    "n_steps",
                )
            labels = sides["labels"]
            trace.labels = [
                Label(
                    _int(r, "step", labels.path, n),
                    _text(r, "behavior", labels.path, n, required=True),
                    _text(r, "annotator", labels.path, n, required=True),
                    _confidence(r, labels.path, n),
                )
                for n, r in labels.take(trace_id)
            ]
            bonds = sides["bonds"]
            trace.bonds = [
                Bond(
                    _int(r, "from", bonds.path, n),
                    _int(r, "to", bonds.path, n),
                    _text(r, "type", bonds.path, n, required=True),
                    _text(r, "annotator", bonds.path, n, required=True),
                )
                for n, r in bonds.take(trace_id)
            ]
            yield trace
        for side in sides.values():
            if side.pending is not None:
                number, row = side.pending
                raise InputError(
                    f"row for trace {row['trace_id']!r} does not follow the order of "
                    "traces.parquet (or names a trace it does not have)",
                    side.path,
                    number,
                    "trace_id",
                )
        if empty:
            raise InputError("traces.parquet has no rows", traces.path)


def _text(row: dict[str, Any], name: str, path: Path, number: int, required: bool = False) -> str:
    value = row.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise InputError(
            "must be a non-empty string" if required else "must be a string", path, number, name
        )
    return value


def _int(row: dict[str, Any], name: str, path: Path, number: int) -> int:
    value = row.get(name)
    if not isinstance(value, int):
        raise InputError("must be an integer", path, number, name)
    return value


def _confidence(row: dict[str, Any], path: Path, number: int) -> float | None:
    value = row.get("confidence")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, int | float):
        raise InputError("must be null or a number", path, number, "confidence")
    return float(value)


def _meta(row: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    text = row.get("meta")
    if text in (None, ""):
        return {}
    try:
        meta = json.loads(text)
    except (TypeError, ValueError) as error:
        raise InputError(f"must be a JSON object ({error})", path, number, "meta") from None
    if not isinstance(meta, dict):
        raise InputError("must be a JSON object", path, number, "meta")
    return meta


@hookimpl
def register_importers(register):
    register(ParquetTablesImporter())
