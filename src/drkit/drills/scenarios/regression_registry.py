"""The registries of ``model-regression``: the real one it reads (and must leave as it
was) and the sandbox copy the drill moves the alias in.

The sandbox is a state of the drill's own with the model's ``model.registered`` and
``model.alias_set`` events copied in; the real state gets one ``model.drill`` event at
the end (not a registry event: the ledger is unchanged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drkit.lineage.registry import ALIAS_SET, REGISTERED, Registry
from drkit.state.store import Event, StateStore


def _registry_events(state: StateStore, model: str) -> list[Event]:
    """The model's registry events (versions registered, aliases set), oldest first."""
    return [
        e for e in state.events(kind="model.", component=model) if e.kind in (REGISTERED, ALIAS_SET)
    ]


def real_fingerprint(location: Path | str, model: str) -> tuple[Any, ...]:
    """What the drill must leave as it was: the model's registry events and aliases."""
    state = StateStore(location)
    try:
        events = [(e.id, e.kind) for e in _registry_events(state, model)]
        aliases = tuple(sorted(Registry(state).aliases_at(model).items()))
    finally:
        state.close()
    return (tuple(events), aliases)


def read_real(location: Path | str, model: str, alias: str) -> tuple[str, list[Event]] | None:
    """The version ``model:alias`` names in the real registry and the model's registry
    events; None when the state has no such model."""
    real = StateStore(location)
    try:
        real_reg = Registry(real)
        if model not in real_reg.models():
            return None
        return real_reg.alias(model, alias), _registry_events(real, model)
    finally:
        real.close()


def open_sandbox(workdir: Path, copied: list[Event]) -> StateStore:
    """A state in ``workdir`` holding a copy of ``copied`` (same kinds, data and times)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox = StateStore(workdir / "state.db")
    for e in copied:
        sandbox.record_event(e.kind, e.component, e.message, e.data, at=e.at)
    return sandbox


def candidate(reg: Registry, model: str, good: str, good_up: str, provider: str) -> tuple[str, str]:
    """The version the drill breaks and its upstream model: the next version registered
    after ``good`` (served as ``good_up``) with another upstream model for ``provider``,
    else a drill candidate registered in the sandbox (``reg``) only."""
    versions = [v.version for v in reg.versions(model)]
    later = [
        reg.version(model, v)
        for v in versions[versions.index(good) + 1 :]
        if reg.version(model, v).upstream.get(provider) not in (None, good_up)
    ]
    if later:
        return later[0].version, later[0].upstream[provider]
    bad, bad_upstream = f"{good}+drill", f"{good_up}+regressed"
    reg.register(
        model,
        bad,
        upstream={provider: bad_upstream},
        description="model-regression drill candidate (sandbox only)",
        tags={"drill": "model-regression"},
    )
    return bad, bad_upstream


def record_drill(location: Path | str, model: str, message: str, data: dict[str, Any]) -> None:
    """One ``model.drill`` event in the real state, so ``drkit lineage show`` lists the
    rehearsals of each version."""
    state = StateStore(location)
    try:
        state.record_event("model.drill", model, message, data)
    finally:
        state.close()
