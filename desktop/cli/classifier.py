"""Pre-labeling, training and evaluating the step classifier (docs/classifier.md)."""

from __future__ import annotations

import sys
from dataclasses import asdict

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
    renamed_option,
    where_option,
)

# -- pre-labeling, training, evaluation (services/prelabeling.py, training.py, evaluation.py) ---


@cli.command(name="prelabel")
@db_option
@renamed_option(
    "--labeler",
    "prelabeler",
    old="--model",
    default="bondscope-minilm",
    show_default=True,
    help="the pre-labeler (see `bondscope plugins`): a trained model, keywords, llm, ...",
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
@renamed_option(
    "--source-model",
    "model_filter",
    old="--model-filter",
    default=None,
    metavar="M",
    help="only traces written by this model (the traces' `model`)",
)
@click.option("--source", default=None, help="only traces of this source")
@where_option
@json_option
def prelabel_command(db, prelabeler, provider, pattern, model_filter, source, where, as_json):
    """Label every step with a pre-labeler, as annotator model:NAME@VERSION with confidences."""
    from bondscope.services.prelabeling import prelabel

    with open_project(db) as store, TerminalProgress() as progress:
        ids = store.trace_ids(model=model_filter, source=source, pattern=pattern, meta=where)
        try:
            report = prelabel(store, plugins(), prelabeler, ids, provider, progress)
        except KeyboardInterrupt:
            progress.close()  # before the message, so the bar does not swallow it
            click.echo(
                "cancelled; the traces labeled so far are kept (run marked cancelled)", err=True
            )
            sys.exit(130)
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
@click.option(
    "--folds", type=int, default=0, show_default=True, help="grouped K-fold CV first (not --full)"
)
@click.option(
    "--head",
    type=click.Choice(["logreg", "gru"]),
    default="logreg",
    show_default=True,
    help="per-step logistic regression, or a bidirectional GRU over the whole trace",
)
@click.option(
    "--augment/--no-augment",
    default=True,
    show_default=True,
    help="also train on copies with cue words paraphrased (cue-synonyms-train)",
)
@click.option(
    "--calibrate", is_flag=True, help="temperature and per-class offsets chosen in CV (--folds)"
)
@json_option
def train_command(
    db, gold, out_name, full, test_fraction, seed, epochs, folds, head, augment, calibrate, as_json
):
    """Train the step classifier on gold labels; scores it on held-out traces."""
    from bondscope.services.training import train

    if full and folds:
        raise click.UsageError("--folds would score an encoder fine-tuned on its own test folds")
    if calibrate and not folds:
        raise click.UsageError("--calibrate chooses its offsets in cross-validation: give --folds")
    annotators = [name.strip() for name in gold.split(",") if name.strip()]
    with open_project(db) as store, TerminalProgress() as progress:
        report = train(
            store,
            annotators,
            out_name,
            "full" if full else "head",
            test_fraction=test_fraction,
            seed=seed,
            epochs=epochs,
            folds=folds,
            head=head,
            augment=augment,
            calibrate=calibrate,
            progress=progress,
        )
    lines = [
        f"model {report.name}@{report.version} ({report.level}) written to {report.folder}",
        f"trained on {report.train_steps} steps of {report.train_traces} traces; "
        f"held out {report.test_steps} steps of {report.test_traces} traces",
    ]
    if report.metrics:
        lines.append(
            f"held-out macro-F1 {cell(report.metrics['macro_f1'])} "
            f"(keyword baseline {cell(report.baseline['macro_f1'])}), "
            f"accuracy {cell(report.metrics['accuracy'])}"
        )
    if report.cv:
        model, baseline = report.cv["model"], report.cv["keyword_baseline"]
        lines.append(
            f"{report.cv['folds']}-fold CV macro-F1 {cell(model['macro_f1']['mean'])} "
            f"± {cell(model['macro_f1']['sd'])} (keyword baseline "
            f"{cell(baseline['macro_f1']['mean'])})"
        )
    emit(asdict(report), as_json, lines)


@cli.command(name="eval")
@db_option
@click.option("--gold", required=True, help="the reference annotator")
@click.option("--pred", required=True, help="the annotator to score, e.g. model:NAME@VERSION")
@renamed_option(
    "--source-model",
    "model_filter",
    old="--model",
    default=None,
    metavar="M",
    help="only traces written by this model (the traces' `model`)",
)
@click.option("--source", default=None, help="only traces of this source")
@click.option(
    "--perturb",
    type=click.Choice(["cue-synonyms"]),
    default=None,
    help="run --pred's pre-labeler again with cue words paraphrased; report the drop per class",
)
@click.option(
    "--provider",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="ONNX provider, with --perturb",
)
@json_option
def eval_command(db, gold, pred, model_filter, source, perturb, provider, as_json):
    """Score one annotator against another; steps are matched by character overlap.

    With --perturb, --pred names a pre-labeler (NAME or model:NAME@VERSION), which is run on the
    gold traces as they are and with their cue words paraphrased; nothing is written."""
    from bondscope.domain import BEHAVIORS
    from bondscope.services.evaluation import evaluate
    from bondscope.services.structure import SelectionError

    if perturb:
        _perturbed_eval(db, gold, pred, model_filter, source, perturb, provider, as_json)
        return
    with open_project(db) as store:
        report = evaluate(store, gold, pred, store.trace_ids(model=model_filter, source=source))
    if not report.traces:
        raise SelectionError(f"no trace has labels of both {gold} and {pred}: nothing to score")
    lines = [
        f"{pred} vs {gold}: {report.matched} steps of {report.traces} traces matched "
        f"({report.unmatched} gold steps unmatched)",
        f"accuracy {cell(report.accuracy)}  macro-F1 {cell(report.macro_f1)}  "
        f"ECE {cell(report.ece)}",
        "class\tprecision\trecall\tF1\tsupport",
        *(
            f"{b}\t{cell(v['precision'])}\t{cell(v['recall'])}\t{cell(v['f1'])}\t{v['support']}"
            for b, v in report.per_class.items()
        ),
        "confusion (rows gold, columns predicted " + " ".join(BEHAVIORS) + "):",
        *("  " + " ".join(f"{n:6d}" for n in row) for row in report.confusion),
    ]
    emit(asdict(report), as_json, lines)


def _perturbed_eval(db, gold, pred, model_filter, source, perturb, provider, as_json):
    from bondscope.domain import MODEL_PREFIX
    from bondscope.services.robustness import perturbation_drop

    name, _, version = pred.removeprefix(MODEL_PREFIX).partition("@")
    registry = plugins()
    try:
        installed = str(registry.get("prelabeler", name).version)
    except LookupError as error:
        raise click.UsageError(str(error).strip("'\"")) from None
    if version and version != installed:
        raise click.UsageError(
            f"{pred}: the installed pre-labeler {name} is version {installed}, not {version}"
        )
    with open_project(db) as store, TerminalProgress() as progress:
        ids = store.trace_ids(model=model_filter, source=source)
        try:
            report = perturbation_drop(
                store, registry, gold, name, perturb, ids, provider, progress
            )
        except LookupError as error:
            raise click.UsageError(str(error).strip("'\"")) from None
    a, b = report.original, report.perturbed

    def f1(scores: dict, behavior: str) -> str:
        return cell(scores["per_class"][behavior]["f1"])

    lines = [
        f"{name}@{report.version} vs {gold} on {report.steps} steps of {report.traces} traces, "
        f"as is and with {perturb} ({report.changed_steps} step texts changed, "
        f"{report.flipped} predictions flipped)",
        "\tas is\tperturbed\tdrop",
        f"macro-F1\t{cell(a['macro_f1'])}\t{cell(b['macro_f1'])}\t{cell(report.drop['macro'])}",
        *(f"F1 {c}\t{f1(a, c)}\t{f1(b, c)}\t{cell(report.drop[c])}" for c in ("N", "D", "R", "E")),
    ]
    emit(asdict(report), as_json, lines)


@cli.command(name="review")
@db_option
@renamed_option(
    "--suggestions-from",
    "model",
    old="--model",
    required=True,
    metavar="MODEL",
    help="the model annotator whose suggestions to review, model:NAME@V",
)
@click.option("--person", required=True, help="the annotator who checks")
@click.option("--threshold", type=float, default=0.9, show_default=True, help="accept at/above")
@click.option("--limit", type=int, default=20, show_default=True, help="queue length to show")
@click.option("--accept", is_flag=True, help="copy the unchecked suggestions above the threshold")
@json_option
def review_command(db, model, person, threshold, limit, accept, as_json):
    """Active learning: the least certain suggestions to check next, and the precision of the
    suggestions above a confidence threshold on the steps people already checked."""
    from bondscope.services.review import accept_suggestions, estimate_precision, uncertain_steps

    with open_project(db) as store:
        estimate = estimate_precision(store, model, person, threshold)
        queue = uncertain_steps(store, model, person, limit)
        accepted = accept_suggestions(store, model, person, threshold) if accept else 0
    data = {"estimate": asdict(estimate), "queue": [asdict(q) for q in queue], "accepted": accepted}
    if estimate.precision is None:
        quality = "no checked steps at this confidence yet"
    else:
        quality = (
            f"precision {estimate.precision:.2f} (95% {estimate.low:.2f}-{estimate.high:.2f}) "
            f"on {estimate.checked} checked steps"
        )
    lines = [
        f"suggestions with confidence >= {threshold}: {quality}; {estimate.to_accept} unchecked",
        *(f"  {q.confidence:.2f}  {q.suggestion}  {q.trace} step {q.step}" for q in queue),
    ]
    if accept:
        lines.append(f"accepted {accepted} suggestions as {person}'s labels")
    emit(data, as_json, lines)
