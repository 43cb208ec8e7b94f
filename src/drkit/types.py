"""Value types used by every layer: durations, byte sizes, masked secrets.

They sit below everything (with :mod:`drkit.errors`) and depend on nothing of drkit's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, GetCoreSchemaHandler, PlainSerializer
from pydantic_core import core_schema

_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


#: the longest duration drkit accepts (100 years): past it a value is a typo
#: (``1000000d``), or ``inf``/``1e400``, that would overflow the datetimes it feeds
MAX_DURATION_S = 100 * 365 * 86400.0


def _bounded(seconds: float, text: object) -> float:
    if not seconds <= MAX_DURATION_S:  # also NaN and inf
        raise ValueError(f"duration {text!r} is longer than the longest accepted, 100 years")
    return seconds


def parse_duration(text: str | int | float) -> float:
    """Parse ``90s``, ``15m``, ``1h30m``, ``7d``, ``2w``, ``1y`` (or a number of seconds).

    Raises ``ValueError`` with the accepted forms on anything else (``5 mins``), and on
    a duration longer than :data:`MAX_DURATION_S`.
    """
    if isinstance(text, bool):
        raise ValueError("expected a duration like 30s, 15m, 1h, 7d, not a boolean")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(float(text), text)
    s = text.strip()
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not s or pos != len(s):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit with no spaces, "
            "e.g. 30s, 15m, 1h, 1h30m, 7d, 2w, 1y (units: ms s m h d w y)"
        )
    return _bounded(total, text)


def format_duration(seconds: float) -> str:
    """The shortest exact rendering of a duration: ``3600`` -> ``1h``, ``5400`` -> ``1h30m``."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    parts: list[str] = []
    rest = seconds
    for unit in ("d", "h", "m"):
        size = _DURATION_UNITS[unit]
        count = int(rest // size)
        if count:
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest:
        parts.append(f"{rest:g}s")
    return "".join(parts)


#: Seconds, written in plans as ``30s``/``15m``/``1h``/``7d``; serialised in normal form.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


class Secret:
    """A secret value whose ``repr``, ``str`` and JSON form are always masked.

    Only :meth:`reveal` returns the value; call it at the last moment (building a
    request header), never to log or format.
    """

    __slots__ = ("_value",)
    MASK = "**********"

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.MASK!r})"

    def __str__(self) -> str:
        return self.MASK

    def __format__(self, spec: str) -> str:
        return self.MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is not picklable")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> Secret:
            if isinstance(value, Secret):
                return value
            if not isinstance(value, str):
                raise ValueError("a secret must be a string")
            return cls(value)

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: cls.MASK, when_used="always"
            ),
        )


# --- signed webhooks (the agent's alarms and the status page's notices share one format)

#: a receiver refuses signatures older than this (replay protection)
SIGNATURE_TOLERANCE_S = 300.0


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Drkit-Signature`` header value of ``body`` sent at ``timestamp``:
    ``sha256=`` + the hex HMAC-SHA256 of ``TIMESTAMP.BODY`` under ``secret``."""
    import hashlib
    import hmac

    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE_S,
) -> bool:
    """A receiver's check of :func:`sign`: the signature matches (in constant time)
    and the ``X-Drkit-Timestamp`` is within ``tolerance`` of ``now``."""
    import hmac
    import time

    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, ts), signature)
