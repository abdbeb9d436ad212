"""Score a pre-labeler again with the traces' cue words paraphrased: does it read behavior or
keywords? (`bondscope eval --perturb cue-synonyms`; the paraphrases are in
`bondscope.models.perturbation`, held apart from the lexicon the features use.)

The pre-labeler runs twice in memory, on the gold traces as they are and on the same traces with
every cue phrase replaced, and both runs are scored against the gold annotator's labels on the
same steps (the perturbation keeps the segmentation, so steps pair by index). Nothing is written
to the project. The drop is the score as is minus the score perturbed, per class and macro.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bondscope.domain import BEHAVIORS
from bondscope.models.perturbation import perturb_trace
from bondscope.plugin_manager import Plugins
from bondscope.progress import NullProgress, Progress, check_cancelled
from bondscope.services.evaluation import score
from bondscope.store import Store

EVAL_PERTURBATIONS = ("cue-synonyms",)  # `cue-synonyms-train` is for augmentation only
BATCH_TRACES = 16


@dataclass
class PerturbationReport:
    gold: str
    prelabeler: str
    version: str
    perturbation: str
    traces: int = 0
    steps: int = 0
    changed_steps: int = 0  # gold steps whose text the perturbation changed
    flipped: int = 0  # gold steps whose predicted label changed
    original: dict[str, Any] = field(default_factory=dict)
    perturbed: dict[str, Any] = field(default_factory=dict)
    drop: dict[str, float | None] = field(default_factory=dict)  # "macro" and each class's F1


def perturbation_drop(
    store: Store,
    plugins: Plugins,
    gold_annotator: str,
    prelabeler_name: str,
    perturbation: str = "cue-synonyms",
    trace_ids: list[int] | None = None,
    provider: str = "auto",
    progress: Progress | None = None,
) -> PerturbationReport:
    """Run and score the pre-labeler on the gold traces as they are and perturbed (module doc)."""
    if perturbation not in EVAL_PERTURBATIONS:
        raise ValueError(
            f"unknown perturbation {perturbation!r} (one of {', '.join(EVAL_PERTURBATIONS)})"
        )
    progress = progress or NullProgress()
    prelabeler = plugins.get("prelabeler", prelabeler_name)
    if hasattr(prelabeler, "configure"):
        prelabeler.configure(provider=provider)
    report = PerturbationReport(
        gold_annotator, prelabeler_name, str(prelabeler.version), perturbation
    )
    ids = trace_ids if trace_ids is not None else store.trace_ids()
    traces = [store.load_trace(i, annotators=[gold_annotator]) for i in ids]
    traces = [t for t in traces if t.labels]
    if not traces:
        raise LookupError(f"no labels by {gold_annotator} on these traces")
    gold, as_is, perturbed = [], [], []
    progress.start(f"scoring {prelabeler_name} as is and with {perturbation}", len(traces))
    for at in range(0, len(traces), BATCH_TRACES):
        batch = traces[at : at + BATCH_TRACES]
        changed = [perturb_trace(t, perturbation) for t in batch]
        first = prelabeler.predict(batch)
        second = prelabeler.predict(changed)
        for trace, other, a, b in zip(batch, changed, first, second, strict=True):
            for label in trace.labels:
                step, twin = trace.steps[label.step], other.steps[label.step]
                gold.append(label.behavior)
                as_is.append(a[label.step])
                perturbed.append(b[label.step])
                before = trace.text[step.start : step.end]
                report.changed_steps += before != other.text[twin.start : twin.end]
        progress.advance(len(batch))
        check_cancelled(progress)
    report.traces, report.steps = len(traces), len(gold)
    report.flipped = sum(a.behavior != b.behavior for a, b in zip(as_is, perturbed, strict=True))
    report.original = score(gold, [p.behavior for p in as_is], [p.confidence for p in as_is])
    report.perturbed = score(
        gold, [p.behavior for p in perturbed], [p.confidence for p in perturbed]
    )
    report.drop = {"macro": _minus(report.original["macro_f1"], report.perturbed["macro_f1"])}
    for b in BEHAVIORS:
        before, after = report.original["per_class"][b], report.perturbed["per_class"][b]
        present = before["support"] or after["support"]
        report.drop[b] = before["f1"] - after["f1"] if present else None
    return report


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None
