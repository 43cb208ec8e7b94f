"""drkit's leftover collections in an engine: what a killed restore, verify or drill left.

Every collection drkit creates for a moment is named by
:func:`~drkit.connectors.vectorstore.transfer.temp_name`: ``STEM_drkit_tmp_XXXXXXXX``.
A restore loads into one and renames it; a restore test restores into one (whose own
load uses a second, named after the first one's first 40 characters); a drill's sandbox
is one. A process killed in between leaves them behind with partial rows. The next run
for the same name removes them (:func:`clean_leftovers`), and ``drkit snapshot
leftovers`` lists and removes all of them.

A replace whose live name is an alias (Milvus, Qdrant) restores into
``STEM_drkit_restored_XXXXXXXX``, which stays: the alias is moved to it. Such a
collection is a leftover only while no alias names it (a replace killed before the
alias moved, or the previous collection of one killed after it): a collection an alias
names is never a leftover.
"""

from __future__ import annotations

import logging
import re
import secrets

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.transfer import TMP_MARK, temp_stem

log = logging.getLogger("drkit.replication.vectors")

_HEX = "[0-9a-f]"
#: the mark of the previous collection kept while a replace is checked (never removed
#: automatically: after a killed replace it may be the only copy of the live data)
OLD_MARK = "_drkit_old_"
#: the mark of a collection restored to be put behind an alias (see the module docstring)
RESTORED_MARK = "_drkit_restored_"


def restored_name(name: str) -> str:
    """The collection a replace of the alias ``name`` restores into (and keeps)."""
    return f"{temp_stem(name)}{RESTORED_MARK}{secrets.token_hex(4)}"


def _tokens(base: str, mark: str) -> list[str]:
    """``temp_stem(base) + mark + 8 hex digits`` as regex tokens, one per character."""
    return [re.escape(c) for c in temp_stem(base) + mark] + [_HEX] * 8


def leftover_pattern(base: str) -> re.Pattern[str]:
    """Names of drkit's temporary collections for ``base``: ``temp_name(base)`` and
    ``restored_name(base)``, and the temporary collection loaded on the way to either
    (``temp_name(temp_name(base))``)."""
    alternatives = []
    for mark in (TMP_MARK, RESTORED_MARK):
        direct = _tokens(base, mark)
        nested = direct[:40] + [re.escape(c) for c in TMP_MARK] + [_HEX] * 8
        alternatives += ["".join(direct), "".join(nested)]
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def leftovers(store: VectorStore, base: str | None = None) -> list[str]:
    """drkit's temporary collections in ``store`` (only those for ``base`` if given),
    and, without ``base``, previous collections a killed replace kept (``_drkit_old_``).
    A collection an alias names is never one."""
    aliased = set(store.aliases().values())
    every = [c for c in store.list_collections() if c not in aliased]
    names = [c for c in every if TMP_MARK in c or RESTORED_MARK in c]
    if base is None:
        names += [c for c in every if OLD_MARK in c]
    else:
        pattern = leftover_pattern(base)
        names = [c for c in names if pattern.fullmatch(c)]
    return sorted(names)


def clean_leftovers(store: VectorStore, base: str) -> list[str]:
    """Drop what an earlier, killed run for ``base`` left; returns the names dropped."""
    found = leftovers(store, base)
    for name in found:
        log.warning("removing %r: left in %s by an interrupted drkit run", name, store.url)
        store.drop(name, missing_ok=True)
    return found
