"""An eval run's thresholds and verdict: defined in :mod:`drkit.plan.quality` (the gateway's
quality canary reads the same floors), re-exported here for the evals' callers."""

from __future__ import annotations

from drkit.plan.quality import DEFAULTS, Thresholds, resolve

__all__ = ["DEFAULTS", "Thresholds", "resolve"]
