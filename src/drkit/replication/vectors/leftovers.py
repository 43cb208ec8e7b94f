"""drkit's leftover collections in an engine: what a killed restore, verify or drill left.

Every collection drkit creates for a moment is named by
:func:`~drkit.connectors.vectorstore.transfer.temp_name`: ``STEM_drkit_tmp_XXXXXXXX``.
A restore loads into one and renames it; a restore test restores into one (whose own
load uses a second, named after the first one's first 40 characters); a drill's sandbox
is one. A process killed in between leaves them behind with partial rows. The next run
for the same name removes them (:func:`clean_leftovers`), and ``drkit snapshot
leftovers`` lists and removes all of them.
"""

from __future__ import annotations

import logging
import re

from drkit.connectors.vectorstore.base import VectorStore
from drkit.connectors.vectorstore.transfer import TMP_MARK, temp_stem

log = logging.getLogger("drkit.replication.vectors")

_HEX = "[0-9a-f]"


def _tokens(base: str) -> list[str]:
    """``temp_name(base)`` as regex tokens, one per character."""
    return [re.escape(c) for c in temp_stem(base) + TMP_MARK] + [_HEX] * 8


def leftover_pattern(base: str) -> re.Pattern[str]:
    """Names of drkit's temporary collections for ``base``: ``temp_name(base)``, and the
    temporary collection loaded on the way to it (``temp_name(temp_name(base))``)."""
    direct = _tokens(base)
    nested = direct[:40] + [re.escape(c) for c in TMP_MARK] + [_HEX] * 8
    return re.compile(f"(?:{''.join(direct)})|(?:{''.join(nested)})")


def leftovers(store: VectorStore, base: str | None = None) -> list[str]:
    """drkit's temporary collections in ``store`` (only those for ``base`` if given)."""
    names = [c for c in store.list_collections() if TMP_MARK in c]
    if base is not None:
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
