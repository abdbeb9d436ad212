"""Parquet tables: a folder with traces, steps, labels and bonds tables (pandas/pyarrow read it).

The importer reads such a folder back losslessly. The four tables are streamed side by side
(rows of each table come in trace order, as the exporter writes them), so no table is read whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from bondscope import hookimpl
from bondscope.domain import Bond, InputError, Label, Step, Trace
from bondscope.parquetio import iter_parquet
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
            ("confidence", pa.float64()),
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
        columns = {
            name: [c for c in COLUMNS[name] if c != "text" or name == "traces"] for name in COLUMNS
        }
        rows = {
            name: _Rows(path / f"{name}.parquet", columns[name])
            for name in ("steps", "labels", "bonds")
        }
        for number, row in iter_parquet(path / "traces.parquet", list(COLUMNS["traces"])):
            where = path / "traces.parquet"
            trace_id = _typed(row, "trace_id", str, where, number)
            meta_text = _typed(row, "meta", str, where, number)
            try:
                meta = json.loads(meta_text) if meta_text else {}
            except ValueError:
                raise InputError("invalid JSON", where, number, "meta") from None
            steps = [Step(r["start"], r["end"]) for r in rows["steps"].take(trace_id, "step")]
            n_steps = _typed(row, "n_steps", int, where, number)
            if n_steps != len(steps):
                raise InputError(
                    f"says {n_steps} steps, steps.parquet has {len(steps)}",
                    where,
                    number,
                    "n_steps",
                )
            labels = [
                Label(r["step"], r["behavior"], r["annotator"], r["confidence"])
                for r in rows["labels"].take(trace_id)
            ]
            bonds = [
                Bond(r["from"], r["to"], r["type"], r["annotator"])
                for r in rows["bonds"].take(trace_id)
            ]
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
            )
        for table in rows.values():
            table.check_consumed()

    # -- export ------------------------------------------------------------------------------

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        writers = {
            name: pq.ParquetWriter(out / f"{name}.parquet", SCHEMAS[name]) for name in COLUMNS
        }
        try:
            for batch in batches(traces):
                for name, table_rows in batch.items():
                    columns = (
                        list(zip(*table_rows, strict=True))
                        if table_rows
                        else [[] for _ in COLUMNS[name]]
                    )
                    table = pa.Table.from_arrays(
                        [
                            pa.array(col, type=field.type)
                            for col, field in zip(columns, SCHEMAS[name], strict=True)
                        ],
                        schema=SCHEMAS[name],
                    )
                    writers[name].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()


class _Rows:
    """One of the steps / labels / bonds tables, read alongside the traces table."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.rows = iter_parquet(path, columns)
        self.ahead: tuple[int, dict[str, Any]] | None = next(self.rows, None)

    def take(self, trace_id: str, index: str | None = None) -> list[dict[str, Any]]:
        """The rows of `trace_id` at the head of the table (`index` numbered 0, 1, ...)."""
        taken = []
        while self.ahead is not None and self.ahead[1].get("trace_id") == trace_id:
            number, row = self.ahead
            for key, value in row.items():
                if value is None and key != "confidence":
                    raise InputError("missing", self.path, number, key)
            if index is not None and row[index] != len(taken):
                raise InputError(f"expected step {len(taken)}", self.path, number, index)
            taken.append(row)
            self.ahead = next(self.rows, None)
        return taken

    def check_consumed(self) -> None:
        if self.ahead is not None:
            number, row = self.ahead
            raise InputError(
                f"trace {row.get('trace_id')!r} is not in traces.parquet, or its rows are out of "
                "trace order",
                self.path,
                number,
                "trace_id",
            )


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
