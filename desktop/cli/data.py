"""Commands that move data in and out of a project: import, segment, stats, export, plugins,
backup and restore."""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict
from pathlib import Path

import click
from bondscope.cli.base import (
    TerminalProgress,
    cli,
    db_option,
    emit,
    json_option,
    open_project,
    parse_options,
    plugins,
    source_model_option,
    where_option,
)
from bondscope.domain import InputError


@cli.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@db_option
@click.option(
    "--format",
    "format_",
    default="auto",
    show_default=True,
    help="importer name (see `bondscope plugins`), or auto to detect per file",
)
@click.option(
    "--segmenter",
    default="paragraph",
    show_default=True,
    help="segmenter for traces that come without steps",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="importer option, e.g. response_field=output (repeatable)",
)
@json_option
def import_command(paths, db, format_, segmenter, options, as_json):
    """Import traces from files and folders (one transaction: all or nothing)."""
    from bondscope.services.importing import import_paths

    failed_before = len(plugins().failures)
    with open_project(db, create=True) as store, TerminalProgress() as progress:
        report = import_paths(
            store,
            plugins(),
            list(paths),
            format=format_,
            segmenter=segmenter,
            options=parse_options(options),
            progress=progress,
        )
    lines = [
        f"imported {report.traces} traces, {report.steps} steps, {report.labels} labels, "
        f"{report.bonds} bonds from {report.files} files",
    ]
    if report.duplicates:
        lines.append(f"{report.duplicates} traces were already in the project (new labels merged)")
    if report.renamed:
        lines.append(
            f"{report.renamed} traces were renamed (#2, #3, ...) because their id was taken"
        )
    if report.unmatched:
        lines.append(f"{report.unmatched} labels/bonds of duplicates matched no stored step")
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} files no importer recognizes:")
        lines += [f"  {path}" for path in report.skipped]
    for failure in plugins().failures[failed_before:]:  # e.g. a detect() that broke its contract
        click.echo(f"warning: plugin {failure.plugin!r} was disabled: {failure.error}", err=True)
    emit(asdict(report), as_json, lines)


@cli.command()
@db_option
@click.option("--segmenter", default="paragraph", show_default=True)
@source_model_option
@click.option("--source", default=None, help="only traces of this source")
@json_option
def segment(db, segmenter, model, source, as_json):
    """Re-segment traces; labels of steps whose span did not change are kept."""
    from bondscope.services.segmenting import resegment

    with open_project(db) as store, TerminalProgress() as progress:
        ids = store.trace_ids(model=model, source=source)
        report = resegment(store, plugins(), segmenter, ids, progress)
    lines = [
        f"{report.changed} of {report.traces} traces re-segmented: {report.steps_kept} steps kept, "
        f"{report.steps_added} added, {report.steps_retired} retired",
    ]
    if report.dropped:
        lines.append(f"{len(report.dropped)} labels were on retired steps (kept in the history):")
        lines += [
            f"  {d.trace} step {d.step}: {d.behavior} by {d.annotator}" for d in report.dropped
        ]
    emit(asdict(report), as_json, lines)


@cli.command()
@db_option
@json_option
def stats(db, as_json):
    """Counts of traces, steps, and labels per annotator and per behavior."""
    from bondscope.services.stats import project_stats

    with open_project(db) as store:
        data = project_stats(store)
    lines = [
        f"traces: {data['traces']}",
        f"steps: {data['steps']} ({data['labeled_steps']} labeled)",
        f"labels: {data['labels']}  bonds: {data['bonds']}",
        "by behavior: " + "  ".join(f"{b}={n}" for b, n in data["by_behavior"].items()),
    ]
    for name, entry in data["annotators"].items():
        counts = "  ".join(f"{b}={n}" for b, n in entry["by_behavior"].items())
        lines.append(f"  {name} ({entry['kind']}): {entry['labels']} labels  {counts}")
    for what in ("models", "sources"):
        lines.append(f"{what}:")
        lines += [f"  {name or '(none)'}: {n} traces" for name, n in data[what].items()]
    emit(data, as_json, lines)


