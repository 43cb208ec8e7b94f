"""What a scenario is bound to: the plan, a way to open its repositories, a scratch area.

The drills layer does not know where passwords or state live; the workspace (the
composition root) builds a :class:`Stack` and hands it to the scenarios.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from drkit.connectors.objectstore.base import ObjectStore
from drkit.connectors.objectstore.registry import open_store
from drkit.errors import DrkitError
from drkit.plan.models import Plan
from drkit.plan.models import Repository as RepoModel
from drkit.repository import KdfParams, Repository

#: Wraps an object store (e.g. ``Faulty(store, unreachable=True)`` for a lost region).
StoreWrapper = Callable[[ObjectStore], ObjectStore]


@dataclass
class Stack:
    """A plan and the means to reach what it describes."""

    plan: Plan
    #: the password of a repository of the plan (never logged, never journaled)
    password: Callable[[RepoModel], str]
    #: scratch space for drills (sandboxes, restores); cleaned by each drill's rollback
    scratch: Path
    #: extra store wrappers per repository name, applied when a drill opens it
    wrappers: dict[str, StoreWrapper] = field(default_factory=dict)
    #: where drkit's state is (the model registry, eval history, incidents): its SQLite
    #: file or its ``postgresql://`` URL (``drkit.state.store.plan_state_location``),
    #: when the stack has one
    state_location: Path | str | None = None
    #: key stretching of keys a drill adds (security-breach); the workspace's choice
    kdf: KdfParams = field(default_factory=KdfParams)

    def open(self, name: str, wrap: StoreWrapper | None = None) -> Repository:
        """Open the plan's repository ``name`` (``KeyError`` when the plan has none)."""
        model = self.plan.repository(name)
        store = open_store(model.url)
        for w in (self.wrappers.get(name), wrap):
            if w is not None:
                store = w(store)
        return Repository.open(store, self.password(model))

    @contextlib.contextmanager
    def open_repository(self, name: str, wrap: StoreWrapper | None = None) -> Iterator[Repository]:
        repo = self.open(name, wrap)
        try:
            yield repo
        finally:
            repo.close()

    def session(self) -> RepositorySession:
        return RepositorySession(self)

    def repositories(self) -> list[RepoModel]:
        """The primary first, then the replicas in plan order."""
        return [self.plan.repositories.primary, *self.plan.repositories.replicas]


class RepositorySession:
    """Opens each repository at most once (key stretching is paid once per drill) and
    remembers the ones that failed to open; :meth:`close` closes what it opened."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._open: dict[str, Repository] = {}
        self._failed: dict[str, DrkitError] = {}

    def get(self, name: str) -> Repository:
        if name in self._failed:
            raise self._failed[name]
        if name not in self._open:
            try:
                self._open[name] = self.stack.open(name)
            except DrkitError as exc:
                self._failed[name] = exc
                raise
        return self._open[name]

    def close(self) -> None:
        for repo in self._open.values():
            repo.close()
        self._open.clear()
        self._failed.clear()
