"""Structure measurements: presets, metrics (and its stability, geometry and compression
subcommands), compare, agreement. Services: structure.py, agreement.py, geometry.py,
compression.py; docs/metrics.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from bondscope.cli.base import (
    cell,
    cli,
    db_option,
    emit,
    json_option,
    known_annotator,
    open_project,
    plugins,
    source_model_option,
    where_option,
)

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


def _check_by(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from bondscope.domain import InputError
    from bondscope.metafilter import PREFIX, meta_key

    if value is None or value in ("model", "source", "annotator"):
        return value
    if not value.startswith(PREFIX):
        raise click.BadParameter(f"expected model, source, annotator or meta.KEY, got {value!r}")
    try:
        meta_key(value, "--by")
    except InputError as error:
        raise click.BadParameter(error.message) from None
    return value


@click.command(name="metrics")
@click.argument("name")
@db_option
@click.option(
    "--by",
    callback=_check_by,
    metavar="model|source|annotator|meta.KEY",
    help="one result per value, e.g. --by meta.correct",
)
@click.option("--annotator", default=None, help="whose labels (needed when several labeled)")
@source_model_option
@click.option("--source", default=None, help="only traces of this source")
@where_option
@click.option("--run", type=int, default=None, help="only labels written by this run")
@click.option("--csv", "csv_out", type=click.Path(path_type=Path), help="also write the table")
@json_option
def metrics_command(name, db, by, annotator, model, source, where, run, csv_out, as_json):
    """Compute metric NAME (see `bondscope plugins`) on a selection of labeled traces."""
    import csv

    from bondscope.hookspecs import MetricResult
    from bondscope.services.structure import (
        LabeledSelection,
        Selection,
        SelectionError,
        group_name,
        groups,
        mixing_check,
    )
    from bondscope.tables import spreadsheet_safe

    metric = plugins().get("metric", name)
    selection = Selection(model=model, source=source, annotator=annotator, run=run, meta=where)
    results = []
    with open_project(db) as store:
        known_annotator(store, annotator)
        parts = groups(store, selection, by) if by else [selection]
        if not parts:
            raise SelectionError(f"no labels match {selection.describe()}")
        for part in parts:
            labeled = LabeledSelection(store, part)
            result = plugins().call("metric", name, metric.compute, labeled)
            if not isinstance(result, MetricResult):
                error = TypeError(f"compute() returned {type(result).__name__}, not MetricResult")
                raise plugins().disable(plugins().owner("metric", name), error)
            results.append((group_name(part, by) if by else labeled.name, labeled.name, result))
        warnings = [] if by else mixing_check(store, selection)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if csv_out is not None:
        with open(csv_out, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(spreadsheet_safe([by or "selection", *results[0][2].columns]))
            for group, _, result in results:
                writer.writerows(spreadsheet_safe([group, *row]) for row in result.rows)
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
        if result.text is not None:
            lines += ["  " + line for line in result.text]
            continue
        lines.append("  " + "\t".join(result.columns))
        lines += ["  " + "\t".join(cell(value) for value in row) for row in result.rows]
    emit(data, as_json, lines)


SIDE_STARTS = ("--preset", "--db")
# filter -> its key in a side; --model is the old spelling of --source-model (#14)
SIDE_FILTERS = {
    "--source-model": "model",
    "--model": "model",
    "--source": "source",
    "--annotator": "annotator",
    "--run": "run",
    "--where": "where",
}
SIDE_HELP = (
    "each side is --preset ID or --db FILE [--source-model M] [--source S] [--annotator A] "
    "[--run N] [--where meta.KEY=VALUE ...]"
)


def parse_sides(tokens: tuple[str, ...]) -> list[dict[str, Any]]:
    """Split `--preset A --db p.db --source-model M` into sides; filters belong to the --db before
    them.
    `--where` may repeat (all conditions hold); the others are given once per side."""
    sides: list[dict[str, Any]] = []
    items = iter(tokens)
    for token in items:
        option, has_value, value = token.partition("=")
        if option not in SIDE_STARTS and option not in SIDE_FILTERS:
            raise click.UsageError(f"unexpected {token!r}; {SIDE_HELP}")
        if not has_value:
            value = next(items, None)
            if value is None:
                raise click.UsageError(f"{option} needs a value")
        key = SIDE_FILTERS.get(option) or option.removeprefix("--")
        if option in SIDE_STARTS:
            sides.append({key: value})
        elif not sides or "db" not in sides[-1]:
            raise click.UsageError(f"{option} must follow the --db it filters; {SIDE_HELP}")
        elif key == "where":
            sides[-1].setdefault("where", []).append(value)
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
    epilog="Example: bondscope compare --preset deepseek-r1-0528 --db p.db --source-model M --json",
)
@click.argument("sides", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--alpha", type=float, default=0.0, show_default=True, help="Laplace smoothing of --db sides"
)
@json_option
def compare_command(sides, alpha, as_json):
    """Compare two structures: Pearson r, pi-weighted JS, L1 of the pis, and a verdict.

    SIDES: two of `--preset ID` and `--db FILE [--source-model M] [--source S] [--annotator A]
    [--run N] [--where meta.KEY=VALUE ...]`, in any combination.
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


