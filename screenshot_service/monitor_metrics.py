"""Monitor runs by outcome and how late they start (README "Metrics and alerts").

Outcomes: ``baseline`` (nothing to compare with yet: the first good run, or after a change of
baseline), ``unchanged``, ``changed`` (the threshold was reached: the webhook was sent),
``failed`` (not charged; retried at the next interval).  Lag is the time from the slot a run
was due at to its claim: a scheduler falling behind (too few ``monitors.workers``, a busy
jobs lane, or no instance running monitors at all) shows there first.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

NAMESPACE = "screenshot"
RUN_OUTCOMES = ("baseline", "unchanged", "changed", "failed")
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "monitor_runs", "Monitor runs by outcome: baseline, unchanged, changed (webhook sent), failed.",
            ["outcome"], namespace=NAMESPACE, registry=registry)
        self.lag = Histogram(
            "monitor_run_lag_seconds", "How late monitor runs start behind their schedule.",
            buckets=LAG_BUCKETS, namespace=NAMESPACE, registry=registry)
        for outcome in RUN_OUTCOMES:
            self.runs.labels(outcome)

    def count_run(self, outcome: str) -> None:
        self.runs.labels(outcome if outcome in RUN_OUTCOMES else "failed").inc()

    def observe_lag(self, seconds: float) -> None:
        self.lag.observe(max(0.0, seconds))
