"""Export traces through an exporter plugin. The output appears only when the export finished:
it is written next to the target and moved into place, so a failure never leaves half a file.

`--overwrite` replaces only what an earlier export wrote: a folder holding the manifest that every
folder export gets (and nothing else), or a file its exporter recognizes as its own output. It
never replaces the project file, a folder that holds it, or any SQLite database."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bondscope.domain import InputError, Trace
from bondscope.hookspecs import Exporter
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.services.structure import require_annotators
from bondscope.store import Store

MANIFEST = ".bondscope-export.json"
SQLITE_HEADER = b"SQLite format 3\x00"


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
    if annotators is not None:  # a misspelt name would export every trace without labels
        require_annotators(store, annotators)
    check_target(out, store.path, exporter, overwrite)
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

    write_staged(
        out,
        format,
        lambda target: plugins.call("exporter", format, exporter.export, traces(), target),
    )
    return ExportReport(count, str(out), format)


def write_staged(out: Path, format: str, write: Callable[[Path], None]) -> None:
    """Let `write` fill a path beside `out`, then move it into place (with a manifest, for a
    folder); `out` is replaced only when the write finished. check_target runs first."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = staging / out.name
        write(target)
        if target.is_dir():
            write_manifest(target, format)
        old = staging / f"{out.name}.old"
        if out.exists():
            out.replace(old)  # check_target made sure it is an earlier export
        try:
            target.replace(out)
        except OSError:
            if old.exists():
                old.replace(out)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def check_target(out: Path, project: Path, exporter: Exporter, overwrite: bool) -> None:
    """Refuse an output path whose replacement would lose anything but an earlier export."""
    where = out.resolve()
    project = project.resolve()
    project_files = {project, *(project.with_name(project.name + s) for s in ("-wal", "-shm"))}
    if where in project_files:
        raise InputError("is the project file; choose another output path", out)
    if project.is_relative_to(where):
        raise InputError("holds the project file; choose another output path", out)
    if not out.exists() and not out.is_symlink():
        return
    if not overwrite:
        raise InputError("already exists (pass --overwrite to replace it)", out)
    if out.is_symlink():
        raise InputError("is a symbolic link; refusing to replace it", out)
    if out.is_dir():
        unknown = sorted(set(p.name for p in out.iterdir()) - set(manifest_files(out)))
        if unknown:
            shown = ", ".join(unknown[:3]) + (", ..." if len(unknown) > 3 else "")
            raise InputError(
                f"is a folder with files no Bondscope export wrote ({shown}); "
                "refusing to replace it",
                out,
            )
        return
    if out.stat().st_size == 0:
        return
    if is_sqlite(out):
        raise InputError("is a SQLite database; refusing to replace it", out)
    recognizes = getattr(exporter, "recognizes", None)
    if recognizes is None or not recognizes(out):
        raise InputError(
            f"was not written by the {exporter.name} exporter; refusing to replace it", out
        )


def write_manifest(folder: Path, format: str) -> None:
    files = sorted(p.name for p in folder.iterdir())
    (folder / MANIFEST).write_text(
        json.dumps({"format": format, "files": files}, indent=1) + "\n", encoding="utf-8"
    )


def manifest_files(folder: Path) -> list[str]:
    """The names an earlier export wrote into `folder` (with the manifest); [] without one."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return []
    return [*files, MANIFEST]


def is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False
