"""Pre-label stored traces with a pre-labeler plugin: one label event per step, with confidence.

The labels are stored as annotator `model:{name}@{version}` (kind `model`), so they never mix
with a person's, and the current view shows the newest run. One run row covers the whole call;
the label events are written **one transaction per batch of traces**. A pre-labeling run can take
minutes, and one long write transaction would block the app's label keystrokes for all that
time; per batch, each trace is either fully labeled or untouched, a cancel (or Ctrl+C, or a
plugin crash) keeps the batches already finished, and the run row says `cancelled` or `failed`
with the counts so far. Running again simply appends newer events.

A pre-labeler that has `set_provider(provider)` (the ONNX classifier) gets the provider first,
and one that has `active_provider` reports the provider it really ran on. (Not `configure`: the
llm pre-labeler's `configure(**options)` returns a configured copy and knows no provider.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bondscope.domain import BEHAVIORS, MODEL_PREFIX, Trace
from bondscope.hookspecs import Prelabeler, StepPrediction
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress, Progress
from bondscope.store import Store, now

BATCH_TRACES = 16


@dataclass
class PrelabelReport:
    prelabeler: str
    annotator: str
    traces: int = 0
    steps: int = 0
    status: str = "running"  # done, cancelled or failed, as in the run row
    provider: str | None = None
    seconds: float = 0.0
    run_id: int | None = None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def annotator_name(prelabeler: Prelabeler) -> str:
    return f"{MODEL_PREFIX}{prelabeler.name}@{prelabeler.version}"


def prelabel(
    store: Store,
    plugins: Plugins,
    prelabeler_name: str,
    trace_ids: list[int] | None = None,
    provider: str = "auto",
    progress: Progress | None = None,
    batch_traces: int = BATCH_TRACES,
) -> PrelabelReport:
    """Label every current step of the traces; returns when done or cancelled (see module doc)."""
    progress = progress or NullProgress()
    prelabeler: Prelabeler = plugins.get("prelabeler", prelabeler_name)
    set_provider = getattr(prelabeler, "set_provider", None)
    if set_provider is not None:
        plugins.call("prelabeler", prelabeler_name, lambda: set_provider(provider))
    trace_ids = trace_ids if trace_ids is not None else store.trace_ids()
    report = PrelabelReport(prelabeler_name, annotator_name(prelabeler))
    with store.transaction():
        report.run_id = store.start_run(
            "prelabel",
            {
                "prelabeler": prelabeler_name,
                "version": prelabeler.version,
                "provider": provider,
                "traces": len(trace_ids),
            },
        )
        annotator_id = store.annotator_id(report.annotator, "model")
    progress.start(f"pre-labeling ({prelabeler_name})", len(trace_ids))
    began = time.perf_counter()
    try:
        for at in range(0, len(trace_ids), batch_traces):
            if progress.cancelled():
                report.status = "cancelled"
                break
            batch = trace_ids[at : at + batch_traces]
            report.steps += label_traces(
                store, plugins, prelabeler, batch, annotator_id, report.run_id
            )
            report.traces += len(batch)
            report.seconds = time.perf_counter() - began
            progress.advance(len(batch), f"{report.steps} steps, {report.steps_per_second:.0f}/s")
        else:
            report.status = "done"
    except KeyboardInterrupt:
        report.status = "cancelled"
        raise
    except BaseException:
        report.status = "failed"
        raise
    finally:
        report.seconds = time.perf_counter() - began
        report.provider = getattr(prelabeler, "active_provider", None)
        with store.transaction():
            store.finish_run(report.run_id, report.status, _summary(report))
    return report


def _summary(report: PrelabelReport) -> dict[str, object]:
    return {
        "annotator": report.annotator,
        "traces": report.traces,
        "steps": report.steps,
        "provider": report.provider,
        "seconds": round(report.seconds, 3),
    }


def label_traces(
    store: Store,
    plugins: Plugins,
    prelabeler: Prelabeler,
    trace_ids: list[int],
    annotator_id: int,
    run_id: int,
) -> int:
    """Predict every active step of the traces and append their label events; the steps written.

    The one pre-label writer: `prelabel` calls it per batch, `synthesis.fidelity` per chunk of a
    run. The answer is checked first (`predict`): a pre-labeler that answers the wrong shape or a
    confidence outside [0, 1] is disabled and nothing of the batch is stored. The events are
    written after the prediction, in one transaction (a savepoint when the caller holds one).
    """
    traces = [store.load_trace(trace_id, annotators=[]) for trace_id in trace_ids]
    step_ids = [[step_id for step_id, _ in store.active_steps(t)] for t in trace_ids]
    predictions = predict(plugins, prelabeler, traces)
    stamp = now()
    rows = [
        (step_id, annotator_id, p.behavior, p.confidence, run_id, stamp)
        for ids, predicted in zip(step_ids, predictions, strict=True)
        for step_id, p in zip(ids, predicted, strict=True)
    ]
    with store.transaction():
        store.conn.executemany(
            "INSERT INTO label_events (step_id, annotator_id, behavior, confidence, run_id, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def predict(
    plugins: Plugins, prelabeler: Prelabeler, traces: list[Trace]
) -> list[list[StepPrediction]]:
    """The plugin's predictions for every step of the traces, checked (`services/batch` too)."""
    predictions = plugins.call(
        "prelabeler", prelabeler.name, prelabeler.predict, traces, limited=True
    )
    _check(plugins, prelabeler, traces, predictions)
    return predictions


def _check(
    plugins: Plugins,
    prelabeler: Prelabeler,
    traces: list[Trace],
    predictions: list[list[StepPrediction]],
) -> None:
    """A pre-labeler that answers the wrong shape is a broken plugin: disable it, store nothing."""
    problem = None
    if not isinstance(predictions, list) or not all(
        isinstance(predicted, list) and all(isinstance(p, StepPrediction) for p in predicted)
        for predicted in predictions
    ):
        problem = f"returned {type(predictions).__name__}, not a list of StepPrediction lists"
    elif len(predictions) != len(traces):
        problem = f"returned {len(predictions)} prediction lists for {len(traces)} traces"
    else:
        for trace, predicted in zip(traces, predictions, strict=True):
            if len(predicted) != len(trace.steps):
                problem = (
                    f"trace {trace.id!r}: {len(predicted)} predictions for {len(trace.steps)} steps"
                )
            elif any(p.behavior not in BEHAVIORS for p in predicted):
                problem = f"trace {trace.id!r}: a behavior is not one of {', '.join(BEHAVIORS)}"
            elif any(not _is_confidence(p.confidence) for p in predicted):
                problem = f"trace {trace.id!r}: a confidence is not null or a number in [0, 1]"
            if problem:
                break
    if problem:
        raise plugins.disable(plugins.owner("prelabeler", prelabeler.name), ValueError(problem))


def _is_confidence(value: object) -> bool:
    if value is None:
        return True
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= 1  # also False for NaN
    )
