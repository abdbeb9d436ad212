"""The `bondscope` command line: thin click commands over the same services the app uses."""

from __future__ import annotations

import json
import math
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


def json_safe(value: Any) -> Any:
    """NaN and infinities (e.g. an undefined correlation) become null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def emit(data: Any, as_json: bool, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False))
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


class MetricsGroup(click.Group):
    """`metrics NAME` runs metric plugin NAME; `stability`, `geometry` and `compression` are
    subcommands, since they take options (sizes, a trace, pairs) a plugin metric has no room for.
    """

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return args[0], metrics_command, args
        return super().resolve_command(ctx, args)


@cli.group(name="metrics", cls=MetricsGroup)
def metrics_group() -> None:
    """Compute a metric: `bondscope metrics NAME --db FILE ...` for metric NAME (see `bondscope
    plugins`), or one of the commands below."""


@click.command(name="metrics")
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


# -- MOLE-SYN synthesis and its fidelity report (services/synthesis.py, docs/synthesis.md) -------


@cli.command(name="synthesize")
@db_option
@click.option("--questions", type=click.Path(path_type=Path), help="JSONL: question, answer")
@click.option("--preset", default=None, help="target graph: a built-in preset (bondscope presets)")
@click.option("--from-model", default=None, help="target graph: labeled traces of this model")
@click.option("--from-source", default=None, help="target graph: labeled traces of this source")
@click.option("--annotator", default=None, help="target graph: whose labels")
@click.option("--graph-db", type=click.Path(path_type=Path), help="project with those labels")
@click.option("--alpha", type=float, default=0.0, show_default=True, help="smoothing of --from-*")
@click.option("--llm-base-url", required=True, help="e.g. http://127.0.0.1:8000/v1")
@click.option("--llm-model", required=True, help="the model name the server knows")
@click.option("--llm-backend", default="openai-compatible", show_default=True)
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="seconds a request")
@click.option("--max-retries", type=int, default=5, show_default=True)
@click.option("--concurrency", type=int, default=4, show_default=True, help="requests at once")
@click.option("--n", "n", type=int, default=None, help="traces to write (default: one a question)")
@click.option("--start", default="E", show_default=True, help="first behavior: N, D, R, E or pi")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-steps", type=int, default=200, show_default=True)
@click.option("--max-tokens", type=int, default=16384, show_default=True, help="per trace (est.)")
@click.option("--step-tokens", type=int, default=1024, show_default=True, help="per request")
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--top-p", type=float, default=0.95, show_default=True)
@click.option("--prompts", type=click.Path(path_type=Path), help="folder of prompt templates")
@click.option("--resume", "resume", type=int, default=None, help="continue this run id")
@json_option
def synthesize_command(
    db,
    questions,
    preset,
    from_model,
    from_source,
    annotator,
    graph_db,
    alpha,
    llm_base_url,
    llm_model,
    llm_backend,
    api_key_env,
    timeout,
    max_retries,
    concurrency,
    n,
    start,
    seed,
    max_steps,
    max_tokens,
    step_tokens,
    temperature,
    top_p,
    prompts,
    resume,
    as_json,
):
    """Write Long-CoT traces with MOLE-SYN: walk a behavior graph, one LLM call per step.

    Each step is stored as it arrives; after a crash or Ctrl+C, rerun with --resume RUN (and the
    same --llm-model) to continue where it stopped.
    """
    from bondscope.hookspecs import LLMError
    from bondscope.services.structure import Selection
    from bondscope.services.synthesis import (
        Connection,
        SynthesisSettings,
        graph_from_corpus,
        graph_from_preset,
        plan_run,
        read_questions,
        run_synthesis,
    )

    connection = Connection(
        llm_base_url,
        llm_model,
        llm_backend,
        {
            "api_key_env": api_key_env,
            "timeout": timeout,
            "max_retries": max_retries,
            "concurrency": concurrency,
        },
    )
    corpus = (from_model, from_source, annotator)
    if resume is None:
        if questions is None:
            raise click.UsageError("--questions is required (unless --resume)")
        if (preset is None) == all(value is None for value in corpus):
            raise click.UsageError("give --preset ID or --from-model/--from-source/--annotator")
    progress = TerminalProgress()
    with open_project(db, create=resume is None) as store:
        run_id = resume
        try:
            if run_id is None:
                if preset is not None:
                    graph = graph_from_preset(preset)
                else:
                    selection = Selection(model=from_model, source=from_source, annotator=annotator)
                    if graph_db is None:
                        graph = graph_from_corpus(store, selection, alpha)
                    else:
                        with open_project(graph_db) as source_store:
                            graph = graph_from_corpus(source_store, selection, alpha)
                settings = SynthesisSettings(
                    n=n,
                    start=start,
                    seed=seed,
                    max_steps=max_steps,
                    max_tokens=max_tokens,
                    step_tokens=step_tokens,
                    temperature=temperature,
                    top_p=top_p,
                    prompts=str(prompts) if prompts else None,
                )
                run_id = plan_run(
                    store, plugins(), read_questions(questions), graph, settings, connection
                )
            report = run_synthesis(store, plugins(), run_id, connection, progress)
        except (LLMError, KeyboardInterrupt) as error:
            progress.close()
            if run_id is None:
                raise
            stored = store.count("SELECT COUNT(*) FROM synthesis_steps WHERE run_id = ?", (run_id,))
            hint = (
                f"{stored} steps of run {run_id} are stored; continue with: bondscope synthesize "
                f"--db {db} --resume {run_id} --llm-base-url URL --llm-model {llm_model}"
            )
            if isinstance(error, KeyboardInterrupt):
                click.echo(f"interrupted; {hint}", err=True)
                sys.exit(130)
            click.echo(f"error: {error}\n{hint}", err=True)
            sys.exit(1)
        finally:
            progress.close()
    lines = [
        f"run {report.run_id}: {report.traces} of {report.items} traces, {report.steps} steps "
        f"({report.generated} generated now, {report.resumed_steps} resumed)",
        "stops: " + "  ".join(f"{k}={v}" for k, v in sorted(report.stops.items())),
    ]
    if report.checked:
        lines.append(f"answers: {report.correct} of {report.checked} match the gold answer")
    emit(asdict(report), as_json, lines)


@cli.command(name="fidelity")
@db_option
@click.option("--run", "run_id", type=int, required=True, help="the synthesis run")
@click.option("--prelabeler", default=None, help="default: bondscope-minilm, else keywords")
@json_option
def fidelity_command(db, run_id, prelabeler, as_json):
    """Pre-label a synthesis run's steps and compare intended with measured behaviors."""
    from bondscope.domain import BEHAVIORS
    from bondscope.services.synthesis import fidelity

    progress = TerminalProgress()
    with open_project(db) as store:
        try:
            report = fidelity(store, plugins(), run_id, prelabeler=prelabeler, progress=progress)
        finally:
            progress.close()
    verdict = "an effective isomer" if report.effective_isomer else "NOT an effective isomer"
    lines = [
        f"run {run_id}: {report.traces} traces, {report.steps} steps, labeled by "
        f"{report.annotator} (fidelity run {report.fidelity_run})",
        f"intended vs measured behavior: accuracy {report.accuracy:.3f}",
        *(
            f"  {b}: intended {v['intended']}, measured {v['measured']}, recall {v['recall']:.3f}"
            for b, v in report.per_behavior.items()
        ),
        f"Pearson r(target, measured graph) = {report.pearson_r:.3f}: {verdict} (r >= 0.9)",
        f"Pearson r(target, intended walks) = {report.pearson_r_intended:.3f}",
        "measured P (rows from, columns to " + " ".join(BEHAVIORS) + "):",
        *("  " + " ".join(f"{x:.3f}" for x in row) for row in report.measured),
    ]
    emit(asdict(report), as_json, lines)


