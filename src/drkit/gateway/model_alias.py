"""Route targets that follow a model-registry alias: ``model: "@MODEL:ALIAS"``.

The gateway does not know the registry (a sibling layer): whoever composes the gateway
injects a :class:`ModelResolver` that answers "what does ``@MODEL:ALIAS`` name for this
provider now". The :class:`AliasTable` asks it once when the gateway is built (a target
that does not resolve is a plan error before anything is served), then every
``refresh`` seconds off the event loop, so an alias moved by ``drkit model alias set``,
``promote`` or ``rollback`` is served within a few seconds, without a restart, by every
gateway process that reads the same state.

The hot path only reads a dict: :meth:`AliasTable.route` returns the route with each
alias target's ``model`` replaced by the upstream model it names now (the target's name,
and so its health, is unchanged). A refresh that fails keeps the last good answer and
says so in an event; it never stops serving.

Events (through the gateway's sink): ``model_version`` when a target's served version
is first resolved or changes (data: route, target, ref, version, previous, upstream),
``model_unresolved`` when a refresh fails (data: target, ref, error, serving).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from drkit.errors import DrkitError, PlanError
from drkit.gateway.config import RouteConfig, TargetConfig
from drkit.gateway.events import EventSink
from drkit.gateway.health import Prober

log = logging.getLogger("drkit.gateway")

#: the response header naming the model version that served (``MODEL@VERSION``)
VERSION_HEADER = "x-drkit-model-version"
#: how often the table asks the resolver again (seconds)
DEFAULT_REFRESH = 1.0


@dataclass(frozen=True, slots=True)
class ServedModel:
    """What an alias names for one provider: the registry version and the model name
    the provider is sent."""

    #: ``MODEL@VERSION``
    version: str
    upstream: str


class ModelResolver(Protocol):
    def __call__(self, model: str, alias: str, provider: str) -> tuple[str, str]:
        """(``MODEL@VERSION``, upstream model name) that ``@MODEL:ALIAS`` names for
        ``provider`` now (e.g. :meth:`drkit.lineage.registry.Registry.serving`).

        Blocking (the table calls it in a worker thread); raises a :class:`DrkitError`
        when the model, the alias or the version's upstream for ``provider`` is missing.
        """


def alias_ref(model: str) -> tuple[str, str] | None:
    """``@MODEL:ALIAS`` -> (model, alias); None for a plain model name."""
    if not model.startswith("@"):
        return None
    name, sep, alias = model[1:].partition(":")
    if not sep or not name or not alias:
        raise PlanError(
            f"model {model!r}: a registry reference is @MODEL:ALIAS",
            hint="e.g. model: '@assistant:champion'",
        )
    return name, alias


@dataclass(frozen=True, slots=True)
class _Ref:
    target: TargetConfig
    model: str
    alias: str

    @property
    def label(self) -> str:
        return f"@{self.model}:{self.alias}"


class AliasTable:
    """The alias targets of a gateway's routes and what each serves now."""

    def __init__(
        self,
        routes: Iterable[RouteConfig],
        resolver: ModelResolver,
        events: EventSink,
        *,
        refresh: float = DEFAULT_REFRESH,
    ) -> None:
        self.resolver = resolver
        self.events = events
        self.refresh = refresh
        self._routes = tuple(routes)
        self._refs: dict[str, _Ref] = {}
        self._route_of: dict[str, str] = {}
        for route in self._routes:
            for t in route.targets:
                parsed = alias_ref(t.model)
                if parsed is not None:
                    self._refs.setdefault(t.name, _Ref(t, *parsed))
                    self._route_of.setdefault(t.name, route.name)
        #: target name -> what it serves now
        self.served: dict[str, ServedModel] = {}
        #: target name -> ``MODEL@VERSION`` (what the trace headers read)
        self.versions: dict[str, str] = {}
        self._resolved: dict[str, RouteConfig] = {}
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_routes(
        cls,
        routes: Iterable[RouteConfig],
        resolver: ModelResolver | None,
        events: EventSink,
        *,
        refresh: float = DEFAULT_REFRESH,
    ) -> AliasTable | None:
        """The table, resolved once; None when no target names an alias.

        Raises PlanError when a target names an alias and there is no resolver, or an
        alias does not resolve (nothing is served on a guess)."""
        routes = tuple(routes)
        table = cls(routes, resolver or _no_registry, events, refresh=refresh)
        if not table._refs:
            return None
        if resolver is None:
            name, ref = next(iter(table._refs.items()))
            raise PlanError(
                f"target {name!r} serves {ref.label} but this gateway has no model registry",
                field="serving.routes[].targets[].model",
                hint="serve it with `drkit gateway serve` (which reads the plan's state), "
                "or name the upstream model itself",
            )
        for name, ref in table._refs.items():
            try:
                table._set(name, ServedModel(*resolver(ref.model, ref.alias, ref.target.provider)))
            except DrkitError as exc:
                raise PlanError(
                    f"target {name!r}: {ref.label} does not resolve: {exc}",
                    field="serving.routes[].targets[].model",
                    hint=exc.hint or f"drkit model alias set {ref.model} {ref.alias} VERSION",
                ) from exc
        return table

    @property
    def refs(self) -> dict[str, str]:
        """Target name -> ``@MODEL:ALIAS``."""
        return {n: r.label for n, r in self._refs.items()}

    def _set(self, name: str, served: ServedModel) -> bool:
        before = self.served.get(name)
        if before == served:
            return False
        self.served[name] = served
        # a new dict, not an update: a request holds the versions its route was built from
        self.versions = {**self.versions, name: served.version}
        self._resolved.clear()  # rebuilt on next use (cheap: a handful of routes)
        ref = self._refs[name]
        route = self._route_of[name]
        self.events.record(
            "model_version",
            f"{route}/{name}",
            f"{name} serves {ref.label} = {served.version} ({served.upstream})"
            + (f", was {before.version}" if before is not None else ""),
            {
                "route": route,
                "target": name,
                "ref": ref.label,
                "version": served.version,
                "previous": before.version if before is not None else None,
                "upstream": served.upstream,
            },
        )
        return True

    # --- the hot path ------------------------------------------------------------------

    def target(self, t: TargetConfig) -> TargetConfig:
        served = self.served.get(t.name)
        if served is None or t.name not in self._refs:
            return t
        return dataclasses.replace(t, model=served.upstream)

    def route(self, route: RouteConfig) -> RouteConfig:
        """``route`` with each alias target's model replaced by what it names now."""
        got = self._resolved.get(route.name)
        if got is None:
            targets = tuple(self.target(t) for t in route.targets)
            got = dataclasses.replace(route, targets=targets)
            self._resolved[route.name] = got
        return got

    def prober(self, probe: Prober) -> Prober:
        """``probe`` sending each alias target's current upstream model."""

        async def resolved(target: TargetConfig) -> None:
            await probe(self.target(target))

        return resolved

    # --- following changes ---------------------------------------------------------------

    async def refresh_once(self) -> int:
        """Ask the resolver again for every alias target; the number that changed."""
        changed = 0
        for name, ref in self._refs.items():
            try:
                served = ServedModel(
                    *await asyncio.to_thread(
                        self.resolver, ref.model, ref.alias, ref.target.provider
                    )
                )
            except Exception as exc:  # a refresh must never stop serving
                current = self.served.get(name)
                self.events.record(
                    "model_unresolved",
                    f"{self._route_of[name]}/{name}",
                    f"{name}: {ref.label} did not resolve ({exc}); "
                    f"still serving {current.version if current else 'nothing'}",
                    {
                        "target": name,
                        "ref": ref.label,
                        "error": str(exc),
                        "serving": current.version if current else None,
                    },
                )
                continue
            changed += self._set(name, served)
        return changed

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.refresh_once()
            except Exception:  # pragma: no cover - refresh_once records its own errors
                log.exception("model alias refresh failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _no_registry(model: str, alias: str, provider: str) -> tuple[str, str]:
    raise PlanError("this gateway has no model registry")
