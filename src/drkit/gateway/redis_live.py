"""Live drill faults shared in Redis, so every gateway process honours a fault and its end.

Layout (prefix ``drkit:gw:``): a hash ``live`` with one JSON field ``<drill>/<route>`` per
*active* fault (a drill has one per route; its spec: route, targets, fraction, end,
lease), a pub/sub channel ``live`` announcing every install, renewal and lift, a key
``live:lifted:<drill>/<route>`` taken with ``SET NX`` by the first process to lift (it
alone records the ``live_fault_lifted`` event), and a hash ``live:stats:<drill>/<route>``
where each process leaves its figures (and whether it still applies the fault, and when it
wrote) so that any process can answer for all of them.
Processes re-read the hash every second: a fault gone from it is lifted, a new one
adopted, a renewed lease taken over. Each process also runs its own dead-man timer on the
spec's end and lease: if Redis goes away a fault still ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

import redis.asyncio as aioredis

from drkit.gateway.live import LiveFault, LiveFaults
from drkit.gateway.redis_health import PREFIX, REFRESH

log = logging.getLogger("drkit.gateway.redis")

#: latencies each process shares per fault and group (enough for a p99 over processes)
STATS_SAMPLE = 1000
#: how long the lifted marker and the figures outlive a fault (for reading its figures)
KEEP_S = 24 * 3600


def field_of(drill: object, route: object) -> str:
    """The name of one fault (one route of a drill) in the hash and the keys."""
    return f"{drill}/{route}"


class RedisLive:
    def __init__(self, live: LiveFaults, url: str, prefix: str = PREFIX) -> None:
        self.live = live
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.origin = f"{os.getpid()}-{id(self)}"
        self._loop_task: asyncio.Task[None] | None = None
        self.errors = 0
        #: when each fault was last known to be in the hash (monotonic): its absence from a
        #: read issued later means a lift; a read issued before may simply predate the write
        self._in_hash: dict[str, float] = {}

    @property
    def _hash(self) -> str:
        return f"{self.prefix}live"

    async def start(self) -> None:
        self.live.shared = self
        with contextlib.suppress(Exception):
            await self.refresh()
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(Exception):
            await self._share_stats()
        self.live.shared = None
        await self.redis.aclose()

    # --- SharedLive -----------------------------------------------------------------------

    async def put(self, fault: LiveFault) -> None:
        payload = json.dumps({**fault.spec(), "origin": self.origin})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._hash, field_of(*fault.key), payload)
            pipe.publish(self._hash, payload)
            await pipe.execute()
        if fault.active:
            self._in_hash[field_of(*fault.key)] = time.monotonic()
        else:  # lifted while this write (a renewal) was on its way: it must not outlive the lift
            await self.redis.hdel(self._hash, field_of(*fault.key))

    async def remove(self, fault: LiveFault) -> bool:
        self._in_hash.pop(field_of(*fault.key), None)
        payload = json.dumps({**fault.spec(), "origin": self.origin})
        first = await self.redis.set(
            f"{self._hash}:lifted:{field_of(*fault.key)}", self.origin, nx=True, ex=KEEP_S
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hdel(self._hash, field_of(*fault.key))
            pipe.publish(self._hash, payload)
            await pipe.execute()
        return bool(first)

    async def share_stats(self, fault: LiveFault) -> None:
        await self._share_stats([fault])

    async def read_stats(self, fault: LiveFault) -> None:
        parts = await self.redis.hgetall(f"{self._hash}:stats:{field_of(*fault.key)}")
        fault.remote_stats = {
            str(origin): json.loads(v) for origin, v in parts.items() if origin != self.origin
        }

    async def refresh(self) -> None:
        asked = time.monotonic()
        specs = await self.redis.hgetall(self._hash)
        active = {}
        for payload in specs.values():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                data = json.loads(payload)
                active[field_of(data["drill"], data["route"])] = data
        for fault in list(self.live.by_route.values()):
            name = field_of(*fault.key)
            if not fault.active or name in active:
                continue
            if self._in_hash.get(name, asked) < asked:
                # lifted elsewhere (a missed announcement): with the rest of its drill
                self._in_hash.pop(name, None)
                self.live.lift(fault, await self._why(fault), record=False)
            # else installed here while the read was on its way: the read predates it
        for data in active.values():
            self._apply(data)
        await self._share_stats()
        await self._read_stats()

    # --- internals ------------------------------------------------------------------------

    async def _why(self, fault: LiveFault) -> str:
        due = fault.due(self.live.clock())
        return due or "lifted by another gateway process"

    def _apply(self, data: dict[str, Any]) -> None:
        live = self.live
        drill = str(data.get("drill"))
        if data.get("lifted_at") is not None:
            for fault in list(live.by_route.values()):
                if fault.drill == drill:
                    live.lift(fault, str(data.get("why") or "lifted"), record=False)
            self._in_hash.pop(field_of(drill, data.get("route")), None)
            return
        if (drill, str(data.get("route"))) in live.lifted:
            return  # this process lifted it already (its own timer ran out first)
        current = live.by_route.get(str(data.get("route")))
        if data.get("route") is not None:
            self._in_hash[field_of(drill, data["route"])] = time.monotonic()
        if current is not None and current.drill == drill:
            current.lease_until = max(current.lease_until, float(data["lease_until"]))
            current.lease_s = float(data["lease_s"])
            return
        if current is not None:
            return  # another drill holds the route here; its owner's process decides
        try:
            fault = LiveFault.from_spec(data)
        except (KeyError, TypeError, ValueError):
            return
        if fault.due(live.clock()) is None:
            live.by_route[fault.route] = fault

    async def _share_stats(self, faults: list[LiveFault] | None = None) -> None:
        todo = faults if faults is not None else list(self.live.by_route.values())
        if not todo:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for fault in todo:
                key = f"{self._hash}:stats:{field_of(*fault.key)}"
                part = {
                    **fault.stats.to_json(STATS_SAMPLE),
                    "applying": fault.active,  # False once this process lifted it
                    "shared_at": self.live.clock(),
                }
                pipe.hset(key, self.origin, json.dumps(part))
                pipe.expire(key, KEEP_S)
            await pipe.execute()

    async def _read_stats(self) -> None:
        for fault in list(self.live.by_route.values()):
            await self.read_stats(fault)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self._hash)
                last = loop.time()
                try:
                    while True:
                        msg = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=REFRESH
                        )
                        if msg is not None and isinstance(msg.get("data"), str):
                            with contextlib.suppress(ValueError):
                                data = json.loads(msg["data"])
                                if data.get("origin") != self.origin:
                                    self._apply(data)
                        # announcements may come more often than REFRESH: re-read anyway
                        if msg is None or loop.time() - last >= REFRESH:
                            last = loop.time()
                            await self.refresh()
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in redis 8.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                log.warning("shared live faults: %s; retrying", type(exc).__name__)
                await asyncio.sleep(REFRESH)
