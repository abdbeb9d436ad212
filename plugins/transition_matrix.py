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
            text=grid(counts.tolist(), percent.tolist(), stationary),
        )


def grid(
    counts: list[list[int]], percent: list[list[float]], stationary: dict[str, float] | None
) -> list[str]:
    """The matrix as the paper draws it: rows from, columns to, % (count) per cell."""
    corner = "from \\ to"
    lines = [f"{corner:<10}" + "".join(f"{b:>14}" for b in BEHAVIORS)]
    for i, a in enumerate(BEHAVIORS):
        cells = "".join(
            f"{f'{percent[i][j]:.1f}% ({counts[i][j]})':>14}" for j in range(len(BEHAVIORS))
        )
        lines.append(f"{a:<10}{cells}")
    if stationary is not None:
        lines.append("stationary pi: " + "  ".join(f"{b}={p:.3f}" for b, p in stationary.items()))
    return lines


@hookimpl
def register_metrics(register):
    register(TransitionMatrix())
