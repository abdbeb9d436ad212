"""CSV export: a folder with traces.csv, steps.csv, labels.csv and bonds.csv (UTF-8, header row).

Text cells that start like a spreadsheet formula (=, +, -, @) are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

from bondscope import hookimpl
from bondscope.domain import Trace
from bondscope.tables import COLUMNS, batches, spreadsheet_safe


class CsvExporter:
    name = "csv"
    description = "folder of CSV tables: traces, steps, labels, bonds"
    default_suffix = ""

    def export(self, traces: Iterable[Trace], out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            writers = {
                name: csv.writer(
                    stack.enter_context(
                        open(out / f"{name}.csv", "w", encoding="utf-8", newline="")
                    )
                )
                for name in COLUMNS
            }
            for name, writer in writers.items():
                writer.writerow(COLUMNS[name])
            for batch in batches(traces):
                for name, table_rows in batch.items():
                    writers[name].writerows(map(spreadsheet_safe, table_rows))


@hookimpl
def register_exporters(register):
    register(CsvExporter())
