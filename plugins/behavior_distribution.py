"""Metric `behavior-distribution`: how often each behavior occurs (the marginal pi-hat of §3.2)."""

from __future__ import annotations

from bondscope import BEHAVIORS, hookimpl
from bondscope.hookspecs import Labeled, MetricResult


class BehaviorDistribution:
    name = "behavior-distribution"
    description = "count and share of labeled steps per behavior (pi-hat)"

    def compute(self, labeled: Labeled) -> MetricResult:
        counts = labeled.behavior_counts()
        total = int(counts.sum())
        shares = counts / total if total else counts * 0.0
        return MetricResult(
            data={
                "traces": labeled.traces,
                "steps": total,
                "counts": dict(zip(BEHAVIORS, counts.tolist(), strict=True)),
                "share": dict(zip(BEHAVIORS, shares.tolist(), strict=True)),
            },
            columns=["behavior", "count", "share"],
            rows=[[b, int(n), float(f)] for b, n, f in zip(BEHAVIORS, counts, shares, strict=True)],
        )


@hookimpl
def register_metrics(register):
    register(BehaviorDistribution())
