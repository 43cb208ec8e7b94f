"""Component states from events: the rules of drkit.status.states, and the uptime weights."""

from __future__ import annotations

import pytest

from drkit.errors import IncidentNotFound, InputError
from drkit.state.store import StateStore
from drkit.status import uptime
from drkit.status.incidents import Incidents
from drkit.status.states import (
    FAILOVER_WINDOW_S,
    PageComponent,
    Signal,
    State,
    current_states,
    replay,
    rollup,
)

COMPS = [PageComponent("Assistant API", ("assistant",)), PageComponent("Knowledge base", ("kb",))]
ROUTES = {"assistant": ["primary", "secondary"]}


def states(signals: list[Signal], now: float, **kw: object) -> dict[str, State]:
    changes = replay(COMPS, ROUTES, signals, now=now, **kw)  # type: ignore[arg-type]
    return {k: v.state for k, v in current_states(changes).items()}


def eject(at: float, target: str, reason: str = "http_5xx") -> Signal:
    return Signal(at, "gateway.ejection", target, {"target": target, "reason": reason})


def test_primary_ejected_is_degraded_performance_and_recovery_clears_it() -> None:
    sig = [eject(10, "primary")]
    assert states(sig, 20)["Assistant API"] == State.DEGRADED_PERFORMANCE
    sig.append(Signal(30, "gateway.recovery", "primary", {"target": "primary"}))
    assert states(sig, 40)["Assistant API"] == State.OPERATIONAL
    assert states(sig, 40)["Knowledge base"] == State.OPERATIONAL


def test_all_targets_ejected_is_major_outage() -> None:
    got = states([eject(10, "primary"), eject(11, "secondary")], 20)
    assert got["Assistant API"] == State.MAJOR_OUTAGE
    assert rollup(got.values()) == State.MAJOR_OUTAGE


def test_quality_ejection_and_failed_eval_are_degraded_quality() -> None:
    assert states([eject(10, "secondary", "quality")], 20)["Assistant API"] == (
        State.DEGRADED_QUALITY
    )
    ev = [Signal(10, "eval.run", "assistant", {"route": "assistant", "passed": False})]
    assert states(ev, 20)["Assistant API"] == State.DEGRADED_QUALITY
    ev.append(Signal(15, "eval.run", "assistant", {"route": "assistant", "passed": True}))
    assert states(ev, 20)["Assistant API"] == State.OPERATIONAL


def test_a_failover_degrades_for_its_window_only() -> None:
    sig = [Signal(100, "gateway.failover", "assistant/primary", {"route": "assistant"})]
    assert states(sig, 110)["Assistant API"] == State.DEGRADED_PERFORMANCE
    assert states(sig, 100 + FAILOVER_WINDOW_S + 1)["Assistant API"] == State.OPERATIONAL


def test_the_failed_target_recovering_ends_the_failover_window() -> None:
    failover = {"route": "assistant", "from": "primary", "to": "secondary"}
    sig = [Signal(100, "gateway.failover", "assistant/primary", failover), eject(101, "primary")]
    assert states(sig, 110)["Assistant API"] == State.DEGRADED_PERFORMANCE
    sig.append(Signal(120, "gateway.recovery", "primary", {"target": "primary"}))
    assert states(sig, 121)["Assistant API"] == State.OPERATIONAL
    other = [Signal(100, "gateway.failover", "assistant/primary", failover)]
    other.append(Signal(120, "gateway.recovery", "secondary", {"target": "secondary"}))
    assert states(other, 121)["Assistant API"] == State.DEGRADED_PERFORMANCE


def test_rpo_breach_degrades_a_data_component_until_it_is_met() -> None:
    sig = [Signal(10, "rpo.breach", "kb", {}, "kb: newest snapshot 3h old (target 1h)")]
    changes = replay(COMPS, ROUTES, sig, now=20)
    now = current_states(changes)["Knowledge base"]
    assert now.state == State.DEGRADED_PERFORMANCE
    assert "3h old" in now.cause
    sig.append(Signal(15, "rpo.ok", "kb", {}))
    assert states(sig, 20)["Knowledge base"] == State.OPERATIONAL


