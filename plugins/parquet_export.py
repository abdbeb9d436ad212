"""Parquet tables: a folder with traces, steps, labels and bonds tables (pandas/pyarrow read it).

The importer reads such a folder back losslessly. The four tables are streamed side by side
(rows of each table come in trace order, as the exporter writes them), so no table is read whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from bondscope import hookimpl
from bondscope.domain import Bond, InputError, Label, RowNumber, Step, Trace
from bondscope.parquetio import iter_parquet, iter_parquet_tuples
from bondscope.tables import COLUMNS, batches

SCHEMAS = {
    "traces": pa.schema(
        [
            ("trace_id", pa.string()),
            ("source", pa.string()),
            ("model", pa.string()),
            ("question", pa.string()),
            ("text", pa.string()),
            ("answer", pa.string()),
            ("n_steps", pa.int64()),
            ("meta", pa.string()),
        ]
    ),
    "steps": pa.schema(
        [
            ("trace_id", pa.string()),
            ("step", pa.int64()),
            ("start", pa.int64()),
            ("end", pa.int64()),
            ("text", pa.string()),
        ]
    ),
    "labels": pa.schema(
        [
            ("trace_id", pa.string()),
            ("step", pa.int64()),
            ("behavior", pa.string()),
            ("annotator", pa.string()),
            ("annotator_kind", pa.string()),
            ("confidence", pa.float64()),
            ("seconds", pa.float64()),
            ("created_at", pa.string()),
        ]
    ),
    "bonds": pa.schema(
        [
            ("trace_id", pa.string()),
            ("from", pa.int64()),
            ("to", pa.int64()),
            ("type", pa.string()),
            ("annotator", pa.string()),
        ]
    ),
}


# The columns the importer reads, by name: a table may hold more (a later version's columns).
LABEL_COLUMNS = ["trace_id", "step", "behavior", "annotator", "confidence"]
# Label columns added later (tables written before them still import).
OPTIONAL_LABEL_COLUMNS = ["annotator_kind", "seconds", "created_at"]


class ParquetTables:
    name = "parquet"
    description = "folder of Parquet tables: traces, steps, labels, bonds"
    default_suffix = ""

    # -- import ------------------------------------------------------------------------------

    def detect(self, path: Path) -> bool:
        return path.is_dir() and all((path / f"{name}.parquet").is_file() for name in COLUMNS)

    def read(self, path: Path, options: dict[str, str]) -> Iterator[Trace]:
        for name in COLUMNS:
            if not (path / f"{name}.parquet").is_file():
                raise InputError(f"expected a folder holding {name}.parquet", path)
        present = set(pq.read_schema(path / "labels.parquet").names)
        optional = [name for name in OPTIONAL_LABEL_COLUMNS if name in present]
        rows = {
            "steps": _Rows(path / "steps.parquet", ["trace_id", "step", "start", "end"]),
            "labels": _Rows(
                path / "labels.parquet",
                LABEL_COLUMNS + optional,
                nullable=("confidence", *OPTIONAL_LABEL_COLUMNS),
            ),
            "bonds": _Rows(path / "bonds.parquet", ["trace_id", "from", "to", "type", "annotator"]),
        }
        for number, row in iter_parquet(path / "traces.parquet", list(COLUMNS["traces"])):
            where = path / "traces.parquet"
            trace_id = _typed(row, "trace_id", str, where, number)
            meta_text = _typed(row, "meta", str, where, number)
            try:
                meta = json.loads(meta_text) if meta_text else {}
            except ValueError:
                raise InputError("invalid JSON", where, number, "meta") from None
            steps = [Step(r[2], r[3]) for r in rows["steps"].take(trace_id, numbered=True)]
            n_steps = _typed(row, "n_steps", int, where, number)
            if n_steps != len(steps):
                raise InputError(
                    f"says {n_steps} steps, steps.parquet has {len(steps)}",
                    where,
                    number,
                    "n_steps",
                )
            labels, kinds = [], {}
            for r in rows["labels"].take(trace_id):
                extra = dict(zip(optional, r[len(LABEL_COLUMNS) :], strict=True))
                seconds = extra.get("seconds")
                labels.append(
                    Label(
                        r[1],
                        r[2],
                        r[3],
                        _confidence(r[4]),
                        None if seconds is None or math.isnan(seconds) else seconds,
                        extra.get("created_at"),
                    )
                )
                if extra.get("annotator_kind"):
                    kinds[r[3]] = extra["annotator_kind"]
            bonds = [Bond(*r[1:]) for r in rows["bonds"].take(trace_id)]
            yield Trace(
                id=trace_id,
                text=_typed(row, "text", str, where, number),
                question=_typed(row, "question", str, where, number),
                model=_typed(row, "model", str, where, number),
                source=_typed(row, "source", str, where, number),
                answer=_typed(row, "answer", str, where, number),
                steps=steps,
                labels=labels,
                bonds=bonds,
                meta=meta,
                line=number,
                annotator_kinds=kinds,
            )
        for table in rows.values():
            table.check_consumed()

    # -- export ------------------------------------------------------------------------------

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        tables = SCHEMAS
        out.mkdir(parents=True, exist_ok=True)
        writers = {
            name: pq.ParquetWriter(out / f"{name}.parquet", tables[name]) for name in COLUMNS
        }
        try:
            for batch in batches(traces):
                for name, table_rows in batch.items():
                    if not table_rows:
                        continue  # no empty row groups: readers such as `datasets` reject them
                    columns = list(zip(*table_rows, strict=True))
                    table = pa.Table.from_arrays(
                        [
                            pa.array(col, type=field.type)
                            for col, field in zip(columns, tables[name], strict=True)
                        ],
                        schema=tables[name],
                    )
                    writers[name].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()


class _Rows:
    """One of the steps / labels / bonds tables, read alongside the traces table: its rows come in
    trace order, so each trace takes the rows at the head."""

    def __init__(self, path: Path, columns: list[str], nullable: tuple[str, ...] = ()) -> None:
        self.path = path
        self.columns = columns
        self.required = [i for i, name in enumerate(columns) if name not in nullable]
        self.rows = iter_parquet_tuples(path, columns)
        self.ahead: tuple[int, tuple[Any, ...]] | None = next(self.rows, None)

    def take(self, trace_id: str, numbered: bool = False) -> list[tuple[Any, ...]]:
        """The rows of `trace_id` (column 0) at the head of the table; `numbered`: column 1 counts
        0, 1, ... (a trace's steps)."""
        taken = []
        while self.ahead is not None and self.ahead[1][0] == trace_id:
            number, row = self.ahead
            for i in self.required:
                if row[i] is None:
                    raise InputError("missing", self.path, RowNumber(number), self.columns[i])
            if numbered and row[1] != len(taken):
                raise InputError(
                    f"expected step {len(taken)}", self.path, RowNumber(number), self.columns[1]
                )
            taken.append(row)
            self.ahead = next(self.rows, None)
        return taken

    def check_consumed(self) -> None:
        if self.ahead is not None:
            number, row = self.ahead
            raise InputError(
                f"trace {row[0]!r} is not in traces.parquet, or its rows are out of trace order",
                self.path,
                RowNumber(number),
                "trace_id",
            )


def _confidence(value: float | None) -> float | None:
    """NaN (a confidence nobody gave, written by another tool) is no confidence."""
    return None if value is None or math.isnan(value) else value


def _typed(row: dict[str, Any], key: str, kind: type, where: Path, number: int) -> Any:
    value = row.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InputError(f"must be {kind.__name__}, got {type(value).__name__}", where, number, key)
    return value


@hookimpl
def register_importers(register):
    register(ParquetTables())


@hookimpl
def register_exporters(register):
    register(ParquetTables())
