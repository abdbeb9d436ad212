"""Property tests of the annotation-tool and Parquet formats: any trace survives export and
import; arbitrary rows in a Parquet file import or fail with an InputError and no change."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bondscope.domain import Trace
from bondscope.plugin_manager import Plugins
from bondscope.services.importing import import_paths
from bondscope.store import Store
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_fuzz_importers import (  # noqa: F401 - workdir and project are fixtures
    BASE_RECORDS,
    FUZZ,
    import_or_input_error,
    mutated_records,
    project,
    traces,
    workdir,
)

ROUND_TRIP_FORMATS = {"label-studio": ".json", "doccano": ".jsonl", "prodigy": ".jsonl",
                      "parquet": ""}  # fmt: skip
# What each format keeps of a label: the annotation tools' files carry no label times.
KEPT = {
    "parquet": lambda lb: repr(lb),
    **{
        name: lambda lb: repr((lb.step, lb.behavior, lb.annotator, lb.confidence))
        for name in ("label-studio", "doccano", "prodigy")
    },
}


def project_trace(folder: Path, exported: Path) -> Trace:
    plugins = Plugins(load_entry_points=False)
    with Store(folder / "project.bondscope") as store:
        import_paths(store, plugins, [exported])
        [trace_id] = store.trace_ids()
        return store.load_trace(trace_id)


@pytest.mark.parametrize("format_", ROUND_TRIP_FORMATS)
@settings(FUZZ, max_examples=15)
@given(trace=traces())
def test_round_trip(workdir: Path, format_: str, trace: Trace) -> None:  # noqa: F811
    plugins = Plugins(load_entry_points=False)
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        exported = Path(folder) / f"out{ROUND_TRIP_FORMATS[format_]}"
        plugins.get("exporter", format_).export([trace], exported)
        loaded = project_trace(Path(folder), exported)
    assert (loaded.id, loaded.text, loaded.question, loaded.model, loaded.answer) == (
        trace.id,
        trace.text,
        trace.question,
        trace.model,
        trace.answer,
    )
    assert loaded.source == trace.source or (not trace.source and format_ != "parquet")
    assert loaded.steps == trace.steps
    assert loaded.meta == trace.meta
    kept = KEPT[format_]
    assert sorted(map(kept, loaded.labels)) == sorted(map(kept, trace.labels))
    assert sorted(loaded.bonds, key=repr) == sorted(trace.bonds, key=repr)


def parquet_bytes(rows: list[Any]) -> bytes | None:
    """The rows as a Parquet file, or None when Arrow cannot give them one schema."""
    if not all(isinstance(row, dict) and row for row in rows):
        return None
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        return None
    sink = io.BytesIO()
    try:
        pq.write_table(table, sink, row_group_size=2)
    except (pa.ArrowException, ValueError):
        return None
    return sink.getvalue()


@settings(FUZZ, max_examples=60)
@given(
    importer=st.sampled_from(["r1-json", "chat"]),
    data=st.data(),
)
def test_arbitrary_parquet_rows(workdir: Path, project: Path, importer: str, data: Any) -> None:  # noqa: F811
    rows = data.draw(st.lists(mutated_records(importer), min_size=1, max_size=4))
    content = parquet_bytes(rows)
    if content is None:
        content = parquet_bytes([dict(BASE_RECORDS[importer][0])])
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        target = Path(folder) / "rows.parquet"
        target.write_bytes(content)
        import_or_input_error(project, target, importer)


@settings(FUZZ, max_examples=40)
@given(trace=traces(), data=st.data())
def test_mutated_parquet_tables(workdir: Path, project: Path, trace: Trace, data: Any) -> None:  # noqa: F811
    """One cell of one table of a real export changed (or a row dropped): imports, or fails with
    an InputError naming the file, and the project is unchanged."""
    plugins = Plugins(load_entry_points=False)
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        out = Path(folder) / "tables"
        plugins.get("exporter", "parquet").export([trace], out)
        name = data.draw(st.sampled_from(["traces", "steps", "labels", "bonds"]))
        table = pq.read_table(out / f"{name}.parquet")
        rows = table.to_pylist()
        if rows:
            i = data.draw(st.integers(0, len(rows) - 1))
            column = data.draw(st.sampled_from(table.schema.names))
            kind = table.schema.field(column).type
            if data.draw(st.booleans()):
                del rows[i]
            elif pa.types.is_integer(kind):
                rows[i][column] = data.draw(st.none() | st.integers(-3, 40))
            elif pa.types.is_floating(kind):
                rows[i][column] = data.draw(st.none() | st.floats())
            else:
                rows[i][column] = data.draw(st.none() | st.sampled_from(["", "t", "N", "vdw", "{"]))
            pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), out / f"{name}.parquet")
        import_or_input_error(project, out, "parquet")