# -- agreement between annotators (services/agreement.py, docs/metrics.md "Agreement") -----------


@cli.command(name="agreement")
@db_option
@click.option(
    "--annotators", default=None, help="comma-separated names (default: all who labeled or bonded)"
)
@click.option("--model", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@click.option(
    "--tolerance", type=int, default=1, show_default=True, help="bond ends may differ by N steps"
)
@json_option
def agreement_command(db, annotators, model, source, tolerance, as_json):
    """Agreement on behaviors (kappa, AC1, alpha, confusion) and bonds (F1), people and models."""
    from bondscope.services.agreement import agreement

    names = [name.strip() for name in annotators.split(",")] if annotators else None
    with open_project(db) as store:
        data = agreement(store, names, model=model, source=source, tolerance=tolerance)
    lines = [
        f"{len(data['annotators'])} annotators, {data['steps_rated_twice']} steps labeled by 2+",
        f"Krippendorff's alpha (nominal): {_cell(data['krippendorff_alpha'])}",
        f"Gwet's AC1 (all annotators): {_cell(data['gwet_ac1'])}",
        "pair\tkind\tsteps\tagree\tkappa\tAC1\tbond F1 (matched/a/b)",
    ]
    for pair in data["pairs"]:
        bonds = pair["bonds"]
        lines.append(
            f"{pair['a']} vs {pair['b']}\t{pair['kind']}\t{pair['steps']}\t"
            f"{_cell(pair['observed'])}\t{_cell(pair['cohen_kappa'])}\t{_cell(pair['gwet_ac1'])}"
            f"\t{_cell(bonds['f1'])} ({bonds['matched']}/{bonds['a_bonds']}/{bonds['b_bonds']})"
        )
    emit(data, as_json, lines)


# -- pre-labeling, training, evaluation (services/prelabeling.py, training.py, evaluation.py) ---


@cli.command(name="prelabel")
@db_option
@click.option(
    "--model",
    "prelabeler",
    default="bondscope-minilm",
    show_default=True,
    help="pre-labeler name (see `bondscope plugins`): a trained model, keywords, ...",
)
@click.option(
    "--provider",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="ONNX provider for the classifier; auto uses CUDA when it really runs",
)
@click.option(
    "--traces",
    "pattern",
    default=None,
    help="only traces whose name matches this glob, e.g. 'qwq*'",
)
@click.option("--model-filter", "model_filter", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@json_option
def prelabel_command(db, prelabeler, provider, pattern, model_filter, source, as_json):
    """Label every step with a pre-labeler, as annotator model:NAME@VERSION with confidences."""
    from bondscope.services.prelabeling import prelabel

    progress = TerminalProgress()
    with open_project(db) as store:
        ids = store.trace_ids(model=model_filter, source=source, pattern=pattern)
        try:
            report = prelabel(store, plugins(), prelabeler, ids, provider, progress)
        except KeyboardInterrupt:
            progress.close()
            click.echo(
                "cancelled; the traces labeled so far are kept (run marked cancelled)", err=True
            )
            sys.exit(130)
        finally:
            progress.close()
    data = {**asdict(report), "steps_per_second": report.steps_per_second}
    lines = [
        f"{report.status}: {report.steps} steps of {report.traces} traces labeled as "
        f"{report.annotator} in {report.seconds:.1f} s ({report.steps_per_second:.0f} steps/s)",
    ]
    if report.provider:
        lines.append(f"provider: {report.provider}")
    emit(data, as_json, lines)


@cli.command(name="train")
@db_option
@click.option("--gold", required=True, help="gold annotator(s), comma-separated (majority vote)")
@click.option("--out", "out_name", required=True, help="model name (user data dir models/NAME)")
@click.option("--full", is_flag=True, help="fine-tune MiniLM itself first (meant for a GPU)")
@click.option("--test-fraction", type=float, default=0.2, show_default=True, help="held-out traces")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the trace split")
@click.option("--epochs", type=int, default=1, show_default=True, help="with --full")
@json_option
def train_command(db, gold, out_name, full, test_fraction, seed, epochs, as_json):
    """Train the step classifier on gold labels; scores it on held-out traces."""
    from bondscope.services.training import train

    annotators = [name.strip() for name in gold.split(",") if name.strip()]
    progress = TerminalProgress()
    with open_project(db) as store:
        try:
            report = train(
                store,
                annotators,
                out_name,
                "full" if full else "head",
                test_fraction=test_fraction,
                seed=seed,
                epochs=epochs,
                progress=progress,
            )
        finally:
            progress.close()
    lines = [
        f"model {report.name}@{report.version} ({report.level}) written to {report.folder}",
        f"trained on {report.train_steps} steps of {report.train_traces} traces; "
        f"held out {report.test_steps} steps of {report.test_traces} traces",
    ]
    if report.metrics:
        lines.append(
            f"held-out macro-F1 {_cell(report.metrics['macro_f1'])} "
            f"(keyword baseline {_cell(report.baseline['macro_f1'])}), "
            f"accuracy {_cell(report.metrics['accuracy'])}"
        )
    emit(asdict(report), as_json, lines)


@cli.command(name="eval")
@db_option
@click.option("--gold", required=True, help="the reference annotator")
@click.option("--pred", required=True, help="the annotator to score, e.g. model:NAME@VERSION")
@click.option("--model", "model_filter", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@json_option
def eval_command(db, gold, pred, model_filter, source, as_json):
    """Score one annotator against another; steps are matched by character overlap."""
    from bondscope.domain import BEHAVIORS
    from bondscope.services.evaluation import evaluate

    with open_project(db) as store:
        report = evaluate(store, gold, pred, store.trace_ids(model=model_filter, source=source))
    lines = [
        f"{pred} vs {gold}: {report.matched} steps of {report.traces} traces matched "
        f"({report.unmatched} gold steps unmatched)",
        f"accuracy {_cell(report.accuracy)}  macro-F1 {_cell(report.macro_f1)}  "
        f"ECE {_cell(report.ece)}",
        "class\tprecision\trecall\tF1\tsupport",
        *(
            f"{b}\t{_cell(v['precision'])}\t{_cell(v['recall'])}\t{_cell(v['f1'])}\t{v['support']}"
            for b, v in report.per_class.items()
        ),
        "confusion (rows gold, columns predicted " + " ".join(BEHAVIORS) + "):",
        *("  " + " ".join(f"{n:6d}" for n in row) for row in report.confusion),
    ]
    emit(asdict(report), as_json, lines)


# -- structure stability, geometry and compression (docs/metrics.md) ---------------------------


@metrics_group.command(name="stability")
@db_option
@click.option(
    "--sizes",
    default="100,500,1000,2000,5000",
    show_default=True,
    help="comma-separated sample sizes (traces); sizes above the corpus are dropped",
)
@click.option("--repeats", type=int, default=100, show_default=True, help="resamples per size")
@click.option("--alpha", type=float, default=0.0, show_default=True, help="Laplace smoothing")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--annotator", default=None, help="whose labels (needed when several labeled)")
@click.option("--model", default=None, help="only traces of this model")
@click.option("--source", default=None, help="only traces of this source")
@json_option
def stability_command(db, sizes, repeats, alpha, seed, annotator, model, source, as_json):
    """Stability versus sample size: r(P of n resampled traces, P of all), mean and sd (§8 B3)."""
    from bondscope.services.structure import (
        Selection,
        bootstrap_r,
        resolve_annotator,
        trace_transition_counts,
    )

    try:
        wanted = [int(size) for size in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected numbers like 100,500, got {sizes!r}") from None
    with open_project(db) as store:
        selection = resolve_annotator(store, Selection(model, source, annotator))
        ids, per_trace = trace_transition_counts(store, selection)
    curve = bootstrap_r(per_trace, wanted, repeats=repeats, alpha=alpha, seed=seed)
    data = {
        "selection": selection.describe(),
        "traces": len(ids),
        "repeats": repeats,
        "alpha": alpha,
        "seed": seed,
        "dropped": [n for n in wanted if n not in curve.sizes.tolist()],
        "curve": [
            {"n": int(n), "mean_r": float(m), "sd_r": float(sd)}
            for n, m, sd in zip(curve.sizes, curve.mean, curve.sd, strict=True)
        ],
    }
    lines = [f"stability: {data['selection']}, {len(ids)} traces, {repeats} resamples per size"]
    lines += [f"  n={p['n']}\tr={p['mean_r']:.4f} ± {p['sd_r']:.4f}" for p in data["curve"]]
    if data["dropped"]:
        lines.append(f"  dropped (more than {len(ids)} traces): {data['dropped']}")
    emit(data, as_json, lines)


@metrics_group.command(name="geometry")
@db_option
@click.option("--trace", "trace", required=True, help="trace name (or numeric id)")
@click.option("--annotator", default=None, help="whose labels and bonds (default: the only one)")
@click.option(
    "--embedder",
    type=click.Choice(["auto", "minilm", "tfidf"]),
    default="auto",
    show_default=True,
    help="step embeddings: MiniLM (ONNX) when it loads, else TF-IDF + SVD",
)
@json_option
def geometry_command(db, trace, annotator, embedder, as_json):
    """3-D t-SNE geometry of one trace: locality, reconnection, jumps, MEB, entropy (§8 C)."""
    from bondscope.services.geometry import geometry

    with open_project(db) as store:
        data = geometry(store, trace, annotator=annotator, embedder=embedder)
    jumps = "  ".join(f"{b}={_cell(j['mean'])}" for b, j in data["jump_length"].items())
    entropy = data["entropy"]
    lines = [
        f"geometry of {data['trace']} ({data['steps']} steps, labels of {data['annotator']}, "
        f"{data['embedder']} embeddings, perplexity {data['perplexity']:g})",
        f"clusters (average linkage, cut at {data['threshold']:g}): {data['clusters']}",
        f"deep locality (D steps within {data['threshold']:g}): "
        f"{_cell(data['deep_locality']['fraction'])} of {data['deep_locality']['steps']}",
        f"reflection reconnection: {_cell(data['reflection_reconnection']['rate'])} of "
        f"{data['reflection_reconnection']['steps']}",
        f"mean jump t-1 -> t: {jumps}",
        f"minimum enclosing ball: r={data['meb']['radius']:.4g}  V={data['meb']['volume']:.4g}",
        "reflection compaction (mean Δ%): "
        f"{_cell(data['reflection_compaction']['mean_delta_percent'])}",
        f"entropy: |ΔI| > 0.1 in {_cell(entropy['fraction_large_change'])} of steps; states "
        + "  ".join(f"{s}={n}" for s, n in entropy["state_counts"].items()),
    ]
    emit(data, as_json, lines)


@metrics_group.command(name="compression")
@db_option
@click.option(
    "--pair",
    "pairs",
    multiple=True,
    metavar="ORIGINAL:COMPRESSED",
    help="trace names of an original and its compressed version (repeatable)",
)
@click.option(
    "--compressed-source",
    default=None,
    help="pair every trace of this source with the original of the same question",
)
@click.option("--source", default=None, help="with --compressed-source: originals' source")
@click.option("--annotator", default=None, help="whose labels (needed when several labeled)")
@click.option("--alpha", type=float, default=0.001, show_default=True, help="Laplace smoothing")
@json_option
def compression_command(db, pairs, compressed_source, source, annotator, alpha, as_json):
    """Token reduction and structure shift from original traces to compressed ones (§6)."""
    from bondscope.services.compression import compression, pair_by_question
    from bondscope.services.geometry import find_trace

    if bool(pairs) == bool(compressed_source):
        raise click.UsageError("give --pair ORIGINAL:COMPRESSED or --compressed-source SOURCE")
    unpaired: list[str] = []
    with open_project(db) as store:
        if compressed_source:
            matched, unpaired = pair_by_question(store, compressed_source, source)
        else:
            matched = []
            for pair in pairs:
                original, sep, compressed = pair.partition(":")
                if not sep:
                    raise click.BadParameter(f"expected ORIGINAL:COMPRESSED, got {pair!r}")
                matched.append((find_trace(store, original), find_trace(store, compressed)))
        data = compression(store, matched, annotator=annotator, alpha=alpha)
    data["unpaired"] = unpaired
    pi = data["distribution"]
    lines = [
        f"{len(data['pairs'])} pairs, labels of {data['annotator']}",
        f"token reduction (pooled): {_cell(data['token_reduction'])}; "
        f"mean per pair: {_cell(data['mean_pair_token_reduction'])}",
        "distribution "
        + "  ".join(
            f"{b}: {a:.3f} -> {c:.3f}" for b, a, c in zip(data["behaviors"], *pi, strict=True)
        ),
        f"L1 of the distributions: {data['distribution_l1']:.4f}; "
        f"R+E share {data['long_range_share'][0]:.3f} -> {data['long_range_share'][1]:.3f}",
        f"graph: Pearson r {_cell(data['pearson_r'])} ({data['verdict']}), "
        f"weighted JS {data['weighted_js_bits']:.4f} bits",
    ]
    lines += [f"unpaired: {name}" for name in unpaired]
    emit(data, as_json, lines)


def main() -> None:
    plugins().pm.hook.register_commands(cli=cli)
    cli()
