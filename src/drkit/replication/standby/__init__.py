"""Warm standbys of vector stores: a second engine (any engine) kept in step incrementally.

Public API::

    Ledger(path)                                   the sync state (:mod:`.ledger`)
    sync_collection(source, standby, name, ledger) -> CollectionSync   one pass
    lag_of(ledger, collections) -> seconds | None  the measured replication lag
    check_standby(component, standby, name, ledger, source=...) -> StandbyCheck

User guide: docs/standby.md.
"""

from drkit.replication.standby.check import MIN_OVERLAP, StandbyCheck, check_standby
from drkit.replication.standby.ledger import Ledger, ledger_file
from drkit.replication.standby.sync import (
    CollectionSync,
    apply_spool,
    lag_of,
    source_collections,
    sync_collection,
)

__all__ = [
    "MIN_OVERLAP",
    "CollectionSync",
    "Ledger",
    "StandbyCheck",
    "apply_spool",
    "check_standby",
    "lag_of",
    "ledger_file",
    "source_collections",
    "sync_collection",
]
