"""Shared target health in Redis, so several gateway processes agree.

Layout (prefix ``drkit:gw:``): a hash ``health`` with one JSON field per target (the
last state change anyone made), a pub/sub channel ``health`` announcing each change,
and a key ``probe:<target>`` taken with ``SET NX PX`` so one process probes a target
per interval instead of all of them. Processes apply announcements at once and also
re-read the hash every second (a missed message heals). Consecutive-failure counts
and the retry budget stay per process. If Redis goes away, each process carries on
with its own state: shared health is an optimisation, never a dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from typing import Any

import redis.asyncio as aioredis

from drkit.gateway.health import HealthBoard, TargetHealth

log = logging.getLogger("drkit.gateway.redis")

PREFIX = "drkit:gw:"
REFRESH = 1.0


class RedisHealth:
    def __init__(self, board: HealthBoard, url: str, prefix: str = PREFIX) -> None:
        self.board = board
        self.redis = aioredis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self.origin = f"{os.getpid()}-{id(self)}"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.errors = 0

    async def start(self) -> None:
        self.board.shared = self
        with contextlib.suppress(Exception):
            await self._refresh()
        self._loop_task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self.board.shared = None
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._tasks):
            with contextlib.suppress(Exception):
                await t
        await self.redis.aclose()

    # --- SharedHealth -------------------------------------------------------------------

    def publish(self, health: TargetHealth) -> None:
        data = {
            "name": health.name,
            "state": health.state,
            "ejected_until": health.ejected_until,
            "cooldown_until": health.cooldown_until,
            "ejections": health.ejections,
            "last_reason": health.last_reason,
            "last_change": health.last_change or self.board.clock(),
            "origin": self.origin,
        }
        task = asyncio.get_running_loop().create_task(self._write(data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def try_probe_lock(self, name: str, ttl: float) -> bool:
        try:
            got = await self.redis.set(
                f"{self.prefix}probe:{name}", self.origin, nx=True, px=max(1, int(ttl * 1000))
            )
        except Exception:  # Redis down: probe locally
            self.errors += 1
            return True
        return bool(got)

    # --- internals ----------------------------------------------------------------------

    async def _write(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(f"{self.prefix}health", data["name"], payload)
                pipe.publish(f"{self.prefix}health", payload)
                await pipe.execute()
        except Exception as exc:
            self.errors += 1
            log.warning("shared health write failed: %s", type(exc).__name__)

    def _apply(self, payload: str) -> None:
        try:
            data = json.loads(payload)
        except ValueError:
            return
        if data.get("origin") == self.origin:
            return
        self.board.apply_remote(data)

    async def _refresh(self) -> None:
        for payload in (await self.redis.hgetall(f"{self.prefix}health")).values():
            self._apply(payload if isinstance(payload, str) else payload.decode())

    async def _run(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(f"{self.prefix}health")
                try:
                    while True:
                        msg = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=REFRESH
                        )
                        if msg is not None and isinstance(msg.get("data"), str):
                            self._apply(msg["data"])
                        else:
                            await self._refresh()
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in redis 8.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                log.warning("shared health: %s; retrying", type(exc).__name__)
                await asyncio.sleep(REFRESH)
