"""Composite availability: series and parallel, worked by hand and as properties; and the
measured figures drkit's state gives (testing hours, eval tokens, gateway downtime)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drkit.cost.availability import parallel, series
from drkit.cost.history import state_figures
from drkit.state.store import StateStore

fractions = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6)


def test_by_hand() -> None:
    assert series([0.99, 0.99]) == pytest.approx(0.9801)
    assert parallel([0.99, 0.99]) == pytest.approx(0.9999)
    assert parallel([0.999, 0.995]) == pytest.approx(1 - 0.001 * 0.005)
    with pytest.raises(ValueError, match="not a fraction"):
        series([1.5])


@given(fractions)
def test_series_never_beats_its_weakest_and_parallel_never_loses_to_its_best(
    parts: list[float],
) -> None:
    assert series(parts) <= min(parts) + 1e-12
    assert parallel(parts) >= max(parts) - 1e-12
    assert 0.0 <= series(parts) <= parallel(parts) + 1e-12 <= 1.0 + 1e-12


@given(fractions, st.floats(0.0, 1.0))
def test_adding_a_part(parts: list[float], extra: float) -> None:
    assert series([*parts, extra]) <= series(parts) + 1e-12
    assert parallel([*parts, extra]) >= parallel(parts) - 1e-12
    # duality: parallel is series of the downtimes
    assert 1 - parallel(parts) == pytest.approx(math.prod(1 - a for a in parts), abs=1e-12)


def test_state_figures_from_recorded_runs_and_events() -> None:
    state = StateStore(":memory:")
    now = 1_000_000.0
    state.record_verification("kb", "s1", ok=True, duration_s=60.0, at=now - 10)
    state.record_verification("kb", "s2", ok=True, duration_s=120.0, at=now - 5)
    state.record_drill(
        {
            "id": "d1",
            "scenario": "provider-outage",
            "started_at": now - 900,
            "ended_at": now - 0,
            "verdict": "pass",
        }
    )
    state.record_event("eval.run", "qa", "run", {"target": "a", "tokens": 1500}, at=now - 1)
    state.record_event(
        "eval.run",
        "qa",
        "run",
        {"route": "chat", "usage": {"input_tokens": 10, "output_tokens": 5}},
        at=now - 1,
    )
    window = 1000.0
    # target a ejected for 100 s, then back; b (same vendor) down 50 s of that: the
    # vendor was fully down 50 s
    state.record_event("gateway.ejection", "a", "out", {}, at=now - 500)
    state.record_event("gateway.recovery", "a", "back", {}, at=now - 400)
    state.record_event("gateway.ejection", "b", "out", {}, at=now - 450)
    state.record_event("gateway.recovery", "b", "back", {}, at=now - 300)
    figs = state_figures(
        state,
        activities={"provider-outage": "failover_drill"},
        vendor_of={"a": "openai", "b": "openai", "c": "anthropic"},
        now=now,
        window=window,
    )
    assert figs.restore_test_hours == {"kb": pytest.approx(90 / 3600)}
    assert figs.drill_hours == {"failover_drill": pytest.approx(0.25)}
    assert figs.eval_tokens_month == {"a": 1500, "chat": 15}
    assert figs.availability == {"openai": pytest.approx(1 - 50 / window)}
    assert figs.incident_hours_year is None


def test_over_investment_warning_for_a_non_critical_tier() -> None:
    from drkit.cost.model import estimate
    from drkit.plan.models import Plan

    def plan(standby: float) -> Plan:
        target = {
            "provider": "openai",
            "region": "eu",
            "model": "m",
            "base_url": "http://127.0.0.1:9",
        }
        return Plan.model_validate(
            {
                "version": 1,
                "name": "p",
                "tiers": {"standard": {"rto": "4h", "rpo": "1d"}},
                "repositories": {"primary": {"name": "r", "url": "file:///x", "region": "eu"}},
                "serving": {
                    "routes": [
                        {"name": "chat", "tier": "standard", "targets": [{"name": "a", **target}]}
                    ]
                },
                "providers": [{"name": "openai", "sla": 99.0}],
                "cost": {
                    "standby_per_month": {"standard": standby},
                    "outage_cost_per_hour": {"standard": 10},
                },
            }
        )

    # 1% of 8760 h × 10 = 876 a year of expected loss
    assert estimate(plan(72.0)).warnings(plan(72.0)) == []  # 864 a year: less
    [warning] = estimate(plan(100.0)).warnings(plan(100.0))
    assert "tier 'standard'" in warning
    assert "1,200.00 USD a year" in warning
