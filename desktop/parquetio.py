"""Streaming reader for Parquet files (the format of every Hugging Face dataset).

Rows come out as plain JSON-like dicts, one record batch of about 2 MB at a time (pyarrow reads a
row group at a time), so a 2 GB file is never read whole, and every importer that reads JSON
records reads Parquet rows the same way. Row numbers (1-based) are `RowNumber`s: errors say
`row N`.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from bondscope.domain import InputError, RowNumber

PARQUET_SUFFIXES = {".parquet", ".pq"}
BATCH_BYTES = 2 << 20  # what one batch holds, about: the memory a read needs beyond one row
MAX_BATCH_ROWS = 65_536


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def iter_parquet(path: Path, columns: list[str] | None = None) -> Iterator[tuple[RowNumber, Any]]:
    """(row number, row as a dict) for each row, batch by batch (see `batches`)."""
    parquet = open_parquet(path)
    converted = [
        field.name
        for field in parquet.schema_arrow
        if not _json_native(field.type) and (columns is None or field.name in columns)
    ]
    number = 0
    for batch in batches(parquet, path, columns):
        for row in batch.to_pylist():
            number += 1
            for name in converted:
                row[name] = _json_value(row[name])
            yield RowNumber(number), row


def iter_parquet_tuples(path: Path, columns: list[str]) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number, values in `columns` order): for fixed tables read in bulk (no dicts, and no
    conversion: the caller checks the types)."""
    parquet = open_parquet(path)
    missing = [name for name in columns if name not in parquet.schema_arrow.names]
    if missing:
        raise InputError("missing column", path, field=missing[0])
    number = 0
    for batch in batches(parquet, path, columns):
        values = [batch.column(name).to_pylist() for name in columns]
        yield from zip(
            range(number + 1, number + 1 + batch.num_rows), zip(*values, strict=True), strict=True
        )
        number += batch.num_rows


def batches(parquet: pq.ParquetFile, path: Path, columns: list[str] | None) -> Iterator[Any]:
    """Record batches row group by row group, of about BATCH_BYTES each (a batch never spans two
    row groups, so memory stays near one row group at worst)."""
    size, read = batch_rows(parquet), 0
    try:
        for group in range(parquet.metadata.num_row_groups):
            for batch in parquet.iter_batches(batch_size=size, row_groups=[group], columns=columns):
                if batch.num_rows:  # the real size per row (the estimate misses dictionaries)
                    size = max(
                        1, min(MAX_BATCH_ROWS, BATCH_BYTES * batch.num_rows // max(batch.nbytes, 1))
                    )
                read += batch.num_rows
                yield batch
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"unreadable Parquet: {error}", path, RowNumber(read + 1)) from None


def batch_rows(parquet: pq.ParquetFile) -> int:
    """Rows per first batch: about BATCH_BYTES of data by the file's mean row size (a row of a
    trace table may be 100 kB, one of a steps table 50 bytes); later batches use the size the
    previous one really had."""
    meta = parquet.metadata
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if not meta.num_rows or not size:
        return MAX_BATCH_ROWS
    return max(1, min(MAX_BATCH_ROWS, BATCH_BYTES * meta.num_rows // size))


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise InputError(f"not a readable Parquet file: {error}", path) from None


def _json_native(kind: pa.DataType) -> bool:
    """Types whose Python values are already what JSON holds (no NaN: floats need a look)."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind):
        return True
    if pa.types.is_integer(kind) or pa.types.is_null(kind):
        return True
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _json_native(kind.value_type)
    if pa.types.is_struct(kind):
        return all(_json_native(kind.field(i).type) for i in range(kind.num_fields))
    return False


def _json_value(value: Any) -> Any:
    """A Parquet value as JSON can hold it: NaN becomes null, dates ISO text, bytes UTF-8 text
    (base64 when they are not text), decimals floats, maps objects."""
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        if value and isinstance(value[0], tuple) and len(value[0]) == 2:  # a map's (key, value)s
            return {str(k): _json_value(v) for k, v in value}
        return [_json_value(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime.date | datetime.time | datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    return value
