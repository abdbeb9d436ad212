"""Export traces through an exporter plugin. The output appears only when the export finished:
it is written next to the target and moved into place, so a failure never leaves half a file."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bondscope.domain import InputError, Trace
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.store import Store


@dataclass
class ExportReport:
    traces: int
    out: str
    format: str


def export_traces(
    store: Store,
    plugins: Plugins,
    format: str,
    out: Path,
    *,
    trace_ids: list[int] | None = None,
    annotators: list[str] | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ExportReport:
    progress = progress or NullProgress()
    exporter = plugins.get("exporter", format)
    if out.exists() and not overwrite:
        raise InputError("already exists (pass --overwrite to replace it)", out)
    trace_ids = trace_ids if trace_ids is not None else store.trace_ids()
    progress.start(f"exporting ({format})", len(trace_ids))
    count = 0

    def traces() -> Iterator[Trace]:
        nonlocal count
        for trace in store.iter_traces(trace_ids, annotators):
            check_cancelled(progress)
            yield trace
            count += 1
            progress.advance(1)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = staging / out.name
        plugins.call("exporter", format, exporter.export, traces(), target)
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        target.replace(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(count, str(out), format)