def _side_matrix(side: dict[str, Any], alpha: float) -> dict[str, Any]:
    """One side of `compare`: a preset's matrix, or one counted from a project."""
    from bondscope.domain import InputError
    from bondscope.metafilter import parse_where
    from bondscope.services.structure import Selection, corpus_matrix, preset

    if "preset" in side:
        found = preset(side["preset"])
        return {"kind": "preset", "label": f"preset {found.id}", "P": found.P}
    try:
        run = int(side["run"]) if "run" in side else None
    except ValueError:
        raise click.UsageError(f"--run needs a number, got {side['run']!r}") from None
    try:
        meta = tuple(parse_where(text) for text in side.get("where", []))
    except InputError as error:
        raise click.UsageError(f"--where: {error.message}") from None
    selection = Selection(side.get("model"), side.get("source"), side.get("annotator"), run, meta)
    with open_project(Path(side["db"])) as store:
        matrix = corpus_matrix(store, selection, alpha)
    return {
        "kind": "db",
        "label": f"{side['db']} ({matrix.selection.describe()})",
        "traces": matrix.counts.traces,
        "transitions": int(matrix.counts.transitions.sum()),
        "P": matrix.P,
    }


# -- agreement between annotators (services/agreement.py, docs/metrics.md "Agreement") -----------


@cli.command(name="agreement")
@db_option
@click.option(
    "--annotators", default=None, help="comma-separated names (default: all who labeled or bonded)"
)
@source_model_option
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
        f"Krippendorff's alpha (nominal): {cell(data['krippendorff_alpha'])}",
        f"Gwet's AC1 (all annotators): {cell(data['gwet_ac1'])}",
        "pair\tkind\tsteps\tagree\tkappa\tAC1\tbond F1 (matched/a/b)",
    ]
    shown = [pair for pair in data["pairs"] if pair["steps"]]
    for pair in shown:
        bonds = pair["bonds"]
        lines.append(
            f"{pair['a']} vs {pair['b']}\t{pair['kind']}\t{pair['steps']}\t"
            f"{cell(pair['observed'])}\t{cell(pair['cohen_kappa'])}\t{cell(pair['gwet_ac1'])}"
            f"\t{cell(bonds['f1'])} ({bonds['matched']}/{bonds['a_bonds']}/{bonds['b_bonds']})"
        )
    if len(shown) < len(data["pairs"]):
        hidden = len(data["pairs"]) - len(shown)
        lines.append(f"({hidden} pairs with no step in common not shown; --json lists them)")
    emit(data, as_json, lines)


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
@source_model_option
@click.option("--source", default=None, help="only traces of this source")
@json_option
def stability_command(db, sizes, repeats, alpha, seed, annotator, model, source, as_json):
    """Stability versus sample size: r(P of n resampled traces, P of all), mean and sd (§8 B3)."""
    from bondscope.services.structure import (
        Selection,
        SelectionError,
        bootstrap_r,
        resolve_annotator,
        trace_transition_counts,
    )

    try:
        wanted = [int(size) for size in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected numbers like 100,500, got {sizes!r}") from None
    with open_project(db) as store:
        known_annotator(store, annotator)
        selection = resolve_annotator(store, Selection(model, source, annotator))
        ids, per_trace = trace_transition_counts(store, selection)
    curve = bootstrap_r(per_trace, wanted, repeats=repeats, alpha=alpha, seed=seed)
    if not len(curve.sizes):  # say why there is no curve, and what would give one
        fitting = ",".join(map(str, sorted({max(1, len(ids) * k // 4) for k in (1, 2, 4)})))
        raise SelectionError(
            f"every sample size ({sizes}) is larger than the {len(ids)} traces of "
            f"{selection.describe()}; try --sizes {fitting}"
        )
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
        known_annotator(store, annotator)
        data = geometry(store, trace, annotator=annotator, embedder=embedder)
    jumps = "  ".join(f"{b}={cell(j['mean'])}" for b, j in data["jump_length"].items())
    entropy = data["entropy"]
    lines = [
        f"geometry of {data['trace']} ({data['steps']} steps, labels of {data['annotator']}, "
        f"{data['embedder']} embeddings, perplexity {data['perplexity']:g})",
        f"clusters (average linkage, cut at {data['threshold']:g}): {data['clusters']}",
        f"deep locality (D steps within {data['threshold']:g}): "
        f"{cell(data['deep_locality']['fraction'])} of {data['deep_locality']['steps']}",
        f"reflection reconnection: {cell(data['reflection_reconnection']['rate'])} of "
        f"{data['reflection_reconnection']['steps']}",
        f"mean jump t-1 -> t: {jumps}",
        f"minimum enclosing ball: r={data['meb']['radius']:.4g}  V={data['meb']['volume']:.4g}",
        "reflection compaction (mean Δ%): "
        f"{cell(data['reflection_compaction']['mean_delta_percent'])}",
        f"entropy: |ΔI| > 0.1 in {cell(entropy['fraction_large_change'])} of steps; states "
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
        known_annotator(store, annotator)
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
        f"token reduction (pooled): {cell(data['token_reduction'])}; "
        f"mean per pair: {cell(data['mean_pair_token_reduction'])}",
        "distribution "
        + "  ".join(
            f"{b}: {a:.3f} -> {c:.3f}" for b, a, c in zip(data["behaviors"], *pi, strict=True)
        ),
        f"L1 of the distributions: {data['distribution_l1']:.4f}; "
        f"R+E share {data['long_range_share'][0]:.3f} -> {data['long_range_share'][1]:.3f}",
        f"graph: Pearson r {cell(data['pearson_r'])} ({data['verdict']}), "
        f"weighted JS {data['weighted_js_bits']:.4f} bits",
    ]
    lines += [f"unpaired: {name}" for name in unpaired]
    emit(data, as_json, lines)
