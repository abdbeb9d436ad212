"""Commands of the gold-dataset workflow: pack create/merge, annotators, adjudicate.

Services: packs.py, annotators.py, adjudication.py; the export to a Hugging Face dataset folder
is `bondscope export --format hf-dataset` (data.py, services/gold_dataset.py). docs/gold.md.
"""

from __future__ import annotations

import getpass
from dataclasses import asdict
from pathlib import Path

import click
from bondscope.cli.base import (
    TerminalProgress,
    cell,
    cli,
    db_option,
    emit,
    json_option,
    open_project,
    plugins,
)
from bondscope.domain import BEHAVIORS, InputError


@cli.group(name="pack")
def pack_group() -> None:
    """Work packs: one project file per annotator to label offline, merged back later."""


@pack_group.command(name="create")
@db_option
@click.option("--annotator", required=True, help="who labels this pack")
@click.option("--traces", "n_traces", type=int, default=None, help="at most N fresh traces")
@click.option(
    "--where",
    multiple=True,
    metavar="FIELD=VALUE",
    help="select traces: model=, source=, name=GLOB, meta.KEY= (repeatable, all must hold)",
)
@click.option(
    "--overlap", type=int, default=0, show_default=True, help="traces other annotators have too"
)
@click.option(
    "--qc", type=int, default=0, show_default=True, help="QC traces with known gold labels"
)
@click.option("--qc-from", default="gold", show_default=True, help="whose labels QC checks against")
@click.option(
    "--prelabels",
    is_flag=False,
    flag_value="newest",
    default=None,
    metavar="MODEL",
    help="include a model's suggestions (alone: the newest model annotator)",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="NAME.bondscope")
@json_option
def pack_create(db, annotator, n_traces, where, overlap, qc, qc_from, prelabels, out, as_json):
    """Write a self-contained project file for one annotator (the app opens it)."""
    from bondscope.services.labeling import newest_model_annotator
    from bondscope.services.packs import create_pack

    with open_project(db) as store, TerminalProgress() as progress:
        if prelabels == "newest":
            prelabels = newest_model_annotator(store)
            if prelabels is None:
                raise InputError("the project has no model suggestions", field="--prelabels")
        report = create_pack(
            store,
            plugins(),
            annotator,
            out,
            traces=n_traces,
            where=list(where),
            overlap=overlap,
            qc=qc,
            qc_from=qc_from,
            prelabels=prelabels,
            progress=progress,
        )
    lines = [
        f"wrote {report.out} for {report.annotator}: {report.traces} traces, {report.steps} steps "
        f"({report.work} new, {report.overlap} shared with other annotators, {report.qc} for QC "
        f"with {report.qc_steps} checked steps)",
    ]
    if report.overlap < report.overlap_asked:
        lines.append(f"only {report.overlap} of {report.overlap_asked} overlap traces available")
    if report.qc < report.qc_asked:
        lines.append(f"only {report.qc} of {report.qc_asked} QC traces available")
    if report.prelabels:
        lines.append(f"suggestions from {report.prelabels} included")
    emit(asdict(report), as_json, lines)


