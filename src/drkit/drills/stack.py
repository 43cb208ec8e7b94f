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
from drkit.plan.models import Plan
from drkit.plan.models import Repository as RepoModel
from drkit.repository import Repository

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

    @contextlib.contextmanager
    def open_repository(self, name: str, wrap: StoreWrapper | None = None) -> Iterator[Repository]:
        """Open the plan's repository ``name`` (``KeyError`` when the plan has none)."""
        model = self.plan.repository(name)
        store = open_store(model.url)
        for w in (self.wrappers.get(name), wrap):
            if w is not None:
                store = w(store)
        repo = Repository.open(store, self.password(model))
        try:
            yield repo
        finally:
            repo.close()

    def repositories(self) -> list[RepoModel]:
        """The primary first, then the replicas in plan order."""
        return [self.plan.repositories.primary, *self.plan.repositories.replicas]
