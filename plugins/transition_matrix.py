"""Metric `transition-matrix`: P-hat(to | from) in %, as in Fig. 5, with its stationary pi."""

from __future__ import annotations

from bondscope import BEHAVIORS, hookimpl
from bondscope.hookspecs import Labeled, MetricResult


class TransitionMatrix:
    name = "transition-matrix"
    description = "transition counts and row-normalized probabilities (%), stationary pi"

    def compute(self, labeled: Labeled) -> MetricResult:
        counts = labeled.transition_counts()
        percent = labeled.transition_matrix() * 100
        pi = labeled.stationary()
        stationary = None if pi is None else dict(zip(BEHAVIORS, pi.tolist(), strict=True))
        return MetricResult(
            data={
                "traces": labeled.traces,
                "transitions": int(counts.sum()),
                "behaviors": list(BEHAVIORS),
                "counts": counts.tolist(),
                "percent": percent.tolist(),
                "stationary": stationary,
            },
            columns=["from", "to", "count", "percent"],
            rows=[
                [a, b, int(counts[i, j]), float(percent[i, j])]
                for i, a in enumerate(BEHAVIORS)
                for j, b in enumerate(BEHAVIORS)
            ],
        )


@hookimpl
def register_metrics(register):
    register(TransitionMatrix())
