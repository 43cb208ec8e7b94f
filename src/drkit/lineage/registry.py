"""The model registry: immutable versions and an append-only alias ledger, as events.

Two event kinds in drkit's state (docs/events.md), component = the model's name:

- ``model.registered``: one version (``model``, ``version``, ``upstream`` provider ->
  upstream model name, ``trained_on`` dataset snapshots, ``artifacts`` snapshot,
  ``tags``, ``description``, ``by``, ``source``);
- ``model.alias_set``: one alias move (``model``, ``alias``, ``from``, ``to``, ``reason``,
  ``by``, ``eval_runs``, ``action`` set|promote|rollback|import, ``gate``).

Contracts:

- a version is immutable: registering ``MODEL VERSION`` again is refused (exit 2); if two
  processes race, the first event (lowest id) is the version and the other is ignored by
  every reader;
- an alias only ever points at a registered version; its ledger only grows, and
  :meth:`Registry.aliases_at` answers "what did each alias name at time T" from it;
- every read is a fold of the events, so the registry is exactly as durable as the state
  (which is backed up into the repository) and a restored state rebuilds it.
"""

from __future__ import annotations

import getpass
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drkit.errors import UsageError
from drkit.state.store import Event, StateStore
from drkit.types import parse_duration

REGISTERED = "model.registered"
ALIAS_SET = "model.alias_set"
ALIAS_ACTIONS = ("set", "promote", "rollback", "import")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def check_name(what: str, value: str) -> str:
    """``value`` when it is a valid model or alias name (letters, digits, ``._-``)."""
    if not _NAME.match(value):
        raise UsageError(
            f"{what} {value!r}: use letters, digits, '.', '_' and '-' (at most 64)",
            hint=f"e.g. {'champion' if what == 'alias' else 'assistant'}",
        )
    return value


def check_version(value: str) -> str:
    if not _VERSION.match(value):
        raise UsageError(
            f"version {value!r}: use letters, digits, '.', '_', '+' and '-' (at most 64)",
            hint="e.g. 3, v3 or 2026-12-01",
        )
    return value