@pack_group.command(name="merge")
@db_option
@click.argument("packs", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def pack_merge(db, packs, as_json):
    """Bring finished packs back (idempotent; only each pack's own annotator's labels)."""
    from bondscope.services.packs import merge_packs

    with open_project(db) as store, TerminalProgress() as progress:
        report = merge_packs(store, list(packs), progress)
    lines = []
    for m in report.packs:
        lines.append(
            f"{m.pack} ({m.annotator}): {m.labels_added} labels added, {m.labels_changed} changed, "
            f"{m.labels_cleared} cleared, {m.labels_unchanged} unchanged; bonds "
            f"+{m.bonds_added} -{m.bonds_removed}"
        )
        if m.unmatched:
            lines.append(f"  {m.unmatched} labels/bonds on steps the project no longer has")
        if m.ignored:
            others = ", ".join(f"{name} ({n})" for name, n in m.ignored.items())
            lines.append(f"  not merged, labels by other people: {others}")
        if not m.known:
            lines.append("  this project did not make the pack: its QC steps are not counted")
    if report.run_id is None:
        lines.append("nothing changed")
    data = {
        "packs": [asdict(m) | {"changes": m.changes} for m in report.packs],
        "run_id": report.run_id,
    }
    emit(data, as_json, lines)


@cli.command(name="annotators")
@db_option
@click.option(
    "--suggestions-from", default=None, help="model whose suggestions count (default: newest)"
)
@json_option
def annotators_command(db, suggestions_from, as_json):
    """Per annotator: steps, time per step, confirm vs correct, QC accuracy, agreement."""
    from bondscope.services.annotators import annotator_report

    with open_project(db) as store:
        data = annotator_report(store, suggestions_from)
    lines = [f"suggestions from: {data['suggestions_from'] or '(none)'}"]
    lines.append(
        "annotator\tkind\tsteps\ts/step\tconfirmed (s/step)\tcorrected (s/step)\tQC accuracy"
    )
    for a in data["annotators"]:
        qc = a["qc"]
        lines.append(
            f"{a['name']}\t{a['kind']}\t{a['steps']}\t{cell(a['seconds_per_step'])}\t"
            f"{a['confirm']['steps']} ({cell(a['confirm']['seconds_per_step'])})\t"
            f"{a['correct']['steps']} ({cell(a['correct']['seconds_per_step'])})\t"
            + (f"{cell(qc['accuracy'])} ({qc['correct']}/{qc['labeled']})" if qc["steps"] else "-")
        )
        for other in a["agreement"]:
            lines.append(
                f"    vs {other['with']}: {other['steps']} steps, "
                f"kappa {cell(other['cohen_kappa'])}, AC1 {cell(other['gwet_ac1'])}"
            )
    emit(data, as_json, lines)


def _parse_decision(text: str) -> tuple[str, int, str]:
    """TRACE:STEP=BEHAVIOR, e.g. `problem_1:12=R`."""
    where, sep, behavior = text.rpartition("=")
    trace, colon, step = where.rpartition(":")
    if not sep or not colon or not trace or not step.isdigit() or behavior not in BEHAVIORS:
        raise click.BadParameter(
            f"expected TRACE:STEP=BEHAVIOR (N, D, R or E), got {text!r}", param_hint="--set"
        )
    return trace, int(step), behavior


@cli.command(name="adjudicate")
@db_option
@click.option("--annotators", default=None, help="comma-separated names (default: every person)")
@click.option("--trace", "trace_name", default=None, help="only this trace")
@click.option("--limit", type=int, default=None, help="list at most N disputed steps")
@click.option(
    "--set",
    "decisions",
    multiple=True,
    metavar="TRACE:STEP=BEHAVIOR",
    help="decide a step (repeatable)",
)
@click.option("--interactive", "-i", is_flag=True, help="decide the listed steps one by one")
@click.option("--accept-agreed", is_flag=True, help="make every step all annotators agree on gold")
@click.option("--min-labels", type=int, default=2, show_default=True, help="for --accept-agreed")
@click.option("--reason", default="", help="why (for --set)")
@click.option("--by", default=None, help="who decides (default: your user name)")
@json_option
def adjudicate_command(
    db,
    annotators,
    trace_name,
    limit,
    decisions,
    interactive,
    accept_agreed,
    min_labels,
    reason,
    by,
    as_json,
):
    """List disputed steps, most disputed first; decide them into annotator `gold`."""
    from bondscope.services import adjudication

    names = [n.strip() for n in annotators.split(",") if n.strip()] if annotators else None
    by = by or getpass.getuser()
    with open_project(db) as store:
        trace_id = None
        if trace_name is not None:
            found = store.trace_ids(names=[trace_name])
            if not found:
                raise InputError(f"no trace named {trace_name!r}", field="--trace")
            trace_id = found[0]
        decided = []
        for text in decisions:
            trace, step, behavior = _parse_decision(text)
            step_id = _step_id(store, trace, step)
            adjudication.decide(store, step_id, behavior, by, reason)
            decided.append({"trace": trace, "step": step, "behavior": behavior})
        agreed = adjudication.accept_agreed(store, by, names, min_labels) if accept_agreed else 0
        disputes = adjudication.disputes(store, names, trace_id=trace_id, limit=limit)
        if interactive:
            decided += _decide_interactively(store, disputes, by)
            disputes = adjudication.disputes(store, names, trace_id=trace_id, limit=limit)
    lines = [f"decided {len(decided)} steps as {by}"] if decided else []
    if accept_agreed:
        lines.append(f"{agreed} steps the annotators agree on became gold")
    lines.append(
        f"{len(disputes)} disputed steps" + (" (most disputed first):" if disputes else "")
    )
    for d in disputes:
        votes = "  ".join(f"{name}={b}" for name, b in d.labels.items())
        lines.append(f"{d.trace}:{d.step}\t{d.disagreement:.2f}\t{votes}\t{d.text[:60]!r}")
    data = {
        "decided": decided,
        "agreed": agreed,
        "disputes": [asdict(d) for d in disputes],
    }
    emit(data, as_json, lines)


def _step_id(store, trace: str, step: int) -> int:
    row = store.conn.execute(
        "SELECT s.id FROM active_steps s JOIN traces t ON t.id = s.trace_id"
        " WHERE t.name = ? AND s.idx = ?",
        (trace, step),
    ).fetchone()
    if row is None:
        raise InputError(f"no step {step} in a trace named {trace!r}", field="--set")
    return row[0]


def _decide_interactively(store, disputes, by: str) -> list[dict]:
    from bondscope.services.adjudication import decide

    decided = []
    choices = click.Choice([*BEHAVIORS, "s", "q"], case_sensitive=False)
    for d in disputes:
        click.echo(f"\n{d.trace} step {d.step}: {d.text}")
        click.echo("  " + "  ".join(f"{name}={b}" for name, b in d.labels.items()))
        answer = click.prompt("label (N/D/R/E, s skips, q quits)", type=choices).upper()
        if answer == "Q":
            break
        if answer == "S":
            continue
        why = click.prompt("reason (optional)", default="", show_default=False)
        decide(store, d.step_id, answer, by, why)
        decided.append({"trace": d.trace, "step": d.step, "behavior": answer})
    return decided
