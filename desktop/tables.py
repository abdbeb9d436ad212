"""Traces as four flat tables (traces, steps, labels, bonds) for the Parquet and CSV exporters.

Rows refer to traces by their id (name) and to steps by their index, so the tables join without
Bondscope's internal row ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from bondscope.domain import Trace

COLUMNS: dict[str, tuple[str, ...]] = {
    "traces": ("trace_id", "source", "model", "question", "text", "answer", "n_steps", "meta"),
    "steps": ("trace_id", "step", "start", "end", "text"),
    "labels": (
        "trace_id",
        "step",
        "behavior",
        "annotator",
        "annotator_kind",
        "confidence",
        "seconds",
        "created_at",
    ),
    "bonds": ("trace_id", "from", "to", "type", "annotator"),
}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(row: Iterable[Any]) -> list[Any]:
    """A CSV row that a spreadsheet will not run: text starting like a formula gets a leading
    apostrophe (OWASP's CSV-injection advice); numbers, including negative ones, stay numbers."""
    return [
        "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value
        for value in row
    ]


def rows(trace: Trace) -> dict[str, list[tuple[Any, ...]]]:
    steps = trace.steps or []
    return {
        "traces": [
            (
                trace.id,
                trace.source,
                trace.model,
                trace.question,
                trace.text,
                trace.answer,
                len(steps),
                json.dumps(trace.meta, ensure_ascii=False),
            )
        ],
        "steps": [
            (trace.id, i, s.start, s.end, trace.text[s.start : s.end]) for i, s in enumerate(steps)
        ],
        "labels": [
            (
                trace.id,
                lb.step,
                lb.behavior,
                lb.annotator,
                trace.annotator_kinds.get(lb.annotator, ""),
                lb.confidence,
                lb.seconds,
                lb.created_at,
            )
            for lb in trace.labels
        ],
        "bonds": [(trace.id, b.source, b.target, b.type, b.annotator) for b in trace.bonds],
    }


def batches(traces: Iterable[Trace], size: int = 500) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Rows of `size` traces at a time, so exports stream instead of holding the corpus."""
    batch: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
    count = 0
    for trace in traces:
        for name, table_rows in rows(trace).items():
            batch[name].extend(table_rows)
        count += 1
        if count == size:
            yield batch
            batch, count = {name: [] for name in COLUMNS}, 0
    if count:
        yield batch
