"""MOLE-SYN synthesis and its fidelity report (services/synthesis.py, docs/synthesis.md)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click
from bondscope import llm_defaults
from bondscope.cli.base import (
    TerminalProgress,
    cli,
    db_option,
    emit,
    json_option,
    open_project,
    plugins,
    renamed_option,
)

# -- MOLE-SYN synthesis and its fidelity report (services/synthesis.py, docs/synthesis.md) -------


@cli.command(name="synthesize")
@db_option
@click.option("--questions", type=click.Path(path_type=Path), help="JSONL: question, answer")
@click.option("--preset", default=None, help="target graph: a built-in preset (bondscope presets)")
@renamed_option(
    "--from-source-model",
    "from_model",
    old="--from-model",
    default=None,
    metavar="M",
    help="target graph: labeled traces written by this model",
)
@click.option("--from-source", default=None, help="target graph: labeled traces of this source")
@click.option("--annotator", default=None, help="target graph: whose labels")
@click.option("--graph-db", type=click.Path(path_type=Path), help="project with those labels")
@click.option("--alpha", type=float, default=0.0, show_default=True, help="smoothing of --from-*")
@click.option("--llm-base-url", required=True, help=f"e.g. {llm_defaults.BASE_URL}")
@click.option("--llm-model", required=True, help="the model name the server knows")
@click.option("--llm-backend", default=llm_defaults.BACKEND, show_default=True)
@click.option("--api-key-env", default=llm_defaults.API_KEY_ENV, show_default=True)
@click.option(
    "--timeout",
    type=float,
    default=llm_defaults.TIMEOUT_S,
    show_default=True,
    help="seconds a request",
)
@click.option("--max-retries", type=int, default=llm_defaults.MAX_RETRIES, show_default=True)
@click.option(
    "--concurrency",
    type=int,
    default=llm_defaults.CONCURRENCY,
    show_default=True,
    help="requests at once",
)
@click.option("--n", "n", type=int, default=None, help="traces to write (default: one a question)")
@click.option(
    "--start",
    default=llm_defaults.START,
    show_default=True,
    help="first behavior: N, D, R, E or pi",
)
@click.option("--seed", type=int, default=llm_defaults.SEED, show_default=True)
@click.option("--max-steps", type=int, default=llm_defaults.MAX_STEPS, show_default=True)
@click.option(
    "--max-tokens",
    type=int,
    default=llm_defaults.MAX_TOKENS,
    show_default=True,
    help="per trace (est.)",
)
@click.option(
    "--step-tokens",
    type=int,
    default=llm_defaults.STEP_TOKENS,
    show_default=True,
    help="per request",
)
@click.option("--temperature", type=float, default=llm_defaults.TEMPERATURE, show_default=True)
@click.option("--top-p", type=float, default=llm_defaults.TOP_P, show_default=True)
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
            raise click.UsageError(
                "give --preset ID or --from-source-model/--from-source/--annotator"
            )
    with open_project(db, create=resume is None) as store, TerminalProgress() as progress:
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
            progress.close()  # before the message, so the bar does not swallow it
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
@renamed_option(
    "--labeler",
    "prelabeler",
    old="--prelabeler",
    default=None,
    help="the pre-labeler that measures the steps (default: bondscope-minilm, else keywords)",
)
@json_option
def fidelity_command(db, run_id, prelabeler, as_json):
    """Pre-label a synthesis run's steps and compare intended with measured behaviors."""
    from bondscope.domain import BEHAVIORS
    from bondscope.services.synthesis import fidelity

    with open_project(db) as store, TerminalProgress() as progress:
        report = fidelity(store, plugins(), run_id, prelabeler=prelabeler, progress=progress)
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
