"""The lease and fenced writes, on both backends: one holder at a time, a token that
grows with every new holder, takeover only after expiry, a deposed holder's write
rejected, and the takeover exclusive against a concurrent fenced write."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drkit.state.store import Fence, Fenced, StateStore
from drkit.state.transfer import copy_state


def test_one_holder_at_a_time_and_the_token_grows(store: StateStore) -> None:
    a = store.acquire_lease("agent", "a", ttl=30)
    assert a is not None
    assert a.token == 1
    assert store.acquire_lease("agent", "b", ttl=30) is None  # a holds it
    renewed = store.acquire_lease("agent", "a", ttl=30)
    assert renewed is not None
    assert renewed.token == 1  # a renewal in time keeps the token
    assert renewed.expires >= a.expires
    held, now = store.lease("agent")
    assert held is not None
    assert (held.holder, held.token) == ("a", 1)
    assert held.expires > now
    assert store.release_lease("agent", "a", 1)
    b = store.acquire_lease("agent", "b", ttl=30)  # released: no wait for the TTL
    assert b is not None
    assert b.token == 2
    assert not store.release_lease("agent", "a", 1)  # not a's any more


def test_takeover_after_expiry_fences_the_old_holder(store: StateStore) -> None:
    a = store.acquire_lease("agent", "a", ttl=0.3)
    assert a is not None
    store.record_event("agent.run", "job", "ok", fence=Fence("agent", a.token))
    assert store.acquire_lease("agent", "b", ttl=30) is None
    time.sleep(0.5)
    b = store.acquire_lease("agent", "b", ttl=30)
    assert b is not None
    assert b.token == a.token + 1
    with pytest.raises(Fenced, match="stale"):
        store.record_event("agent.run", "job", "late", fence=Fence("agent", a.token))
    store.record_event("agent.run", "job", "new leader", fence=Fence("agent", b.token))
    assert [e.message for e in store.events(kind="agent.run")] == ["ok", "new leader"]
    # the old holder coming back cannot take it while b renews
    assert store.acquire_lease("agent", "a", ttl=30) is None


def test_a_lease_renewed_after_it_expired_is_a_new_term(store: StateStore) -> None:
    a = store.acquire_lease("agent", "a", ttl=0.2)
    assert a is not None
    time.sleep(0.4)
    again = store.acquire_lease("agent", "a", ttl=30)
    assert again is not None
    assert again.token == a.token + 1  # writes of the lapsed term are fenced
    with pytest.raises(Fenced):
        store.record_event("x", "c", "m", fence=Fence("agent", a.token))


def test_fence_on_a_lease_that_never_existed(store: StateStore) -> None:
    with pytest.raises(Fenced, match="released"):
        store.record_event("x", "c", "m", fence=Fence("nobody", 1))
    assert store.events() == []


def test_two_stores_race_for_the_lease(new_location: Callable[[str], str]) -> None:
    where = new_location("s.db")
    one, two = StateStore(where), StateStore(where)
    try:
        got = [one.acquire_lease("agent", "one", 30), two.acquire_lease("agent", "two", 30)]
        assert [g is not None for g in got] == [True, False]
    finally:
        one.close()
        two.close()


def test_a_copy_of_the_state_keeps_the_lease_token(
    store: StateStore, new_location: Callable[[str], str], tmp_path: Path
) -> None:
    store.acquire_lease("agent", "a", 30)
    store.record_event("agent.run", "job", "ok", {"n": 1})
    store.record_verification("kb", "abc", ok=True, duration_s=1.5)
    store.record_drill({"id": "d1", "scenario": "s", "started_at": 1.0, "verdict": "pass"})
    store.close()
    assert copy_state(new_location("s.db"), tmp_path / "copy.db") == 1
    copy = StateStore(tmp_path / "copy.db")
    assert [e.data for e in copy.events()] == [{"n": 1}]
    assert copy.verifications()[0].snapshot == "abc"
    assert copy.drills()[0].verdict == "pass"
    lease = copy.lease("agent")[0]
    assert lease is not None
    assert lease.token == 1  # a restored state's next holder gets token 2, not 1 again
    copy.close()
