"""Key files: one password's wrapping of the master key each (format section 2)."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import blake3

from drkit.connectors.objectstore.base import ObjectInfo, ObjectStore
from drkit.errors import InputError
from drkit.repository.crypto import (
    DecryptError,
    KdfParams,
    MasterKey,
    parse_key_file,
    wrap_master_key,
)
from drkit.repository.snapshot import now_iso

if TYPE_CHECKING:
    from drkit.repository.locks import RepoLock


def host() -> str:
    return socket.gethostname()


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    created: str
    host: str
    user: str
    current: bool


def write_key(store: ObjectStore, master: MasterKey, password: str, kdf: KdfParams) -> str:
    """Store a new key file for ``master`` under ``password``; returns its id (R2)."""
    if not password:
        raise InputError("the repository password is empty", hint="set DRKIT_PASSWORD")
    data = wrap_master_key(master, password, kdf, host=host(), user=user(), created=now_iso())
    key_id = blake3.blake3(data).hexdigest()
    store.put(f"keys/{key_id}", data)
    return key_id


class Keyring:
    """Mixin of :class:`~drkit.repository.repo.Repository`: its passwords."""

    store: ObjectStore
    key_id: str
    _master: MasterKey

    def own(self, prefix: str) -> Iterator[ObjectInfo]:  # pragma: no cover - see Repository
        raise NotImplementedError

    def lock(self, *, exclusive: bool) -> RepoLock:  # pragma: no cover - see Repository
        raise NotImplementedError

    def add_key(self, password: str, *, kdf: KdfParams | None = None) -> str:
        """Add a password for the same master key; returns the new key id."""
        return write_key(self.store, self._master, password, kdf or KdfParams())

    def list_keys(self) -> list[KeyInfo]:
        out = []
        for info in self.own("keys/"):
            kid = info.key.removeprefix("keys/")
            try:
                doc = parse_key_file(self.store.get(info.key))
            except (DecryptError, ValueError):
                doc = {}
            out.append(
                KeyInfo(
                    kid,
                    str(doc.get("created", "?")),
                    str(doc.get("host", "?")),
                    str(doc.get("user", "?")),
                    kid == self.key_id,
                )
            )
        return sorted(out, key=lambda k: k.created)

    def remove_key(self, key_id: str) -> str:
        """Remove a key by id or unique prefix; refuses to remove the last key (K1)."""
        keys = self.list_keys()
        matches = [k for k in keys if k.id.startswith(key_id)]
        if len(matches) != 1:
            raise InputError(
                f"key {key_id!r} matches {len(matches)} keys",
                hint="list keys with `drkit repo key list`",
            )
        if len(keys) == 1:
            raise InputError(
                "refusing to remove the last key of the repository",
                hint="add another key first with `drkit repo key add`",
            )
        if matches[0].current:
            raise InputError(
                f"refusing to remove key {matches[0].id[:12]}: it is the key this command "
                "opened the repository with",
                hint="open the repository with another password (DRKIT_PASSWORD) to remove it",
            )
        with self.lock(exclusive=True):
            self.store.delete(f"keys/{matches[0].id}")
        return matches[0].id
