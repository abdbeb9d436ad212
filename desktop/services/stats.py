"""Counts for `bondscope stats` and the app's status bar: one SQL query per figure."""

from __future__ import annotations

from typing import Any

from bondscope.domain import BEHAVIORS
from bondscope.store import Store


def project_stats(store: Store) -> dict[str, Any]:
    conn = store.conn
    annotators: dict[str, Any] = {}
    for name, kind, behavior, n in conn.execute(
        "SELECT annotator, annotator_kind, behavior, COUNT(*) FROM current_labels "
        "GROUP BY annotator, behavior ORDER BY annotator"
    ):
        entry = annotators.setdefault(
            name, {"kind": kind, "labels": 0, "by_behavior": dict.fromkeys(BEHAVIORS, 0)}
        )
        entry["labels"] += n
        entry["by_behavior"][behavior] = n
    for name, bond_type, n in conn.execute(
        "SELECT annotator, type, COUNT(*) FROM current_bonds GROUP BY annotator, type"
    ):
        entry = annotators.setdefault(
            name, {"kind": "", "labels": 0, "by_behavior": dict.fromkeys(BEHAVIORS, 0)}
        )
        entry.setdefault("bonds", {})[bond_type] = n
    by_behavior = dict.fromkeys(BEHAVIORS, 0)
    for entry in annotators.values():
        for behavior, n in entry["by_behavior"].items():
            by_behavior[behavior] += n
    return {
        "traces": store.count("SELECT COUNT(*) FROM traces"),
        "steps": store.count("SELECT COUNT(*) FROM steps WHERE retired_run_id IS NULL"),
        "labels": sum(entry["labels"] for entry in annotators.values()),
        "labeled_steps": store.count("SELECT COUNT(DISTINCT step_id) FROM current_labels"),
        "bonds": store.count("SELECT COUNT(*) FROM current_bonds"),
        "by_behavior": by_behavior,
        "annotators": annotators,
        "models": dict(
            conn.execute(
                "SELECT model, COUNT(*) FROM traces GROUP BY model ORDER BY model"
            ).fetchall()
        ),
        "sources": dict(
            conn.execute(
                "SELECT source, COUNT(*) FROM traces GROUP BY source ORDER BY source"
            ).fetchall()
        ),
    }
