"""How each annotator works: volume, time, confirming vs correcting suggestions, QC, agreement.

Time per step is the `seconds` of the annotator's current label on the step (the app measures
the time from entering a step to labeling it; a merged pack label carries the sum over the
pack's events on that step). A label *confirms* a suggestion when it equals the suggesting
model's current label on the step and *corrects* it otherwise. QC accuracy compares the labels of
a pack's annotator with the labels the QC steps had when the pack was made (services/packs.py).
Agreement reuses services/agreement.py: Cohen's kappa and Gwet's AC1 on shared steps.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from bondscope.services.agreement import (
    cohen_kappa,
    confusion,
    gwet_ac1,
    load_annotations,
    nan_to_none,
)
from bondscope.services.labeling import newest_model_annotator
from bondscope.services.structure import SelectionError
from bondscope.store import Store

TIME_SQL = """
    SELECT annotator, annotator_kind, COUNT(*), COUNT(seconds), SUM(seconds)
    FROM current_labels GROUP BY annotator ORDER BY annotator
"""

SUGGESTION_SQL = """
    SELECT p.annotator, p.behavior = m.behavior, COUNT(*), COUNT(p.seconds), SUM(p.seconds)
    FROM current_labels p
    JOIN current_labels m ON m.step_id = p.step_id AND m.annotator = :model
    WHERE p.annotator != :model
    GROUP BY p.annotator, p.behavior = m.behavior
"""

QC_SQL = """
    SELECT p.annotator, COUNT(l.behavior), SUM(l.behavior = q.behavior), COUNT(*)
    FROM qc_labels q
    JOIN packs p ON p.id = q.pack_id
    JOIN active_steps s ON s.id = q.step_id
    LEFT JOIN current_labels l ON l.step_id = q.step_id AND l.annotator = p.annotator
    GROUP BY p.annotator
"""


def _per_step(count: int, total: float | None) -> float | None:
    return total / count if count else None


def annotator_report(store: Store, suggestions_from: str | None = None) -> dict[str, Any]:
    """One entry per annotator with labels, in name order (see the module docstring)."""
    model = suggestions_from or newest_model_annotator(store)
    entries: dict[str, dict[str, Any]] = {}
    for name, kind, steps, timed, total in store.conn.execute(TIME_SQL):
        entries[name] = {
            "name": name,
            "kind": kind,
            "steps": steps,
            "timed_steps": timed,
            "seconds": total or 0.0,
            "seconds_per_step": _per_step(timed, total),
            "confirm": {"steps": 0, "seconds_per_step": None},
            "correct": {"steps": 0, "seconds_per_step": None},
            "qc": {"steps": 0, "labeled": 0, "correct": 0, "accuracy": None},
            "agreement": [],
        }
    if model is not None:
        for name, same, steps, timed, total in store.conn.execute(SUGGESTION_SQL, {"model": model}):
            entries[name]["confirm" if same else "correct"] = {
                "steps": steps,
                "seconds_per_step": _per_step(timed, total),
            }
    for name, labeled, correct, steps in store.conn.execute(QC_SQL):
        if name in entries:
            entries[name]["qc"] = {
                "steps": steps,
                "labeled": labeled,
                "correct": correct or 0,
                "accuracy": (correct or 0) / labeled if labeled else None,
            }
    names = list(entries)
    try:
        found = load_annotations(store, names)
    except SelectionError:  # fewer than two annotators: nobody to agree with
        found = None
    if found is not None:
        for i, j in combinations(range(len(found.names)), 2):
            counts = confusion(found.ratings[:, i], found.ratings[:, j])
            steps = int(counts.sum())
            if not steps:
                continue
            kappa, ac1 = nan_to_none(cohen_kappa(counts)), nan_to_none(gwet_ac1(counts))
            observed = float(counts.trace() / steps)
            for a, b in ((i, j), (j, i)):
                entries[found.names[a]]["agreement"].append(
                    {
                        "with": found.names[b],
                        "kind": found.kinds[b],
                        "steps": steps,
                        "observed": observed,
                        "cohen_kappa": kappa,
                        "gwet_ac1": ac1,
                    }
                )
    return {"suggestions_from": model, "annotators": list(entries.values())}
