"""Check a warm standby while it keeps syncing: counts, per-record checksums, golden queries.

The standby is compared with its ledger (what the sync says it wrote): the count, and
every record's hash (the snapshots' per-record BLAKE3-128; engines that re-normalise or
round cosine vectors are checked by id only, and against the source within tolerance).
Records whose ledger entry changed while the check read the standby were being written
by a concurrent sync and are counted ``in_flight``, not as damage. Golden queries: records
of the standby picked by a seed; the standby's index must find at least
:data:`MIN_OVERLAP` of the exact top-k over the records it holds. With the source
reachable, the source is compared too: ``behind`` records (changed since the last pass)
are reported, not a failure: that is the lag.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from drkit.connectors.vectorstore.base import ID, VectorStore, vectors_of
from drkit.connectors.vectorstore.transfer import map_config
from drkit.replication.vectors.compare import collection_fingerprint
from drkit.replication.vectors.layout import record_hashes
from drkit.replication.vectors.parent_index import IdIndex
from drkit.replication.vectors.tolerant import Suspects
from drkit.replication.vectors.verify import _Exact, _pick

from .ledger import Ledger

#: share of the exact top-k the standby's index must find
MIN_OVERLAP = 0.99
#: ids listed per kind of difference
LISTED = 20


@dataclass(slots=True)
class StandbyCheck:
    component: str
    collection: str
    standby: str
    ok: bool = False
    standby_records: int = 0
    ledger_records: int = 0
    source_records: int | None = None
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    in_flight: int = 0
    #: source records not (yet) on the standby in their current state
    behind: int | None = None
    checksums: str = "exact"
    queries: int = 0
    overlap: float = 0.0
    duration_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("missing", "altered", "extra"):
            d[key] = d[key][:LISTED]
            d[f"{key}_count"] = len(getattr(self, key))
        return d


def _approximate(store: VectorStore) -> bool:
    caps = store.capabilities
    return caps.normalises_cosine or caps.cosine_roundoff


def check_standby(
    component: str,
    standby: VectorStore,
    name: str,
    ledger: Ledger,
    *,
    source: VectorStore | None = None,
    queries: int = 50,
    k: int = 10,
    batch_size: int = 2000,
) -> StandbyCheck:
    """Check collection ``name`` of the standby (see the module docstring)."""
    t0 = time.perf_counter()
    rep = StandbyCheck(component, name, standby.url)
    before = ledger.hashes(name)
    config = standby.describe(name)
    held: dict[str, bytes] = {}
    for batch in standby.export(name, batch_size=batch_size):
        held.update(
            zip(
                [str(i) for i in batch.column(ID).to_pylist()],
                record_hashes(config, batch),
                strict=True,
            )
        )
    after = ledger.hashes(name)
    moving = {i for i in set(before) | set(after) if before.get(i) != after.get(i)}
    rep.in_flight = len(moving)
    rep.standby_records, rep.ledger_records = len(held), len(after)
    rep.missing = sorted(i for i in after if i not in held and i not in moving)
    rep.extra = sorted(i for i in held if i not in after and i not in moving)
    if _approximate(standby):
        rep.checksums = "ids"
        rep.notes.append(
            f"{standby.engine} rounds or normalises cosine vectors: checksums against the "
            "ledger by id; against the source within float tolerance"
        )
    else:
        rep.altered = sorted(
            i for i, h in held.items() if i in after and i not in moving and after[i] != h
        )
    if rep.missing or rep.extra or rep.altered:
        rep.problems.append(
            f"the standby differs from what was synced to it: {len(rep.missing)} missing, "
            f"{len(rep.altered)} altered, {len(rep.extra)} extra of {len(after)} records"
        )
    if source is not None:
        _against_source(source, standby, name, held, rep, batch_size)
    _golden(standby, name, config, rep, queries, k, batch_size)
    rep.duration_s = round(time.perf_counter() - t0, 3)
    rep.ok = not rep.problems
    return rep


def _against_source(
    source: VectorStore,
    standby: VectorStore,
    name: str,
    held: dict[str, bytes],
    rep: StandbyCheck,
    batch_size: int,
) -> None:
    """How many source records the standby does not hold in their current state."""
    live = collection_fingerprint(source, name, batch_size=batch_size)
    rep.source_records = len(live)
    differ = {i for i, h in live.items() if held.get(i) != h}
    gone = {i for i in held if i not in live}
    if differ and _approximate(standby):
        differ -= _same_within_tolerance(source, standby, name, differ, batch_size)
    rep.behind = len(differ) + len(gone)


def _same_within_tolerance(
    source: VectorStore, standby: VectorStore, name: str, ids: set[str], batch_size: int
) -> set[str]:
    """Those of ``ids`` whose standby record is the source's within float32 tolerance
    (cosine vectors by direction): the source's records go to an Arrow file
    (:class:`~drkit.replication.vectors.tolerant.Suspects`) and meet the standby's a
    batch of columns at a time, where both sides were dicts of Python rows."""
    wanted = IdIndex(pa.array(sorted(ids), pa.string()))
    config = source.describe(name)
    _mapped, renames = map_config(config, standby)
    back = {new: old for old, new in renames.items()}

    def theirs() -> Iterator[pa.RecordBatch]:
        for batch in standby.export(name, batch_size=batch_size):
            yield batch.rename_columns([back.get(n, n) for n in batch.schema.names])

    with Suspects(len(wanted)) as suspects:
        for batch in source.export(name, batch_size=batch_size):
            pos = wanted.find(batch.column(ID))
            rows = np.flatnonzero(pos >= 0)
            suspects.add(batch, rows, pos[rows])
        same = suspects.settle(theirs(), wanted.find, config, by_direction=True)
    return set(wanted.ids.filter(pa.array(same)).to_pylist())


def _golden(
    standby: VectorStore,
    name: str,
    config: Any,
    rep: StandbyCheck,
    queries: int,
    k: int,
    batch_size: int,
) -> None:
    """The standby's index against exact search over the records it holds."""
    if rep.standby_records == 0:
        rep.overlap = 1.0
        return
    v0 = config.vectors[0]
    positions = _pick(rep.standby_records, queries, f"{rep.component}/{name}")
    picked: list[Any] = []
    offset = 0
    for batch in standby.export(name, batch_size=batch_size):
        end = offset + len(batch)
        while positions and positions[0] < end:
            picked.append(vectors_of(batch.slice(positions.pop(0) - offset, 1), v0.column)[0])
        offset = end
    exact = _Exact(np.array(picked).reshape(len(picked), v0.dimension), v0.metric, k)
    for batch in standby.export(name, batch_size=batch_size):  # again: memory stays bounded
        exact.add([str(i) for i in batch.column(ID).to_pylist()], vectors_of(batch, v0.column))
    found = []
    for i, vec in enumerate(picked):
        truth = exact.top(i)
        got = standby.search(name, vec.tolist(), k, using=v0.name)
        found.append(len(truth & set(got)) / max(1, len(truth)))
    rep.queries = len(picked)
    rep.overlap = round(float(np.mean(found)), 4) if found else 1.0
    if rep.overlap < MIN_OVERLAP:
        rep.problems.append(
            f"golden queries: the standby's index finds {rep.overlap:.3f} of the exact "
            f"top-{k} over its records (< {MIN_OVERLAP})"
        )
