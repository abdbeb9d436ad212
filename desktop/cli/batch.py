"""`bondscope batch`: pre-labeling and corpus metrics on Ray (services/batch.py, docs/cluster.md).

Ray is an optional extra; without it these commands say how to install it, and nothing else in
the CLI imports it.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click
from bondscope.cli.base import (
    TerminalProgress,
    cell,
    cli,
    emit,
    json_option,
    parse_options,
    plugins,
    renamed_option,
)
from bondscope.domain import BEHAVIORS

address_option = click.option(
    "--ray-address",
    "address",
    default=None,
    metavar="ADDR",
    help="a running Ray cluster (host:port, ray://host:10001 or auto); default: a local Ray",
)


@cli.group(name="batch")
def batch_group() -> None:
    """Bulk work on a Ray cluster (or a local Ray): pre-label corpora into Parquet shards and
    measure them. Needs the cluster extra: pip install "bondscope[cluster]"."""


@batch_group.command(name="prelabel")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="a file or folder any importer reads (repeatable)",
)
@click.option(
    "--output", required=True, type=click.Path(path_type=Path), help="folder of Parquet shards"
)
@renamed_option(
    "--labeler",
    "prelabeler",
    old="--model",
    default="bondscope-minilm",
    show_default=True,
    help="the pre-labeler (see `bondscope plugins`)",
)
@address_option
@click.option(
    "--num-gpus-per-worker",
    "gpus_per_worker",
    type=float,
    default=None,
    help="GPUs per actor (0: CPU actors); default 1 when the cluster has GPUs, else 0",
)
@click.option(
    "--workers", type=int, default=None, help="actors (default: one per GPU, or per free core)"
)
@click.option(
    "--batch-size",
    type=int,
    default=16,
    show_default=True,
    help="traces per model call, as `prelabel` groups them",
)
@click.option(
    "--shard-traces",
    type=int,
    default=1024,
    show_default=True,
    help="traces per output shard (a multiple of --batch-size)",
)
@click.option("--format", "format_", default="auto", show_default=True, help="importer name")
@click.option(
    "--segmenter", default="paragraph", show_default=True, help="for traces without steps"
)
@click.option(
    "--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="importer option"
)
@json_option
def batch_prelabel_command(
    inputs,
    output,
    prelabeler,
    address,
    gpus_per_worker,
    workers,
    batch_size,
    shard_traces,
    format_,
    segmenter,
    options,
    as_json,
):
    """Read, segment and pre-label a corpus on Ray into Parquet shards (`bondscope import` reads
    them); a rerun skips the shards already written."""
    from bondscope.services.batch import batch_prelabel

    with TerminalProgress() as progress:
        try:
            report = batch_prelabel(
                plugins(),
                list(inputs),
                output,
                prelabeler=prelabeler,
                batch_size=batch_size,
                shard_traces=shard_traces,
                segmenter=segmenter,
                format=format_,
                options=parse_options(options),
                address=address,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
                progress=progress,
            )
        except KeyboardInterrupt:
            progress.close()  # before the message, so the bar does not swallow it
            click.echo(
                f"cancelled; the shards written so far are kept in {output}: "
                "run the same command again to resume",
                err=True,
            )
            sys.exit(130)
    data = {**asdict(report), "steps_per_second": report.steps_per_second}
    lines = [
        f"{report.status}: {report.shards_written} shards written ({report.traces} traces, "
        f"{report.steps} steps labeled as {report.annotator}), {report.shards_skipped} already "
        f"there, in {report.seconds:.1f} s ({report.steps_per_second:.0f} steps/s)",
    ]
    if report.workers:
        lines.append(f"workers: {report.workers} on {report.device}")
    if report.skipped:
        lines.append(f"skipped {len(report.skipped)} files no importer recognizes:")
        lines += [f"  {path}" for path in report.skipped]
    emit(data, as_json, lines)


@batch_group.command(name="metrics")
@click.option(
    "--input",
    "root",
    required=True,
    type=click.Path(path_type=Path),
    help="a folder of Parquet shards (batch prelabel output, or Parquet exports)",
)
@click.option("--by", default=None, metavar="model|source|meta.KEY", help="one result per value")
@click.option("--annotator", default=None, help="whose labels (needed when several labeled)")
@click.option("--preset", "presets", multiple=True, metavar="ID", help="also compare with a preset")
@click.option(
    "--alpha", type=float, default=0.0, show_default=True, help="Laplace smoothing for compare"
)
@address_option
@json_option
def batch_metrics_command(root, by, annotator, presets, alpha, address, as_json):
    """Behavior distributions, transition matrices, stationary pi and comparisons of a sharded
    corpus: per-shard counts on Ray, summed."""
    from bondscope.services.batch import batch_metrics

    with TerminalProgress() as progress:
        result = batch_metrics(
            plugins(),
            root,
            by=by,
            annotator=annotator,
            alpha=alpha,
            presets=tuple(presets),
            address=address,
            progress=progress,
        )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    data = {
        "annotator": result.annotator,
        "by": result.by,
        "shards": result.shards,
        "results": [
            {
                "group": group.value,
                "selection": group.selection,
                **{name: metric.data for name, metric in group.metrics.items()},
            }
            for group in result.groups
        ],
        "comparisons": result.comparisons,
        "warnings": result.warnings,
    }
    lines = [f"{result.shards} shards, labels of {result.annotator}"]
    for group in result.groups:
        matrix = group.metrics["transition-matrix"].data
        share = group.metrics["behavior-distribution"].data["share"]
        lines.append(f"{group.selection}: {matrix['traces']} traces")
        lines.append("  share  " + "  ".join(f"{b} {cell(share[b])}" for b in BEHAVIORS))
        lines.append("  P(to|from) %  " + "\t".join(BEHAVIORS))
        lines += [
            f"  {b}\t" + "\t".join(cell(value) for value in row)
            for b, row in zip(BEHAVIORS, matrix["percent"], strict=True)
        ]
        pi = matrix["stationary"]
        lines.append(
            "  stationary pi  "
            + ("  ".join(f"{b} {cell(pi[b])}" for b in BEHAVIORS) if pi else "undefined")
        )
    for entry in result.comparisons:
        if "skipped" in entry:
            lines.append(f"{entry['a']} vs {entry['b']}: skipped ({entry['skipped']})")
        else:
            lines.append(
                f"{entry['a']} vs {entry['b']}: r {entry['pearson_r']:.3f} ({entry['verdict']}), "
                f"pi-weighted JS {entry['weighted_js_bits']:.4f} bits, pi L1 {entry['pi_l1']:.3f}"
            )
    emit(data, as_json, lines)
