"""Parquet export: a folder with traces, steps, labels and bonds tables (pandas/pyarrow read it)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bondscope import hookimpl
from bondscope.domain import Trace
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


class ParquetExporter:
    name = "parquet"
    description = "folder of Parquet tables: traces, steps, labels, bonds"
    default_suffix = ""

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        writers = {
            name: pq.ParquetWriter(out / f"{name}.parquet", SCHEMAS[name]) for name in COLUMNS
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
                            for col, field in zip(columns, SCHEMAS[name], strict=True)
                        ],
                        schema=SCHEMAS[name],
                    )
                    writers[name].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()


@hookimpl
def register_exporters(register):
    register(ParquetExporter())
