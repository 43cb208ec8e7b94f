"""Repair a live collection from a snapshot: restore beside it, verify, swap in.

``drkit restore SNAP --to COMPONENT --replace``: the snapshot is restored into a
collection next to the live one and verified there (count and every record's checksum
against the snapshot); only then is it swapped in under the live name, as the engine
can (``capabilities.swap``, :meth:`VectorStore.swap_in`):

- atomically on pgvector (both renames in one transaction) and LanceDB (one exchange of
  the table directories);
- atomically on Milvus and Qdrant when the live name is an **alias**: the restored
  collection (``NAME_drkit_restored_...``) stays under its own name and the alias is
  moved to it in one call; the collection the alias named is the previous one;
- else by two renames (Chroma; Milvus and Qdrant collections addressed by their own
  name), the previous collection renamed to ``NAME_drkit_old_...``: not atomic, and the
  report says why (``Swap.caveat``).

Aliases that named the live collection follow the live name. Once the count under the
live name is checked, the previous collection is dropped. A failure before the swap
leaves the live collection untouched; a failed check after it swaps the old collection
back.
"""

from __future__ import annotations

import secrets
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from typing import Any

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.transfer import map_config, not_carried, temp_name, temp_stem
from drkit.errors import CheckFailed
from drkit.repository import Repository, Snapshot

from .compare import diff_collection
from .leftovers import OLD_MARK, clean_leftovers, restored_name
from .reading import read_ahead
from .restore import RestoreReport, restore_collection, restore_opened
from .snapshot import Opened, Progress, open_snapshot, read_records


@dataclass(frozen=True, slots=True)
class ReplaceReport:
    snapshot: str
    target: str
    collection: str
    records: int
    duration_s: float
    #: "replaced" (a live collection was swapped out) or "created" (there was none)
    action: str
    atomic: bool = False
    #: the name the previous collection had while the new one was checked (dropped after)
    old: str | None = None
    #: "atomic" or "not atomic: <why>" (``Swap.says``); "" when nothing was swapped
    swap: str = ""
    #: how: "transaction", "exchange", "alias", "renames" ("" when nothing was swapped)
    swap_method: str = ""
    cleaned: tuple[str, ...] = ()
    #: what the target engine could not carry (worked out before any write)
    not_carried: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def old_name(name: str) -> str:
    return f"{temp_stem(name)}{OLD_MARK}{secrets.token_hex(4)}"


def replace_collection(
    repo: Repository,
    snapshot: Snapshot | str | Opened,
    store: VectorStore,
    name: str | None = None,
    *,
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> ReplaceReport:
    """Replace collection ``name`` (default: the snapshotted name) of ``store`` with the
    snapshot's records (see the module docstring). Raises :class:`CheckFailed` with the
    live collection untouched when the restored copy does not match the snapshot."""
    t0 = time.perf_counter()
    with repo.lock(exclusive=False):
        opened = snapshot if isinstance(snapshot, Opened) else open_snapshot(repo, snapshot)
        m = opened.manifest
        target = name or m.collection
        map_config(m.config, store)  # refuse before touching the store
        notes = tuple(not_carried(m.config, store))
        behind = store.aliases().get(target)
        if behind is None and target not in store.list_collections():
            rep: RestoreReport = restore_collection(
                repo, opened, store, target, batch_size=batch_size, progress=progress
            )
            return ReplaceReport(
                rep.snapshot,
                rep.target,
                target,
                rep.records,
                rep.duration_s,
                "created",
                cleaned=rep.cleaned,
                not_carried=rep.not_carried,
            )
        cleaned = tuple(clean_leftovers(store, target))
        # behind an alias the restored collection stays, under a name of its own
        new = restored_name(target) if behind is not None else temp_name(target)
        records = read_ahead(read_records(repo, opened, batch_size=batch_size, progress=progress))
        try:
            with closing(records):  # its helper stops before anything else
                restore_opened(repo, opened, store, new, batches=records)
            d = diff_collection(repo, opened, store, new, batch_size=batch_size)
            if d.total or d.records != m.records:
                raise CheckFailed(
                    f"the restored copy of {target!r} does not match snapshot "
                    f"{opened.snapshot.short_id} ({d.records} records, {len(d.missing)} "
                    f"missing, {len(d.altered)} altered, {len(d.extra)} extra): the live "
                    "collection was left as it was",
                    hint="check the snapshot with `drkit check --read-data`",
                )
            swap = store.swap_in(new, target, old_name(target))
        except BaseException:
            store.drop(new, missing_ok=True)
            raise
        count = store.count(target)
        if count != m.records:  # the swap did not land what was checked: swap back
            store.swap_in(swap.previous, target, new)
            store.drop(new, missing_ok=True)
            raise CheckFailed(
                f"after the swap {target!r} counts {count} records, the snapshot "
                f"{m.records}: the previous collection was put back"
            )
        store.drop(swap.previous)
    return ReplaceReport(
        opened.snapshot.id,
        store.url,
        target,
        count,
        round(time.perf_counter() - t0, 3),
        "replaced",
        swap.atomic,
        swap.previous,
        swap.says(),
        swap.method,
        cleaned,
        notes,
    )