def test_a_drill_window_is_maintenance_and_not_downtime() -> None:
    sig = [eject(110, "primary"), eject(111, "secondary")]
    got = states(sig, 150, maintenance=[(100.0, 200.0, "drill provider-outage")])
    assert got["Assistant API"] == State.UNDER_MAINTENANCE
    changes = replay(COMPS, ROUTES, sig, now=150, maintenance=[(100.0, 200.0, "drill")])
    day = uptime.bars(changes, "Assistant API", now=150, days=1, since=0)[0]
    assert day.uptime == 1.0  # 100 s operational, 50 s maintenance excluded


def test_uptime_weights_major_and_partial_outages() -> None:
    sig = [eject(50, "primary"), eject(50, "secondary")]
    changes = replay(COMPS, ROUTES, sig, now=100)
    day = uptime.bars(changes, "Assistant API", now=100, days=1, since=0)[0]
    assert day.uptime == pytest.approx(0.5)
    assert day.level == "major_outage"
    assert uptime.WEIGHTS[State.PARTIAL_OUTAGE] == 0.3


def test_incidents_are_event_sourced_and_validated() -> None:
    store = StateStore(":memory:")
    book = Incidents(store, ["Assistant API"])
    with pytest.raises(InputError, match="unknown status component"):
        book.open("x", components=["Nope"])
    assert store.events(kind="incident.") == []  # a refused command writes nothing
    inc = book.open("Slow answers", components=["Assistant API"], draft=True)
    assert not inc.public
    book.approve(inc.id, by="alice")
    assert book.get(inc.id).public
    book.update(inc.id, "identified", "Primary provider returns 503s")
    book.set_role(inc.id, "commander", "alice")
    book.resolve(inc.id)
    got = book.get(inc.id)
    assert [u.status for u in got.updates] == ["investigating", "identified", "resolved"]
    assert got.roles == {"commander": "alice"}
    assert got.resolved
    with pytest.raises(InputError, match="resolved"):
        book.update(inc.id, "monitoring", "more")
    with pytest.raises(IncidentNotFound):
        book.get("inc-99")


def test_a_draft_can_be_discarded_a_public_incident_cannot() -> None:
    store = StateStore(":memory:")
    book = Incidents(store, ["Assistant API"])
    public = book.open("Outage", components=["Assistant API"])
    with pytest.raises(InputError, match="cannot be discarded"):
        book.discard(public.id, "oops")
    draft = book.open("Maybe", components=["Assistant API"], draft=True)
    with pytest.raises(InputError, match="reason is empty"):
        book.discard(draft.id, " ")
    book.discard(draft.id, "false alarm: a load test", by="alice")
    got = book.get(draft.id)
    assert got.discarded == "false alarm: a load test"
    assert got.closed
    assert not got.public
    with pytest.raises(InputError, match="discarded"):
        book.approve(draft.id)
    with pytest.raises(InputError, match="discarded"):
        book.update(draft.id, "identified", "x")


def test_a_running_drill_is_maintenance_until_it_ends() -> None:
    from drkit.status.page import OPEN_DRILL_S, maintenance_windows

    store = StateStore(":memory:")
    store.record_event(
        "drill.started", "provider-outage", "", {"scenario": "provider-outage"}, at=100
    )
    [(start, end, why)] = maintenance_windows(store, now=150)
    assert (start, why) == (100, "drill provider-outage (running)")
    assert end > 150
    store.record_event(
        "drill.ended", "provider-outage", "", {"scenario": "provider-outage"}, at=160
    )
    assert maintenance_windows(store, now=200) == [(100, 160, "drill provider-outage")]
    store.record_event("drill.started", "region-outage", "", {"scenario": "region-outage"}, at=300)
    assert maintenance_windows(store, now=300 + OPEN_DRILL_S + 1)[-1:] == []  # a killed drill
