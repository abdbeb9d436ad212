"""Re-segment stored traces. Steps whose span did not change keep their id, so their labels and
bonds stay; the other steps are retired (kept for the audit trail) and their labels reported.

One transaction per batch of traces, so a long re-segmentation never holds the write lock for
long: each trace is re-segmented entirely or not at all, and a failure or cancel keeps the
batches done so far (the run says `failed` or `cancelled` with the counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

from bondscope.domain import Step
from bondscope.hookspecs import Segmenter
from bondscope.plugin_manager import Plugins
from bondscope.progress import Cancelled, NullProgress, Progress, check_cancelled
from bondscope.services.importing import segment_trace
from bondscope.store import Store

BATCH_TRACES = 64  # traces re-segmented per transaction


@dataclass
class DroppedLabel:
    trace: str
    step: int
    annotator: str
    behavior: str


@dataclass
class SegmentReport:
    traces: int = 0
    changed: int = 0
    steps_kept: int = 0
    steps_added: int = 0
    steps_retired: int = 0
    dropped: list[DroppedLabel] = field(default_factory=list)
    run_id: int | None = None


def resegment(
    store: Store,
    plugins: Plugins,
    segmenter: str = "paragraph",
    trace_ids: list[int] | None = None,
    progress: Progress | None = None,
) -> SegmentReport:
    progress = progress or NullProgress()
    chosen = plugins.get("segmenter", segmenter)
    trace_ids = trace_ids if trace_ids is not None else store.trace_ids()
    report = SegmentReport()
    progress.start(f"segmenting ({segmenter})", len(trace_ids))
    with store.transaction():
        run_id = store.start_run("segment", {"segmenter": segmenter, "traces": len(trace_ids)})
    report.run_id = run_id
    status = "failed"
    try:
        for at in range(0, len(trace_ids), BATCH_TRACES):
            batch = trace_ids[at : at + BATCH_TRACES]
            counted = replace(report, dropped=list(report.dropped))
            try:
                _segment_batch(store, plugins, chosen, batch, run_id, report, progress)
            except BaseException:
                for counter in fields(report):  # the batch was rolled back: so are its counts
                    setattr(report, counter.name, getattr(counted, counter.name))
                raise
            progress.advance(len(batch))
        status = "done"
    except (KeyboardInterrupt, Cancelled):
        status = "cancelled"
        raise
    finally:
        with store.transaction():
            store.finish_run(
                run_id,
                status,
                {
                    "traces": report.traces,
                    "changed": report.changed,
                    "dropped_labels": len(report.dropped),
                },
            )
    return report


def _segment_batch(
    store: Store,
    plugins: Plugins,
    chosen: Segmenter,
    batch: list[int],
    run_id: int,
    report: SegmentReport,
    progress: Progress,
) -> None:
    """Re-segment a batch of traces in one transaction (per batch: keystrokes never wait long)."""
    conn = store.conn
    with store.transaction():
        for trace_id in batch:
            name, text, given_json = conn.execute(
                "SELECT name, text, given_steps FROM traces WHERE id = ?", (trace_id,)
            ).fetchone()
            given = [Step(a, b) for a, b in json.loads(given_json)] if given_json else None
            new_spans = segment_trace(plugins, chosen, text, given)
            current = store.active_steps(trace_id)
            report.traces += 1
            if [span for _, span in current] != new_spans:
                report.changed += 1
                _apply(store, trace_id, name, current, new_spans, run_id, report)
            check_cancelled(progress)


def _apply(
    store: Store,
    trace_id: int,
    name: str,
    current: list[tuple[int, Step]],
    new_spans: list[Step],
    run_id: int,
    report: SegmentReport,
) -> None:
    conn = store.conn
    by_span = {span: step_id for step_id, span in current}
    wanted = set(new_spans)
    retired = [step_id for step_id, span in current if span not in wanted]
    for row in conn.execute(  # json_each: SQLite caps bound variables at 250,000
        "SELECT step, annotator, behavior FROM current_labels WHERE step_id IN "
        "(SELECT value FROM json_each(?)) ORDER BY step, annotator",
        (json.dumps(retired),),
    ):
        report.dropped.append(DroppedLabel(name, row[0], row[1], row[2]))
    conn.executemany(
        "UPDATE steps SET retired_run_id = ? WHERE id = ?", [(run_id, i) for i in retired]
    )
    report.steps_retired += len(retired)
    for idx, span in enumerate(new_spans):
        step_id = by_span.get(span)
        if step_id is not None:
            conn.execute("UPDATE steps SET idx = ? WHERE id = ?", (idx, step_id))
            report.steps_kept += 1
        else:
            conn.execute(
                'INSERT INTO steps (trace_id, idx, start, "end", run_id) VALUES (?, ?, ?, ?, ?)',
                (trace_id, idx, span.start, span.end, run_id),
            )
            report.steps_added += 1
