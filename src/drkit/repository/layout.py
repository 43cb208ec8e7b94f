"""The names a repository's own objects have (docs/repository-format.md section 1).

Anything else under a repository's prefix is *foreign*: a file that was there before
``repo init --force``, or that somebody put there later. ``check`` reports foreign
objects as such; ``prune`` and ``repair`` never delete them (they only ever delete
names of the forms below).
"""

from __future__ import annotations

import re

_HEX64 = r"[0-9a-f]{64}"
_FORMS = re.compile(
    rf"^(?:config"
    rf"|keys/{_HEX64}"
    rf"|index/{_HEX64}"
    rf"|snapshots/{_HEX64}"
    rf"|verifications/{_HEX64}"
    rf"|ledger/(?:snapshots|verifications)/{_HEX64}"
    rf"|tombstones/(?:snapshots|verifications)/{_HEX64}"
    rf"|locks/[0-9a-f]{{16,64}})$"
)
_PACK = re.compile(rf"^data/([0-9a-f]{{2}})/({_HEX64})$")
#: Top-level prefixes of the repository's own objects.
PREFIXES = ("config", "keys/", "data/", "index/", "snapshots/", "verifications/", "ledger/")
PREFIXES_ALL = (*PREFIXES, "tombstones/", "locks/")


def is_pack_key(key: str) -> bool:
    """``data/<xx>/<id>`` with ``xx == id[:2]``."""
    m = _PACK.match(key)
    return bool(m) and m is not None and m.group(2).startswith(m.group(1))


def is_own_key(key: str) -> bool:
    """True when ``key`` has the form of one of the repository's own objects."""
    return bool(_FORMS.match(key)) or is_pack_key(key)


def name_of(key: str) -> str:
    """The last segment (the id) of a key."""
    return key.rsplit("/", 1)[-1]
