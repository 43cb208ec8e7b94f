"""Unit tests of the health board and the retry budget with a fake clock."""

from __future__ import annotations

from drkit.gateway.budget import RetryBudget
from drkit.gateway.config import HealthPolicy, TargetConfig
from drkit.gateway.events import MemoryEventSink
from drkit.gateway.health import HealthBoard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


A = TargetConfig(name="a", provider="openai", model="m", base_url="http://127.0.0.1:1/v1")
B = TargetConfig(name="b", provider="anthropic", model="m", base_url="http://127.0.0.1:2")


def board(**kw: float) -> tuple[HealthBoard, Clock, MemoryEventSink]:
    clock = Clock()
    events = MemoryEventSink()
    policy = HealthPolicy(eject_after=3, base_ejection=1.0, max_ejection=8.0, **kw)  # type: ignore[arg-type]
    return HealthBoard([A, B], policy, events, clock=clock), clock, events


def test_soft_failures_eject_after_n_consecutive() -> None:
    b, _, events = board()
    b.record_failure(A, "status_5xx")
    b.record_failure(A, "status_5xx")
    assert b.order([A, B]) == ([A, B], False)
    b.record_failure(A, "status_5xx")
    assert b.order([A, B]) == ([B], False)
    assert events.kinds() == ["ejection"]


def test_success_resets_the_consecutive_count() -> None:
    b, _, _ = board()
    for _ in range(5):
        b.record_failure(A, "status_5xx")
        b.record_success(A)
    assert b.health["a"].state == "healthy"


def test_timeouts_and_refusals_eject_at_once() -> None:
    b, _, _ = board()
    b.record_failure(A, "timeout_first_token")
    assert b.order([A, B]) == ([B], False)
    b.record_failure(B, "connect")
    # everything ejected: still try ("panic"), soonest-back first
    targets, panic = b.order([A, B])
    assert ([t.name for t in targets], panic) == (["a", "b"], True)


def test_ejection_backs_off_exponentially_and_half_opens() -> None:
    b, clock, events = board()
    b.record_failure(A, "connect")
    assert b.health["a"].ejected_until == clock.now + 1.0
    clock.now += 1.01
    assert b.order([A, B]) == ([A, B], False)  # half-open: a trial may go through
    assert b.claim(A)
    assert not b.claim(A)  # only one trial at a time
    assert b.order([A, B]) == ([B], False)
    b.record_failure(A, "connect")  # the trial failed
    assert b.health["a"].ejected_until == clock.now + 2.0
    clock.now += 2.01
    assert A in b.order([A, B])[0]
    assert b.claim(A)
    b.record_success(A)
    assert b.health["a"].state == "healthy"
    assert events.kinds() == ["ejection", "ejection", "recovery"]
    assert events.events[-1].data["via"] == "traffic"


def test_retry_after_cools_a_target_without_ejecting_it() -> None:
    b, clock, _ = board()
    b.record_failure(A, "status_429", retry_after=2.0)
    assert b.order([A, B]) == ([B], False)
    assert b.snapshot()[0]["state"] == "cooldown"
    clock.now += 2.1
    assert b.order([A, B]) == ([A, B], False)


def test_remote_state_is_adopted_only_when_newer() -> None:
    b, clock, events = board()
    b.apply_remote(
        {"name": "a", "state": "ejected", "ejected_until": clock.now + 5, "last_change": clock.now}
    )
    assert b.order([A, B]) == ([B], False)
    b.apply_remote({"name": "a", "state": "healthy", "last_change": clock.now - 10})
    assert b.health["a"].state == "ejected"
    b.apply_remote({"name": "a", "state": "healthy", "last_change": clock.now + 1})
    assert b.health["a"].state == "healthy"
    assert events.events == []  # the process that changed it records the event


def test_retry_budget_caps_retries_to_a_fraction_of_requests() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, minimum=2, window=10, clock=clock)
    for _ in range(10):
        budget.on_request()
    spent = sum(budget.try_spend() for _ in range(100))
    assert spent == 2 + 2  # minimum + 20% of 10
    assert budget.refused == 96
    clock.now += 11  # the window slid past
    assert budget.try_spend()


def test_cooling_targets_are_never_tried_early_even_in_a_total_outage() -> None:
    b, _clock, _ = board()
    b.record_failure(A, "status_429", retry_after=3.0)
    b.record_failure(B, "status_429", retry_after=5.0)
    assert b.order([A, B]) == ([], False)
    assert b.cooldown_left([A, B]) == 3.0


def test_ejected_targets_are_the_last_resort_unless_cooling() -> None:
    b, _clock, _ = board()
    b.record_failure(B, "connect")  # ejected, no Retry-After
    assert b.order([A, B]) == ([A], False)
    assert b.last_resort([A, B], tried=[A]) == [B]
    assert b.last_resort([A, B], tried=[A, B]) == []
    for _ in range(3):  # ejected by 429s: inside its Retry-After it is never a last resort
        b.record_failure(A, "status_429", retry_after=5.0)
    assert b.health["a"].state == "ejected"
    assert b.last_resort([A, B], tried=[]) == [B]
