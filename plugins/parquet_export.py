"""Parquet export: a folder with traces, steps, labels and bonds tables (pandas/pyarrow read it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bondscope import hookimpl
from bondscope.domain import Trace
from bondscope.tables import COLUMNS, batches


def schemas() -> dict[str, Any]:
    """The tables' Arrow schemas; pyarrow is imported on first export, not when plugins load
    (it takes about 0.4 s, which every `bondscope` command, `--help` too, would pay)."""
    import pyarrow as pa

    return {
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


class ParquetExporter:
    name = "parquet"
    description = "folder of Parquet tables: traces, steps, labels, bonds"
    default_suffix = ""

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        tables = schemas()
        out.mkdir(parents=True, exist_ok=True)
        writers = {
            name: pq.ParquetWriter(out / f"{name}.parquet", tables[name]) for name in COLUMNS
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
                            for col, field in zip(columns, tables[name], strict=True)
                        ],
                        schema=tables[name],
                    )
                    writers[name].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()


@hookimpl
def register_exporters(register):
    register(ParquetExporter())
