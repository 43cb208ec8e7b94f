"""Key rules shared by every store: ``/``-separated relative paths, nothing that escapes.

A key is 1-1024 bytes of UTF-8, segments separated by ``/``, no leading or trailing
``/``, no empty, ``.`` or ``..`` segment, no backslash or control character, and no
segment starting with ``.drkit-tmp-`` (local stores use that for in-flight writes).
The same rules on every backend keep a repository portable between them.
"""

from __future__ import annotations

from drkit.errors import UsageError

#: Prefix of in-flight temporary files; never a valid key segment, never listed.
TEMP_PREFIX = ".drkit-tmp-"
MAX_KEY_BYTES = 1024


def check_key(key: str) -> str:
    """Return ``key`` if it is valid, else raise :class:`UsageError` saying why."""
    problem = _problem(key)
    if problem is not None:
        raise UsageError(
            f"invalid object key {key!r}: {problem}",
            hint="keys are relative paths like 'data/ab/abcdef' ('/'-separated, no '..')",
        )
    return key


def check_prefix(prefix: str) -> str:
    """A list prefix: empty, or a key prefix that could start a valid key."""
    if prefix == "":
        return prefix
    # "data/" is a fine prefix though not a key: validate it with a stand-in last segment.
    check_key(prefix + "x" if prefix.endswith("/") else prefix)
    return prefix


def check_range(offset: int, length: int) -> None:
    """``get_range`` arguments: both non-negative."""
    if offset < 0 or length < 0:
        raise UsageError(f"invalid range: offset={offset} length={length} (both must be >= 0)")


def _problem(key: str) -> str | None:
    if not isinstance(key, str):
        return "a key must be a string"
    if not key:
        return "empty key"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    if key.startswith("/"):
        return "absolute (leading '/')"
    if key.endswith("/"):
        return "trailing '/'"
    if "\\" in key:
        return "backslash"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        return "control character"
    for segment in key.split("/"):
        if segment == "":
            return "empty segment ('//')"
        if segment in (".", ".."):
            return f"'{segment}' segment"
        if segment.startswith(TEMP_PREFIX):
            return f"segment starts with the reserved {TEMP_PREFIX!r}"
    return None
