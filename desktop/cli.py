"""The `bondscope` command line: thin click commands over the same services the app uses."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from functools import cache
from pathlib import Path
from typing import Any

import click
from bondscope import __version__
from bondscope.domain import InputError
from bondscope.plugin_manager import PluginError, Plugins
from bondscope.progress import Cancelled
from bondscope.store import Store, StoreError


@cache
def plugins() -> Plugins:
    return Plugins()


class TerminalProgress:
    """A tqdm bar on stderr; silent when stderr is not a terminal (CI logs, pipes)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, label: str, total: int | None) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(
            total=total, desc=label, unit="item", file=sys.stderr, disable=None, leave=False
        )

    def advance(self, amount: int = 1, note: str = "") -> None:
        if self.bar is not None:
            self.bar.update(amount)
            if note:
                self.bar.set_postfix_str(note, refresh=False)

    def cancelled(self) -> bool:
        return False  # Ctrl+C raises KeyboardInterrupt, which rolls the transaction back

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def open_project(db: Path, create: bool = False) -> Store:
    return Store(db, create=create)


def emit(data: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for line in lines:
            click.echo(line)


def parse_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        options[key.strip()] = value
    return options


class BondscopeGroup(click.Group):
    """Turns expected failures into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (InputError, StoreError, PluginError, LookupError) as error:
            message = error.args[0] if isinstance(error, LookupError) else str(error)
            click.echo(f"error: {message}", err=True)
            sys.exit(1)
        except (KeyboardInterrupt, Cancelled):
            click.echo("cancelled; the project was left as it was", err=True)
            sys.exit(130)


db_option = click.option(
    "--db", "db", type=click.Path(path_type=Path), required=True, help="project file (SQLite)"
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")


@click.group(cls=BondscopeGroup, invoke_without_command=True)
@click.version_option(__version__, prog_name="bondscope")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Bondscope: label, measure and synthesize the behavior structure of long CoT traces.

    Without a command, opens the desktop app on the last project (or the demo project).
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(gui)


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

    progress = TerminalProgress()
    with open_project(db, create=True) as store:
        try:
            report = import_paths(
                store,
                plugins(),
                list(paths),
                format=format_,
                segmenter=segmenter,
                options=parse_options(options),
                progress=progress,
            )
        finally:
            progress.close()
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
    emit(asdict(report), as_json, lines)


@cli.command()
@db_option
@click.option("--segmenter", default="paragraph", show_default=True)
@click.option("--model", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@json_option
def segment(db, segmenter, model, source, as_json):
    """Re-segment traces; labels of steps whose span did not change are kept."""
    from bondscope.services.segmenting import resegment

    progress = TerminalProgress()
    with open_project(db) as store:
        ids = store.trace_ids(model=model, source=source)
        try:
            report = resegment(store, plugins(), segmenter, ids, progress)
        finally:
            progress.close()
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
    emit(data, as_json, lines)


@cli.command()
@db_option
@click.option("--format", "format_", required=True, help="exporter name (see `bondscope plugins`)")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--annotator", "annotators", multiple=True, help="only these annotators' labels")
@click.option("--model", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@click.option("--overwrite", is_flag=True, help="replace OUT if it exists")
@json_option
def export(db, format_, out, annotators, model, source, overwrite, as_json):
    """Export traces with their steps, current labels and bonds."""
    from bondscope.services.exporting import export_traces

    progress = TerminalProgress()
    with open_project(db) as store:
        ids = store.trace_ids(model=model, source=source)
        try:
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
        finally:
            progress.close()
    emit(asdict(report), as_json, [f"exported {report.traces} traces to {report.out}"])


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


@cli.command()
@click.option(
    "--db",
    "db",
    type=click.Path(path_type=Path),
    default=None,
    help="project file (default: the last one, or the demo project)",
)
@click.option("--trace", "trace", default=None, help="open this trace id")
@click.option(
    "--screenshot",
    type=click.Path(path_type=Path),
    default=None,
    help="render the window offscreen to this PNG and exit",
)
def gui(db, trace, screenshot):
    """Open the desktop app."""
    from bondscope.ui.app import run

    sys.exit(run(db=db, trace=trace, screenshot=screenshot))


# -- structure metrics (services/structure.py, docs/metrics.md) ----------------------------------


@cli.command(name="presets")
@json_option
def presets_command(as_json):
    """List the built-in transition graphs (paper Fig. 5) usable as `compare --preset ID`."""
    from bondscope.services.structure import presets, stationary

    found = presets()
    data = {
        "presets": [
            {
                "id": p.id,
                "name": p.name,
                "percent": p.percent.tolist(),
                "stationary": stationary(p.P).round(6).tolist(),
                "source": p.source,
            }
            for p in found.values()
        ]
    }
    emit(data, as_json, [f"{p.id}  {p.name}" for p in found.values()])


@cli.command(name="metrics")
@click.argument("name")
@db_option
@click.option(
    "--by", type=click.Choice(["model", "source", "annotator"]), help="one result per value"
)
@click.option("--annotator", default=None, help="whose labels (needed when several labeled)")
@click.option("--model", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@click.option("--run", type=int, default=None, help="only labels written by this run")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="also write the table")
@json_option
def metrics_command(name, db, by, annotator, model, source, run, csv_out, as_json):
    """Compute metric NAME (see `bondscope plugins`) on a selection of labeled traces."""
    import csv

    from bondscope.services.structure import (
        LabeledSelection,
        Selection,
        SelectionError,
        groups,
        mixing_check,
    )

    metric = plugins().get("metric", name)
    selection = Selection(model=model, source=source, annotator=annotator, run=run)
    results = []
    with open_project(db) as store:
        parts = groups(store, selection, by) if by else [selection]
        if not parts:
            raise SelectionError(f"no labels match {selection.describe()}")
        for part in parts:
            labeled = LabeledSelection(store, part)
            result = plugins().call("metric", name, metric.compute, labeled)
            results.append((getattr(part, by) if by else labeled.name, labeled.name, result))
        warnings = [] if by else mixing_check(store, selection)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if csv_out is not None:
        with open(csv_out, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([by or "selection", *results[0][2].columns])
            for group, _, result in results:
                writer.writerows([group, *row] for row in result.rows)
    data = {
        "metric": name,
        "by": by,
        "results": [
            {"group": group, "selection": described, "result": result.data}
            for group, described, result in results
        ],
        "warnings": warnings,
    }
    lines = []
    for _, described, result in results:
        lines.append(f"{name}: {described}")
        lines.append("  " + "\t".join(result.columns))
        lines += ["  " + "\t".join(_cell(value) for value in row) for row in result.rows]
    emit(data, as_json, lines)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


SIDE_STARTS = ("--preset", "--db")
SIDE_FILTERS = ("--model", "--source", "--annotator", "--run")
SIDE_HELP = (
    "each side is --preset ID or --db FILE [--model M] [--source S] [--annotator A] [--run N]"
)


def parse_sides(tokens: tuple[str, ...]) -> list[dict[str, str]]:
    """Split `--preset A --db p.db --model M` into sides; filters belong to the --db before them."""
    sides: list[dict[str, str]] = []
    items = iter(tokens)
    for token in items:
        option, has_value, value = token.partition("=")
        if option not in SIDE_STARTS + SIDE_FILTERS:
            raise click.UsageError(f"unexpected {token!r}; {SIDE_HELP}")
        if not has_value:
            value = next(items, None)
            if value is None:
                raise click.UsageError(f"{option} needs a value")
        key = option.removeprefix("--")
        if option in SIDE_STARTS:
            sides.append({key: value})
        elif not sides or "db" not in sides[-1]:
            raise click.UsageError(f"{option} must follow the --db it filters; {SIDE_HELP}")
        elif key in sides[-1]:
            raise click.UsageError(f"{option} given twice for one side")
        else:
            sides[-1][key] = value
    if len(sides) != 2:
        raise click.UsageError(f"compare needs exactly two sides, got {len(sides)}; {SIDE_HELP}")
    return sides


@cli.command(
    name="compare",
    context_settings={"ignore_unknown_options": True},
    epilog="Example: bondscope compare --preset deepseek-r1-0528 --db p.db --model M --json",
)
@click.argument("sides", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--alpha", type=float, default=0.0, show_default=True, help="Laplace smoothing of --db sides"
)
@json_option
def compare_command(sides, alpha, as_json):
    """Compare two structures: Pearson r, pi-weighted JS, L1 of the pis, and a verdict.

    SIDES: two of `--preset ID` and `--db FILE [--model M] [--source S] [--annotator A]
    [--run N]`, in any combination.
    """
    from bondscope.services.structure import compare

    described = [_side_matrix(side, alpha) for side in parse_sides(sides)]
    data = compare(described[0]["P"], described[1]["P"])
    for side in described:
        side["percent"] = (side.pop("P") * 100).round(4).tolist()
    data["sides"] = described
    lines = [
        f"1: {described[0]['label']}",
        f"2: {described[1]['label']}",
        f"Pearson r: {data['pearson_r']:.3f} ({data['verdict']})",
        f"pi-weighted JS: {data['weighted_js_bits']:.4f} bits",
        f"L1 of the stationary pis: {data['pi_l1']:.3f}",
    ]
    emit(data, as_json, lines)


def _side_matrix(side: dict[str, str], alpha: float) -> dict[str, Any]:
    """One side of `compare`: a preset's matrix, or one counted from a project."""
    from bondscope.domain import BEHAVIORS
    from bondscope.services.structure import (
        Selection,
        SelectionError,
        preset,
        resolve_annotator,
        transition_counts,
        transition_matrix,
    )

    if "preset" in side:
        found = preset(side["preset"])
        return {"kind": "preset", "label": f"preset {found.id}", "P": found.P}
    try:
        run = int(side["run"]) if "run" in side else None
    except ValueError:
        raise click.UsageError(f"--run needs a number, got {side['run']!r}") from None
    selection = Selection(side.get("model"), side.get("source"), side.get("annotator"), run)
    with open_project(Path(side["db"])) as store:
        selection = resolve_annotator(store, selection)
        counts = transition_counts(store, selection)
    label = f"{side['db']} ({selection.describe()})"
    never_left = [
        b for b, n in zip(BEHAVIORS, counts.transitions.sum(axis=1), strict=True) if n == 0
    ]
    if never_left and alpha == 0:
        raise SelectionError(
            f"{label}: no transition out of {', '.join(never_left)}; pass --alpha 0.001 to smooth"
        )
    return {
        "kind": "db",
        "label": label,
        "traces": counts.traces,
        "transitions": int(counts.transitions.sum()),
        "P": transition_matrix(counts.transitions, alpha),
    }


def main() -> None:
    plugins().pm.hook.register_commands(cli=cli)
    cli()
