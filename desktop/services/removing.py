"""Removing traces: delete chosen traces (or everything one import or synthesis run added) with
their steps, label and bond events, in one transaction, recorded as a `remove` run.

The label and bond events of a trace reference only its own steps (and undo rows only rows of
the same step or edge), so the rows are deleted child first with foreign-key checks off for the
statement: with them on, SQLite would scan the event tables once per deleted event for rows
whose `reverts` point at it (there is no index on `reverts`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bondscope.store import Store


@dataclass(frozen=True, slots=True)
class RemoveReport:
    traces: int
    steps: int
    label_events: int
    bond_events: int
    run_id: int


def run_traces(store: Store, run_id: int) -> list[int]:
    """The traces a run added (an import or a synthesis run); an unknown run is a LookupError."""
    row = store.conn.execute("SELECT kind FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise LookupError(f"no run {run_id} in this project")
    return [r[0] for r in store.conn.execute("SELECT id FROM traces WHERE run_id = ?", (run_id,))]


def remove_traces(store: Store, trace_ids: list[int], why: dict[str, object]) -> RemoveReport:
    """Delete the traces and everything stored about them; `why` is kept in the run's params."""
    if not trace_ids:
        raise LookupError("no trace matches; nothing was removed")
    conn = store.conn
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside an outer transaction: then slower
    try:
        with store.transaction():
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS removed_steps (id INTEGER PRIMARY KEY)")
            conn.execute("DELETE FROM removed_steps")
            marks = ", ".join("?" * len(trace_ids))
            conn.execute(
                f"INSERT INTO removed_steps SELECT id FROM steps WHERE trace_id IN ({marks})",
                trace_ids,
            )
            labels = conn.execute(
                "DELETE FROM label_events WHERE step_id IN (SELECT id FROM removed_steps)"
            ).rowcount
            bonds = conn.execute(
                "DELETE FROM bond_events WHERE from_step_id IN (SELECT id FROM removed_steps)"
                " OR to_step_id IN (SELECT id FROM removed_steps)"
            ).rowcount
            steps = conn.execute(
                "DELETE FROM steps WHERE id IN (SELECT id FROM removed_steps)"
            ).rowcount
            conn.execute(
                f"UPDATE synthesis_items SET trace_id = NULL WHERE trace_id IN ({marks})",
                trace_ids,
            )
            traces = conn.execute(f"DELETE FROM traces WHERE id IN ({marks})", trace_ids).rowcount
            conn.execute("DELETE FROM removed_steps")
            run_id = store.start_run("remove", {**why, "traces": len(trace_ids)})
            summary = {"traces": traces, "steps": steps, "labels": labels, "bonds": bonds}
            store.finish_run(run_id, "done", summary)
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    return RemoveReport(traces, steps, labels, bonds, run_id)