@cli.command()
@db_option
@click.option(
    "--format",
    "format_",
    required=True,
    help="exporter name (see `bondscope plugins`), or hf-dataset (a Hugging Face dataset folder)",
)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--annotator", "annotators", multiple=True, help="only these annotators' labels")
@source_model_option
@click.option("--source", default=None, help="only traces of this source")
@where_option
@click.option(
    "--overwrite",
    is_flag=True,
    help="replace OUT if it is an earlier export (never the project or unknown files)",
)
@click.option("--license", "license_", default=None, help="hf-dataset: the dataset's license id")
@json_option
def export(db, format_, out, annotators, model, source, where, overwrite, license_, as_json):
    """Export traces with their steps, current labels and bonds."""
    from bondscope.services.exporting import export_traces
    from bondscope.services.gold_dataset import HF_DATASET, export_hf_dataset

    with open_project(db) as store, TerminalProgress() as progress:
        ids = store.trace_ids(model=model, source=source, meta=where)
        if format_ == HF_DATASET:
            dataset = export_hf_dataset(
                store,
                plugins(),
                out,
                annotators=list(annotators) or None,
                trace_ids=ids,
                license=license_,
                overwrite=overwrite,
                command=shlex.join(["bondscope", *sys.argv[1:]]),
                progress=progress,
            )
            data = {k: v for k, v in asdict(dataset).items() if k != "figures"}
            line = (
                f"exported {dataset.traces} traces, {dataset.labels} labels to {dataset.out} "
                f"(license: {', '.join(dataset.license)})"
            )
            emit(data, as_json, [line])
            return
        report = export_traces(
            store,
            plugins(),
            format_,
            out,
            trace_ids=ids,
            annotators=list(annotators) or None,
            overwrite=overwrite,
            progress=progress,
        )
    emit(asdict(report), as_json, [f"exported {report.traces} traces to {report.out}"])


@cli.command()
@db_option
@click.option("--trace", "names", multiple=True, help="a trace by name (repeatable)")
@click.option("--traces", "pattern", default=None, help="traces whose name matches this glob")
@click.option("--run", "run_id", type=int, default=None, help="every trace this import run added")
@source_model_option
@click.option("--source", default=None, help="only traces of this source")
@json_option
def remove(db, names, pattern, run_id, model, source, as_json):
    """Delete traces with their steps, labels and bonds (e.g. undo an import with --run)."""
    from bondscope.services.removing import remove_traces, run_traces

    if not names and pattern is None and run_id is None:
        raise click.UsageError("say which traces: --trace NAME, --traces GLOB or --run ID")
    with open_project(db) as store:
        if names:
            marks = ", ".join("?" * len(names))
            found = {
                r[0]
                for r in store.conn.execute(
                    f"SELECT name FROM traces WHERE name IN ({marks})", names
                )
            }
            missing = [name for name in names if name not in found]
            if missing:
                raise LookupError(f"no trace named {', '.join(map(repr, missing))}")
        ids = store.trace_ids(
            model=model, source=source, names=list(names) or None, pattern=pattern
        )
        if run_id is not None:
            added = set(run_traces(store, run_id))
            ids = [trace_id for trace_id in ids if trace_id in added]
        why = {"names": list(names), "pattern": pattern, "run": run_id}
        report = remove_traces(store, ids, {**why, "model": model, "source": source})
    emit(
        asdict(report),
        as_json,
        [
            f"removed {report.traces} traces, {report.steps} steps, {report.label_events} label"
            f" events and {report.bond_events} bond events (run {report.run_id})"
        ],
    )


@cli.command(name="plugins")
@json_option
def plugins_command(as_json):
    """List the loaded plugins, where they come from and what they provide."""
    loaded = plugins()
    infos = loaded.describe()
    data = {
        "plugins": [asdict(info) for info in infos],
        "failures": [{"plugin": f.plugin, "error": f.error} for f in loaded.failures],
    }
    lines = []
    for info in infos:
        lines.append(f"{info.name}  [{info.origin}]")
        lines += [f"    {item}" for item in info.provides]
    for failure in loaded.failures:
        lines.append(f"FAILED {failure.plugin}: {failure.error}")
    emit(data, as_json, lines)


@cli.command(name="backup")
@db_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="backup file (default: a new file in PROJECT.db.backups/, the newest 10 kept)",
)
@json_option
def backup_command(db, out, as_json):
    """Copy the project to a backup file, safely while the app or other commands use it."""
    from bondscope.backups import backup

    with open_project(db) as store:
        try:
            written = backup(store, out)
        except FileExistsError as error:
            raise InputError(str(error)) from None
    emit({"backup": str(written)}, as_json, [f"backed up {db} to {written}"])


@cli.command(name="restore")
@db_option
@click.argument("source", type=click.Path(path_type=Path))
@json_option
def restore_command(db, source, as_json):
    """Replace the project's content with a backup (what it replaces is backed up first)."""
    from bondscope.backups import restore

    saved = restore(db, source)
    emit(
        {"restored": str(source), "previous": str(saved)},
        as_json,
        [f"restored {db} from {source}; its previous content is in {saved}"],
    )