def who() -> str:
    """``user@host`` of this process, recorded as the author of a registry change."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time: RFC 3339 / ISO 8601 (UTC when no offset), or a duration ago (``2d``)."""
    stamp = text.strip()
    try:
        ago = parse_duration(stamp)
    except ValueError:
        pass
    else:
        return (now if now is not None else datetime.now(UTC).timestamp()) - ago
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        raise UsageError(
            f"--at {text!r}: not a time",
            hint="e.g. --at 2026-11-24T09:00:00Z, or --at 7d for seven days ago",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """One dataset snapshot a version was trained on."""

    dataset: str
    snapshot: str
    #: the named version of a versioned dataset (``v2``), if it has one
    version: str | None = None

    @property
    def label(self) -> str:
        return f"{self.dataset}@{self.version or self.snapshot[:8]}"

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "snapshot": self.snapshot, "version": self.version}


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model: str
    version: str
    registered_at: float
    by: str
    upstream: Mapping[str, str] = field(default_factory=dict)
    trained_on: tuple[DatasetRef, ...] = ()
    #: the snapshot of the version's artifacts directory (component ``artifacts_component``)
    artifacts: str | None = None
    artifacts_component: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    #: where it was registered: ``drkit``, or ``mlflow`` for an import
    source: str = "drkit"
    event_id: int = 0

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "registered_at": datetime.fromtimestamp(self.registered_at, UTC),
            "by": self.by,
            "upstream": dict(self.upstream),
            "trained_on": [d.to_json() for d in self.trained_on],
            "artifacts": self.artifacts,
            "artifacts_component": self.artifacts_component,
            "tags": dict(self.tags),
            "description": self.description,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One entry of the alias ledger."""

    model: str
    alias: str
    from_version: str | None
    to_version: str
    at: float
    by: str
    reason: str
    eval_runs: tuple[str, ...] = ()
    action: str = "set"
    #: the gate's numbers when a promote or rollback moved it
    gate: Mapping[str, Any] | None = None
    event_id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "from": self.from_version,
            "to": self.to_version,
            "at": datetime.fromtimestamp(self.at, UTC),
            "by": self.by,
            "reason": self.reason,
            "eval_runs": list(self.eval_runs),
            "action": self.action,
            "gate": dict(self.gate) if self.gate is not None else None,
        }


def _version_of(event: Event) -> ModelVersion:
    d = event.data
    return ModelVersion(
        model=str(d["model"]),
        version=str(d["version"]),
        registered_at=event.at,
        by=str(d.get("by", "")),
        upstream={str(k): str(v) for k, v in dict(d.get("upstream") or {}).items()},
        trained_on=tuple(
            DatasetRef(str(t["dataset"]), str(t["snapshot"]), t.get("version"))
            for t in d.get("trained_on") or ()
        ),
        artifacts=d.get("artifacts"),
        artifacts_component=d.get("artifacts_component"),
        tags={str(k): str(v) for k, v in dict(d.get("tags") or {}).items()},
        description=str(d.get("description") or ""),
        source=str(d.get("source") or "drkit"),
        event_id=event.id,
    )


class Registry:
    """The registry over one state store; every method reads the events afresh."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    # --- versions ------------------------------------------------------------------------

    def _all_versions(self, model: str | None = None) -> list[ModelVersion]:
        seen: set[tuple[str, str]] = set()
        out = []
        for e in self.state.events(kind=REGISTERED, component=model):
            v = _version_of(e)
            if (v.model, v.version) in seen:  # a racing duplicate: the first one is the version
                continue
            seen.add((v.model, v.version))
            out.append(v)
        return out

    def models(self) -> list[str]:
        return sorted({v.model for v in self._all_versions()})

    def versions(self, model: str) -> list[ModelVersion]:
        """The versions of ``model`` in registration order (exit 2 for an unknown model)."""
        found = self._all_versions(model)
        if not found:
            raise UsageError(
                f"no model {model!r} in the registry",
                hint="models: "
                + (", ".join(self.models()) or "none yet (`drkit model register MODEL VERSION`)"),
            )
        return found

    def version(self, model: str, version: str) -> ModelVersion:
        found = self.versions(model)
        for v in found:
            if v.version == version:
                return v
        raise UsageError(
            f"{model} has no version {version!r}",
            hint="versions: " + ", ".join(v.version for v in found),
        )

    def has_version(self, model: str, version: str) -> bool:
        return any(v.version == version for v in self._all_versions(model))

    def register(
        self,
        model: str,
        version: str,
        *,
        upstream: Mapping[str, str] | None = None,
        trained_on: Sequence[DatasetRef] = (),
        artifacts: str | None = None,
        artifacts_component: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
        by: str | None = None,
        source: str = "drkit",
        at: float | None = None,
    ) -> ModelVersion:
        """Record a new, immutable version (exit 2 when ``MODEL VERSION`` exists)."""
        check_name("model", model)
        check_version(version)
        if self.has_version(model, version):
            raise UsageError(
                f"{model}@{version} is registered already: versions are immutable",
                hint=f"register a new version, e.g. drkit model register {model} "
                f"{_next_label(version)}",
            )
        data = {
            "model": model,
            "version": version,
            "upstream": dict(upstream or {}),
            "trained_on": [t.to_json() for t in trained_on],
            "artifacts": artifacts,
            "artifacts_component": artifacts_component,
            "tags": dict(tags or {}),
            "description": description,
            "by": by or who(),
            "source": source,
        }
        self.state.record_event(REGISTERED, model, f"registered {model}@{version}", data, at=at)
        return self.version(model, version)

    # --- aliases -------------------------------------------------------------------------

    def history(self, model: str, alias: str | None = None) -> list[AliasChange]:
        """The alias ledger of ``model`` (one alias, or all), oldest first."""
        self.versions(model)  # an unknown model is an error, not an empty ledger
        current: dict[str, str] = {}
        out = []
        for e in self.state.events(kind=ALIAS_SET, component=model):
            d = e.data
            name = str(d["alias"])
            change = AliasChange(
                model=model,
                alias=name,
                # the fold's own previous value: a racing writer's "from" cannot lie
                from_version=current.get(name),
                to_version=str(d["to"]),
                at=e.at,
                by=str(d.get("by", "")),
                reason=str(d.get("reason", "")),
                eval_runs=tuple(str(r) for r in d.get("eval_runs") or ()),
                action=str(d.get("action") or "set"),
                gate=d.get("gate"),
                event_id=e.id,
            )
            current[name] = change.to_version
            if alias is None or name == alias:
                out.append(change)
        return out

    def aliases_at(self, model: str, when: float | None = None) -> dict[str, str]:
        """Alias -> version as of ``when`` (now when None)."""
        out: dict[str, str] = {}
        for c in self.history(model):
            if when is not None and c.at > when:
                break
            out[c.alias] = c.to_version
        return out

    def alias(self, model: str, alias: str) -> str:
        """The version ``MODEL:ALIAS`` names now (exit 2 when the alias is unset)."""
        current = self.aliases_at(model)
        if alias not in current:
            raise UsageError(
                f"{model} has no alias {alias!r}",
                hint="aliases: "
                + (", ".join(sorted(current)) or "none")
                + f" (`drkit model alias set {model} {alias} VERSION --reason ...`)",
            )
        return current[alias]

    def set_alias(
        self,
        model: str,
        alias: str,
        version: str,
        *,
        reason: str,
        by: str | None = None,
        eval_runs: Sequence[str] = (),
        action: str = "set",
        gate: Mapping[str, Any] | None = None,
        at: float | None = None,
    ) -> AliasChange:
        """Point ``alias`` at a registered ``version``, appending to the ledger."""
        check_name("alias", alias)
        self.version(model, version)
        if not reason.strip():
            raise UsageError(
                "--reason is empty: the alias ledger records why each move was made",
                hint='e.g. --reason "eval 2026-12-01 beats v3 on golden-qa"',
            )
        if action not in ALIAS_ACTIONS:
            raise ValueError(f"alias action {action!r}")
        before = self.aliases_at(model).get(alias)
        data = {
            "model": model,
            "alias": alias,
            "from": before,
            "to": version,
            "reason": reason,
            "by": by or who(),
            "eval_runs": list(eval_runs),
            "action": action,
            "gate": dict(gate) if gate is not None else None,
        }
        message = f"{model}:{alias} {before or '(unset)'} -> {version}"
        self.state.record_event(ALIAS_SET, model, message, data, at=at)
        return self.history(model, alias)[-1]

    def serving(self, model: str, alias: str, provider: str) -> tuple[str, str]:
        """(``MODEL@VERSION``, upstream model) that ``@MODEL:ALIAS`` names for ``provider``
        now: what a gateway target naming the alias sends (the gateway's ModelResolver)."""
        v = self.version(model, self.alias(model, alias))
        upstream = v.upstream.get(provider)
        if upstream is None:
            raise UsageError(
                f"@{model}:{alias} is {v.ref}, which has no upstream model for provider "
                f"{provider!r}",
                hint=f"register a version with --upstream {provider}=MODEL_NAME "
                f"({v.ref} has: {', '.join(sorted(v.upstream)) or 'none'})",
            )
        return v.ref, upstream

    def served_within(self, model: str, since: float) -> dict[str, set[str]]:
        """Alias -> every version it named at some point from ``since`` until now."""
        out: dict[str, set[str]] = {}
        last: dict[str, str] = {}
        for c in self.history(model):
            if c.at < since:
                last[c.alias] = c.to_version
                continue
            out.setdefault(c.alias, set()).add(c.to_version)
        for name, v in last.items():  # what it named when the window opened
            out.setdefault(name, set()).add(v)
        return out


def _next_label(version: str) -> str:
    m = re.match(r"^(.*?)(\d+)$", version)
    return f"{m.group(1)}{int(m.group(2)) + 1}" if m else f"{version}.1"


def parse_model_ref(text: str) -> tuple[str, str]:
    """``MODEL@VERSION`` -> (model, version)."""
    model, sep, version = text.partition("@")
    if not sep or not model or not version:
        raise UsageError(f"{text!r}: expected MODEL@VERSION", hint="e.g. assistant@3")
    return check_name("model", model), check_version(version)


def parse_alias_target(text: str) -> tuple[str, str] | None:
    """``@MODEL:ALIAS`` (a route target's ``model``) -> (model, alias); None otherwise."""
    if not text.startswith("@"):
        return None
    model, sep, alias = text[1:].partition(":")
    if not sep or not model or not alias:
        raise UsageError(
            f"model {text!r}: a registry reference is @MODEL:ALIAS", hint="e.g. @assistant:champion"
        )
    return check_name("model", model), check_name("alias", alias)
